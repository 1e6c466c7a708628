"""uvicorn's WebSocket protocol, minus a traceback for a client's invalid UTF-8.

uvicorn's websockets (sans-I/O) protocol already answers a text frame that is not UTF-8
with close code 1007, but it logs the ``UnicodeDecodeError`` with a full traceback at
ERROR level: any client could fill the logs with alarming noise. This subclass checks the
message first and closes with 1007 quietly (a debug line); everything else is uvicorn's.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

CLOSE_INVALID_PAYLOAD = 1007


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """Pass as ``uvicorn.run(..., ws=WebSocketProtocol)``."""

    def send_receive_event_to_app(self) -> None:
        """Close with 1007 (no traceback) when a complete text message is not UTF-8."""
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:
                self.frames = []
                self.logger.debug("WebSocket text frame with invalid UTF-8; closing with 1007")
                self.conn.send_close(CLOSE_INVALID_PAYLOAD, "invalid UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()
