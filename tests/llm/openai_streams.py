"""Recorded Chat Completions streams: what OpenAI and the OpenAI-compatible servers users run
(vLLM, Ollama, LM Studio, gateways) send, quirks included, byte for byte.

Each case names where its shape comes from. The differential test replays every one through
pydantic-ai's ``OpenAIChatModel`` and through ``LeanOpenAIChatModel``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.openai_server import Recorded

CREATED = 1767225600


def event(value: dict[str, Any] | str) -> bytes:
    """One SSE event as servers write it: ``data: <compact JSON>`` and a blank line."""
    data = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    model: str = "gpt-4o-mini",
    choice: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice (OpenAI's shape unless overridden)."""
    body: dict[str, Any] = {
        "index": 0,
        "delta": {} if delta is None else delta,
        "logprobs": None,
        "finish_reason": finish,
    }
    return {
        "id": "chatcmpl-rec1",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [body | (choice or {})],
    } | top


def usage_chunk(model: str = "gpt-4o-mini", **usage: Any) -> dict[str, Any]:
    counts = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29} | usage
    return {
        "id": "chatcmpl-rec1",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [],
        "usage": counts,
    }


DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Case:
    """One recorded stream and how the request that gets it is made."""

    name: str
    source: str
    recorded: Recorded
    settings: dict[str, Any] = field(default_factory=dict)
    tools: bool = False


def _case(name: str, source: str, events: list[bytes | dict[str, Any]], **options: Any) -> Case:
    settings = options.pop("settings", {})
    tools = options.pop("tools", False)
    pieces = [e if isinstance(e, bytes) else event(e) for e in events]
    return Case(name, source, Recorded(pieces, **options), settings, tools)


def _text(model: str = "gpt-4o-mini", **top: Any) -> list[bytes | dict[str, Any]]:
    return [
        chunk({"role": "assistant", "content": ""}, model=model, **top),
        *(chunk({"content": t}, model=model, **top) for t in ("Hello", ",", " world", "!")),
        chunk({}, "stop", model=model, **top),
    ]


def _call(index: int | None, **fields: Any) -> dict[str, Any]:
    call = dict(fields)
    if index is not None:
        call["index"] = index
    return call


_WEATHER = {"location": "Paris", "unit": "c"}
_ERROR = {"error": {"message": "Upstream overloaded", "type": "server_error", "code": "overloaded"}}

CASES: list[Case] = [
    _case(
        "openai_text_with_usage",
        "OpenAI: role chunk, content chunks, finish chunk, then the usage chunk "
        "(stream_options.include_usage) with token details; service_tier and obfuscation "
        "on every chunk",
        [
            *_text(service_tier="default", system_fingerprint="fp_abc", obfuscation="x1"),
            usage_chunk(
                prompt_tokens_details={"cached_tokens": 3, "audio_tokens": 0},
                completion_tokens_details={"reasoning_tokens": 0, "audio_tokens": 0},
            ),
            DONE,
        ],
    ),
    _case(
        "openai_tool_call_in_many_deltas",
        "OpenAI: a function call streamed as id+name, then arguments in several pieces",
        [
            chunk({"role": "assistant", "content": None}),
            chunk(
                {
                    "tool_calls": [
                        _call(
                            0,
                            id="call_a1",
                            type="function",
                            function={"name": "get_weather", "arguments": ""},
                        )
                    ]
                }
            ),
            *(
                chunk({"tool_calls": [_call(0, function={"arguments": piece})]})
                for piece in ('{"locat', 'ion": "Par', 'is", "unit"', ': "c"}')
            ),
            chunk({}, "tool_calls"),
            usage_chunk(),
            DONE,
        ],
        tools=True,
    ),
    _case(
        "openai_parallel_tool_calls",
        "OpenAI: two calls in one response, indices 0 and 1, their deltas in turn",
        [
            chunk({"role": "assistant", "content": None}),
            chunk(
                {
                    "tool_calls": [
                        _call(0, id="call_p0", type="function", function={"name": "get_weather"})
                    ]
                }
            ),
            chunk({"tool_calls": [_call(0, function={"arguments": '{"location": "Paris"}'})]}),
            chunk(
                {
                    "tool_calls": [
                        _call(1, id="call_p1", type="function", function={"name": "get_weather"})
                    ]
                }
            ),
            chunk({"tool_calls": [_call(1, function={"arguments": '{"location": "Rome"}'})]}),
            chunk({}, "tool_calls"),
            usage_chunk(),
            DONE,
        ],
        tools=True,
    ),
    _case(
        "text_then_tool_call",
        "OpenAI / vLLM: some text, then a call in the same response",
        [
            chunk({"role": "assistant", "content": "Let me check."}),
            chunk(
                {
                    "tool_calls": [
                        _call(
                            0,
                            id="call_t",
                            type="function",
                            function={"name": "get_weather", "arguments": json.dumps(_WEATHER)},
                        )
                    ]
                }
            ),
            chunk({}, "tool_calls"),
            DONE,
        ],
        tools=True,
    ),
    _case(
        "openai_refusal",
        "OpenAI: structured output refused, the text in delta.refusal",
        [
            chunk({"role": "assistant", "content": None, "refusal": ""}),
            chunk({"refusal": "I'm sorry, "}),
            chunk({"refusal": "I can't help with that."}),
            chunk({}, "stop"),
            usage_chunk(),
            DONE,
        ],
    ),
    _case(
        "vllm_last_token_with_finish_length",
        "vLLM (issue 35705): the last content token and finish_reason 'length' in one chunk; "
        "usage: null on every chunk, stop_reason on the choice",
        [
            chunk({"role": "assistant", "content": ""}, model="qwen3", usage=None),
            chunk({"content": " ."}, model="qwen3", usage=None, choice={"stop_reason": None}),
            chunk({"content": " Hi"}, "length", model="qwen3", usage=None),
            usage_chunk("qwen3", prompt_tokens=30, completion_tokens=2, total_tokens=32),
            DONE,
        ],
    ),
    _case(
        "vllm_reasoning_content",
        "vLLM / DeepSeek: reasoning_content deltas before the answer",
        [
            chunk({"role": "assistant", "content": ""}, model="deepseek-r1"),
            chunk({"reasoning_content": "The user greets."}, model="deepseek-r1"),
            chunk({"reasoning_content": " Answer politely."}, model="deepseek-r1"),
            chunk({"content": "Hello!"}, model="deepseek-r1"),
            chunk({}, "stop", model="deepseek-r1"),
            DONE,
        ],
    ),
    _case(
        "vllm_reasoning_and_reasoning_content",
        "vLLM (newer): both reasoning and reasoning_content carry the same text",
        [
            chunk({"role": "assistant", "content": ""}, model="qwen3"),
            chunk({"reasoning": "Think.", "reasoning_content": "Think."}, model="qwen3"),
            chunk({"content": "Done."}, model="qwen3"),
            chunk({}, "stop", model="qwen3"),
            DONE,
        ],
    ),
    _case(
        "ollama_reasoning",
        "Ollama (gpt-oss): thinking in delta.reasoning, system_fingerprint fp_ollama",
        [
            chunk(
                {"role": "assistant", "content": "", "reasoning": "Hmm."},
                model="gpt-oss:20b",
                system_fingerprint="fp_ollama",
            ),
            chunk({"role": "assistant", "content": "Hi"}, model="gpt-oss:20b"),
            chunk({"role": "assistant", "content": " there"}, model="gpt-oss:20b"),
            chunk({"role": "assistant", "content": ""}, "stop", model="gpt-oss:20b"),
            DONE,
        ],
    ),
    _case(
        "think_tags_in_content",
        "vLLM without a reasoning parser / older Ollama: <think>...</think> as content tokens",
        [
            chunk({"role": "assistant", "content": ""}, model="qwen3"),
            *(
                chunk({"content": t}, model="qwen3")
                for t in ("<think>", "\n", "Plan", " it", "</think>", "\n\n", "Answer", ".")
            ),
            chunk({}, "stop", model="qwen3"),
            DONE,
        ],
    ),
    _case(
        "vllm_empty_deltas_first",
        "vLLM (issue 13087): empty content deltas before the first token",
        [
            chunk({"role": "assistant", "content": ""}, model="llama"),
            chunk({"content": ""}, model="llama"),
            chunk({"content": ""}, model="llama"),
            chunk({"content": "I "}, model="llama"),
            chunk({"content": "am."}, model="llama"),
            chunk({"content": ""}, "stop", model="llama"),
            DONE,
        ],
    ),
    _case(
        "vllm_continuous_usage_stats",
        "vLLM / SGLang stream_options.continuous_usage_stats: cumulative usage on every chunk",
        [
            chunk(
                {"role": "assistant", "content": ""},
                model="llama",
                usage={"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5},
            ),
            chunk(
                {"content": "One"},
                model="llama",
                usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            ),
            chunk(
                {"content": " two"},
                "stop",
                model="llama",
                usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            ),
            DONE,
        ],
        settings={"openai_continuous_usage_stats": True},
    ),
    _case(
        "usage_on_every_chunk_unasked",
        "gateways that put a usage object on every chunk without being asked",
        [
            chunk(
                {"content": "A"},
                usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            ),
            chunk(
                {"content": "B"},
                "stop",
                usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            ),
            DONE,
        ],
    ),
    _case(
        "ollama_tool_call_without_index",
        "Ollama before 0.4.7 (issue 7881): a whole tool call in one delta, no index",
        [
            chunk({"role": "assistant", "content": ""}, model="llama3.1"),
            chunk(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        _call(
                            None,
                            id="call_o1",
                            type="function",
                            function={"name": "get_weather", "arguments": json.dumps(_WEATHER)},
                        )
                    ],
                },
                model="llama3.1",
            ),
            chunk({"role": "assistant", "content": ""}, "tool_calls", model="llama3.1"),
            DONE,
        ],
        tools=True,
    ),
    _case(
        "ollama_parallel_calls_all_index_zero",
        "Ollama (issue 15457): several calls in one response, every one with index 0",
        [
            chunk(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        _call(
                            0,
                            id=f"call_z{i}",
                            type="function",
                            function={"name": "get_weather", "arguments": f'{{"location": "{c}"}}'},
                        )
                    ],
                },
                model="qwen2.5-coder:7b",
            )
            for i, c in enumerate(("Paris", "Rome"))
        ]
        + [
            chunk({"role": "assistant", "content": ""}, "tool_calls", model="qwen2.5-coder:7b"),
            DONE,
        ],
        tools=True,
    ),
    _case(
        "unknown_finish_reason",
        "servers with their own finish reasons (e.g. 'eos', 'guardrail_intervened')",
        [chunk({"content": "Bye"}), chunk({}, "eos"), DONE],
    ),
    _case(
        "no_finish_reason_no_done",
        "servers that end the body without a finish reason or [DONE]",
        [chunk({"role": "assistant", "content": "cut"}), chunk({"content": " short"})],
    ),
    _case(
        "content_as_list_of_parts",
        "Mistral models on the Albert API: content as a list of parts",
        [
            chunk({"role": "assistant", "content": [{"type": "text", "text": "Part one"}]}),
            chunk(
                {
                    "content": [
                        {"type": "text", "text": ", part two"},
                        {"type": "reference", "id": 1},
                    ]
                }
            ),
            chunk({}, "stop"),
            DONE,
        ],
    ),
    _case(
        "missing_fields_and_null_choices",
        "malformed chunks the SDK lets through (pydantic-ai issue 5165): no object/created, "
        "choices: null",
        [
            {"id": "x", "model": "m", "choices": [{"index": 0, "delta": {"content": "ok"}}]},
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": "m",
                "choices": None,
            },
            chunk({}, "stop", model="m"),
            DONE,
        ],
    ),
    _case(
        "logprobs",
        "OpenAI with logprobs: each chunk carries its tokens' logprobs",
        [
            chunk(
                {"content": "Hi"},
                choice={
                    "logprobs": {
                        "content": [
                            {"token": "Hi", "bytes": [72, 105], "logprob": -0.1, "top_logprobs": []}
                        ],
                        "refusal": None,
                    }
                },
            ),
            chunk({}, "stop"),
            DONE,
        ],
        settings={"openai_logprobs": True},
    ),
    _case(
        "annotations_on_delta",
        "OpenAI search models / OpenRouter: url_citation annotations as a delta extra",
        [
            chunk({"role": "assistant", "content": "See example."}),
            chunk(
                {
                    "annotations": [
                        {
                            "type": "url_citation",
                            "url_citation": {
                                "url": "https://example.com",
                                "title": "Example",
                                "start_index": 4,
                                "end_index": 11,
                            },
                        }
                    ]
                }
            ),
            chunk({}, "stop"),
            DONE,
        ],
    ),
    _case(
        "error_object_mid_stream",
        "OpenAI / vLLM / LiteLLM: an error object as an event after some text",
        [chunk({"role": "assistant", "content": "Partial"}), _ERROR, DONE],
    ),
    _case(
        "error_inside_a_valid_chunk",
        "proxies that add an error to an otherwise well-formed chunk (the SDK raises on any "
        "event with an error key)",
        [
            chunk({"content": "a"}),
            chunk({"content": "b"}, error={"message": "Quota exceeded"}),
            DONE,
        ],
    ),
    _case(
        "error_object_without_message",
        "gateways that send an error with no message",
        [chunk({"content": "x"}), {"error": {"code": 500}}, DONE],
    ),
    _case(
        "crlf_line_ends_comments_and_event_fields",
        "OpenRouter keep-alive comments, CRLF line ends, an event: field, data split over lines",
        [
            b": OPENROUTER PROCESSING\r\n\r\n",
            b"event: message\r\n" + event(chunk({"content": "Hi"})).replace(b"\n", b"\r\n"),
            b'data: {"id":"chatcmpl-rec1","object":"chat.completion.chunk",\r\n'
            b'data: "created":1767225600,"model":"gpt-4o-mini","choices":'
            b'[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]}\r\n\r\n',
            b"data: [DONE]\r\n\r\n",
        ],
    ),
    _case(
        "comment_keepalives_and_multiline_data",
        "LM Studio / proxies: ': ping' comments between events; a data field on two lines",
        [
            b": ping\n\n",
            chunk({"content": "a"}),
            b": ping\n\n",
            b'data: {"id":"c","object":"chat.completion.chunk","created":1767225600,\n'
            b'data: "model":"m","choices":[{"index":0,"delta":{"content":"b"},'
            b'"finish_reason":"stop"}]}\n\n',
            DONE,
        ],
    ),
    _case(
        "not_json",
        "a proxy answering 200 with a non-JSON event",
        [chunk({"content": "a"}), b"data: upstream timeout\n\n", DONE],
    ),
    _case(
        "invalid_utf8",
        "a server cutting a UTF-8 sequence inside an event",
        [
            chunk({"content": "a"}),
            b'data: {"id":"c","choices":[{"delta":{"content":"\xe2\x82"}}]}\n\n',
        ],
    ),
    _case(
        "invalid_utf8_in_a_comment",
        "a proxy's keep-alive comment with bytes that are not UTF-8 (the SDK decodes comments)",
        [chunk({"content": "a"}), b": \xff\xfe\n\n", chunk({}, "stop"), DONE],
    ),
    _case(
        "http_401",
        "a wrong API key",
        _text(),
        status=401,
        failures=-1,
        error={
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
    ),
    _case(
        "http_429_then_ok",
        "rate limited once (the SDK retries after retry-after-ms), then the stream",
        [*_text(), DONE],
        status=429,
        failures=1,
        error={
            "error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}
        },
        headers={"retry-after-ms": "10"},
    ),
    _case(
        "http_429_always",
        "rate limited on every try: the error once the SDK's retries are spent",
        _text(),
        status=429,
        failures=-1,
        error={
            "error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}
        },
        headers={"retry-after-ms": "10"},
    ),
    _case(
        "http_503_always",
        "an overloaded server (5xx): retried by the SDK, then the error",
        _text(),
        status=503,
        failures=-1,
        error={"error": {"message": "Service Unavailable", "type": "server_error"}},
        headers={"retry-after-ms": "10"},
    ),
    _case(
        "cut_mid_stream",
        "the connection dropped after two chunks",
        [*_text(), DONE],
        abort_after=2,
    ),
    _case(
        "stalled_stream_times_out",
        "a server that stops sending mid-stream: the request's timeout ends it",
        [*_text(), DONE],
        stall_after=2,
        settings={"timeout": 0.5},
    ),
]
