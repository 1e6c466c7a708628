"""A TCP proxy on 127.0.0.1 that a test can freeze or cut, to play a hung or dead server.

It forwards to any ``host:port`` (Redis, PostgreSQL, ...). It runs its own event loop in a
thread, so tests with their own loop (or none) drive it with plain calls, each of which has
taken effect when it returns:

- ``freeze()``: bytes stop flowing both ways but every socket stays open and new connections
  are accepted — what a client sees of a SIGSTOPped server. ``thaw()`` delivers what was held.
- ``kill()``: every connection is closed and new ones are refused (the port stops
  listening); ``restore()`` listens again on the same port.

``bytes_from_clients`` counts what clients sent (frozen or not), so a test can assert that
nothing tried to talk to the server.

Usage::

    with TcpProxy("127.0.0.1", 6379) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        proxy.freeze()
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``, with freeze and kill."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0  # chosen by the OS on start, then kept across kill/restore
        self.bytes_from_clients = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        # Events bind to the proxy's loop on first use (Python >= 3.10), not here.
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._held = 0  # bytes read while frozen and not yet passed on
        self._drained = asyncio.Event()
        self._drained.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle (called from the test's thread) -------------------------------------------
    def start(self) -> TcpProxy:
        """Start listening; ``port`` is set when this returns."""
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        """Close every connection, stop listening and stop the thread."""
        self._call(self._kill())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- faults --------------------------------------------------------------------------------
    def freeze(self) -> None:
        """Hold every byte in both directions; sockets stay open, connects still succeed."""
        self._call(self._set_flowing(False))

    def thaw(self) -> None:
        """Resume forwarding; returns once the held bytes have been passed on.

        Like a resumed process, the server then gets what clients sent while it was
        frozen (a request that timed out may still take effect).
        """
        self._call(self._set_flowing(True))

    def kill(self) -> None:
        """Close every connection and refuse new ones (nothing listens on ``port``)."""
        self._call(self._kill())

    def restore(self) -> None:
        """Listen on ``port`` again (after ``kill``)."""
        self._call(self._start())

    # -- inside the proxy's loop ----------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _set_flowing(self, flowing: bool) -> None:
        if not flowing:
            self._flowing.clear()
            return
        self._flowing.set()
        await asyncio.wait_for(self._drained.wait(), 5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _kill(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            target_r, target_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update((client_w, target_w))
        pumps = [
            asyncio.create_task(self._pump(client_r, target_w, count=True)),
            asyncio.create_task(self._pump(target_r, client_w, count=False)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            for writer in (client_w, target_w):
                self._writers.discard(writer)
                writer.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool
    ) -> None:
        while True:
            data = await reader.read(65536)
            if count:
                self.bytes_from_clients += len(data)
            if not self._flowing.is_set():
                await self._hold(len(data))  # frozen: hold the bytes (and the EOF) here
            if not data:
                writer.transport.abort()
                return
            writer.write(data)
            await writer.drain()

    async def _hold(self, size: int) -> None:
        self._held += size
        self._drained.clear()
        try:
            await self._flowing.wait()
        finally:
            self._held -= size
            if self._held == 0:
                self._drained.set()
