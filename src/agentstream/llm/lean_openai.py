"""The ``openai:`` model with a lean stream reader: pydantic-ai's ``OpenAIChatModel``, whose
streamed chunks are parsed by pydantic-core instead of the openai SDK's reflective builder.

Everything else is the stock model's: the request (its body, retries on 429 and 5xx, timeouts,
HTTP errors) goes through the openai SDK as before, and every chunk goes through pydantic-ai's
own mapping (``OpenAIStreamedResponse``). Only the step between the response's bytes and the
``ChatCompletionChunk`` objects is ours: the SDK's ``AsyncStream`` decodes each server-sent event
line by line and builds each chunk with ``construct_type``, about 58 µs per token here (most of
the provider path's CPU), where ``ChatCompletionChunk.model_validate_json`` takes ~3 µs.

A chunk that does not validate strictly (a provider quirk: a missing field, an unknown finish
reason, a number where a string belongs), an event the fast path does not handle (several
``data:`` lines, ``event:``/``id:`` fields, CR line ends) and anything that may be an error
object go through the SDK's own decoder and builder, so the result is the SDK's in every case.
``AGENTSTREAM_LEAN_OPENAI=false`` turns the whole thing off (the stock model is used).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import aclosing
from typing import cast

import pydantic
from openai import APIConnectionError, APIError, APITimeoutError, AsyncStream
from openai._httpx2 import request_exceptions, timeout_exceptions
from openai._models import construct_type
from openai._streaming import SSEDecoder, _SSELineDecoder
from openai._streaming_cleanup import drain_response_async
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice
from pydantic_ai._utils import PeekableAsyncStream
from pydantic_ai.messages import ModelResponseStreamEvent
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIChatModelSettings
from pydantic_ai.models.openai._chat_streaming import OpenAIStreamedResponse
from pydantic_ai.usage import RequestUsage

_validate_json = ChatCompletionChunk.__pydantic_validator__.validate_json
# Bytes that send a chunk through the SDK's exact path: a possible error object (the SDK raises
# on any event whose JSON has an "error" key) and escaped text that could spell one.
_SUSPECT = (b'"error"', b"\\u")


class _Chunks:
    """The chunks of one streamed completion, read from the SDK stream's HTTP response.

    Stands in for the SDK's ``AsyncStream`` (what ``OpenAIStreamedResponse`` reads and closes)
    with the same results and errors.
    """

    def __init__(self, stream: AsyncStream[ChatCompletionChunk]) -> None:
        self._response = stream.response
        # The SDK's decoder, once an event needs it (it then reads the rest of the stream).
        self._decoder: SSEDecoder | None = None
        self._lines = _SSELineDecoder()
        self._iterator: AsyncIterator[ChatCompletionChunk] | None = None

    async def close(self) -> None:
        """Close the HTTP response (what a cancel does to the upstream request)."""
        await self._response.aclose()

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        # One reader: pydantic-ai peeks at the first chunk, then reads on from the same iterator.
        if self._iterator is None:
            self._iterator = self._chunks()
        return self._iterator

    async def _chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        response = self._response
        try:
            try:
                async with aclosing(self._events()) as events:
                    async for event in events:
                        if isinstance(event, bytes):
                            value = event[5:]
                            data = value[1:] if value.startswith(b" ") else value
                            if data.startswith(b"[DONE]"):
                                break
                            yield self._chunk(data, event)
                        elif event.startswith("[DONE]"):
                            break
                        else:
                            yield self._sdk_chunk(event)
                    else:
                        return
                # As the SDK: HTTP/1.1 needs the rest of the body read to reuse the connection.
                if response.http_version == "HTTP/1.1":
                    await drain_response_async(response)
            except timeout_exceptions() as err:
                raise APITimeoutError(request=response.request) from err
            except request_exceptions() as err:
                raise APIConnectionError(request=response.request) from err
        finally:
            await response.aclose()

    async def _events(self) -> AsyncGenerator[bytes | str]:
        """Each event: its ``data:`` line (bytes) while events are one such line ended by
        ``\\n``; from the first event that is not, its data as the SDK's decoder gives it (str)."""
        buffer = b""
        pending: bytes | None = None  # a data line waiting for the blank line that ends it
        async for received in self._response.aiter_bytes():
            if self._decoder is None and b"\r" not in received:
                lines = (buffer + received).split(b"\n")
                buffer = lines.pop()
                for index, line in enumerate(lines):
                    if not line:
                        if pending is not None:
                            yield pending
                            pending = None
                    elif line.startswith(b"data:") and pending is None:
                        pending = line
                    elif line.startswith(b":"):
                        line.decode("utf-8")  # a comment: the SDK decodes it, and ignores it
                    else:
                        received, buffer = b"\n".join([*lines[index:], buffer]), b""
                        break
                else:
                    continue
            if self._decoder is None:
                self._decoder = SSEDecoder()
                received = (pending + b"\n" if pending is not None else b"") + buffer + received
            for data in self._decoded(self._lines.feed(received)):
                yield data
        if self._decoder is not None:
            for data in self._decoded(self._lines.finish()):
                yield data

    def _decoded(self, lines: Iterator[bytes]) -> list[str]:
        assert self._decoder is not None
        found = [self._decoder.decode(line.decode("utf-8")) for line in lines]
        return [event.data for event in found if event is not None]

    def _chunk(self, data: bytes, line: bytes) -> ChatCompletionChunk:
        if not any(marker in data for marker in _SUSPECT):
            try:
                return cast("ChatCompletionChunk", _validate_json(data, strict=True))
            except pydantic.ValidationError:
                pass
        # The SDK decodes the whole line (its errors name positions in it).
        value = line.decode("utf-8")[5:]
        return self._sdk_chunk(value[1:] if value.startswith(" ") else value)

    def _sdk_chunk(self, data: str) -> ChatCompletionChunk:
        """The SDK's own path for one event's data: JSON, error check, ``construct_type``."""
        value = json.loads(data)
        if isinstance(value, dict) and value.get("error"):
            error = value.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            if not message or not isinstance(message, str):
                message = "An error occurred during streaming"
            raise APIError(message=message, request=self._response.request, body=value["error"])
        return cast("ChatCompletionChunk", construct_type(type_=ChatCompletionChunk, value=value))


_NO_USAGE = RequestUsage(unmeasured_requests=1)  # what ``map_usage`` makes of a chunk without usage


async def _after_peek(
    peeked: PeekableAsyncStream[ChatCompletionChunk, AsyncStream[ChatCompletionChunk]],
) -> AsyncIterator[ChatCompletionChunk]:
    """The peeked chunk, then the rest straight from the source.

    ``PeekableAsyncStream`` takes an anyio lock and a cancel scope per item so a debounced
    consumer can pull concurrently; this stream's only reader is its own event iterator.
    """
    async for chunk in peeked:
        yield chunk
        break
    async for chunk in peeked.source:
        yield chunk


class _LeanStreamedResponse(OpenAIStreamedResponse):
    """pydantic-ai's Chat Completions stream mapping, skipping work a plain chunk does not need.

    Each override gives the result of the method it replaces (a chunk without usage adds
    nothing to the usage; a delta with only text maps only its text).
    """

    def _validate_response(self) -> AsyncIterable[ChatCompletionChunk]:
        return _after_peek(self._response)

    def _map_usage(self, response: ChatCompletionChunk) -> RequestUsage:
        return _NO_USAGE if response.usage is None else super()._map_usage(response)

    def _add_usage(self, usage: RequestUsage, *, reported: bool, cumulative: bool = False) -> None:
        if usage is _NO_USAGE and not cumulative:
            return  # the stock method would add zeros
        super()._add_usage(usage, reported=reported, cumulative=cumulative)

    def _map_part_delta(self, choice: Choice) -> Iterable[ModelResponseStreamEvent]:
        delta = choice.delta
        if (
            delta.tool_calls
            or delta.model_extra
            or self._model_profile.get("openai_chat_thinking_field")
        ):
            return super()._map_part_delta(choice)
        # No thinking field and no tool call: the text is all there is to map.
        return self._map_text_delta(choice)


class LeanOpenAIChatModel(OpenAIChatModel):
    """``OpenAIChatModel`` reading its streams with ``_Chunks`` (see the module docstring)."""

    async def _process_streamed_response(
        self,
        response: AsyncStream[ChatCompletionChunk],
        model_request_parameters: ModelRequestParameters,
        model_settings: OpenAIChatModelSettings | None = None,
    ) -> OpenAIStreamedResponse:
        if self.client._strict_response_validation:
            return await super()._process_streamed_response(
                response, model_request_parameters, model_settings
            )
        chunks = cast("AsyncStream[ChatCompletionChunk]", _Chunks(response))
        return await super()._process_streamed_response(
            chunks, model_request_parameters, model_settings
        )

    @property
    def _streamed_response_cls(self) -> type[OpenAIStreamedResponse]:
        return _LeanStreamedResponse
