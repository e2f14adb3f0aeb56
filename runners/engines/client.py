"""Asynchronous streaming client: one cell = a fixed list of requests, at most N in flight.

Timing follows vLLM's `vllm bench serve` (vllm/benchmarks/lib/endpoint_request_func.py):
  start      just before the HTTP request is sent
  TTFT       start -> the first stream chunk that carries output (OpenAI: non-empty `choices`)
  chunks     the arrival time (from request start) and token count of every output-bearing
             chunk; both ITL definitions derive from them (harness.engine_metrics)
  E2E        start -> the last output-bearing chunk (the trailing usage-only chunk is not output)
  tokens     `usage.completion_tokens` of the final chunk (stream_options.include_usage), and per
             chunk from vLLM's `continuous_usage_stats` (cumulative count on every chunk)
The cell's duration runs from just before the first request is sent to the end of the last.
Prompts are sent as token ids, so the engine sees exactly the prompt the harness built.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

FINISH_REASONS = {"stop": "eos", "length": "length"}  # engine -> record (no stop strings are sent)


class StreamError(RuntimeError):
    """The server answered with an error, or the stream carried no output."""


@dataclass(frozen=True)
class RequestSpec:
    sample_id: str
    repetition: int
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    ignore_eos: bool = False


@dataclass
class StreamResult:
    spec: RequestSpec
    ok: bool = False
    error: str | None = None
    start_s: float | None = None  # request start, seconds from the cell's start
    chunk_times_s: list[float] = field(default_factory=list)  # output-bearing chunks, from request start
    chunk_tokens: list[int | None] = field(default_factory=list)  # tokens per chunk (None: not reported)
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    output_token_ids: list[int] | None = None
    text: str = ""
    finish_reason: str | None = None
    engine_meta: dict[str, Any] = field(default_factory=dict)  # per-request engine statistics

    @property
    def ttft_s(self) -> float | None:
        return self.chunk_times_s[0] if self.chunk_times_s else None

    @property
    def e2e_s(self) -> float | None:
        return self.chunk_times_s[-1] if self.chunk_times_s else None



class OpenAICompletionsStream:
    """`POST /v1/completions` with token-id prompts (vLLM, SGLang)."""

    path = "/v1/completions"

    def __init__(self):
        self.counted = 0  # cumulative completion tokens seen on chunks

    @staticmethod
    def payload(spec: RequestSpec, model: str) -> dict:
        body = {
            "model": model,
            "prompt": spec.prompt_ids,
            "max_tokens": spec.max_new_tokens,
            "temperature": spec.temperature,
            "ignore_eos": spec.ignore_eos,
            "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
            "return_token_ids": True,  # vLLM: the ids of each chunk (ignored by servers without it)
        }
        if spec.seed is not None and spec.temperature > 0:
            body["seed"] = spec.seed
        return body

    def feed(self, data: dict, t: float, result: StreamResult) -> None:
        if "error" in data:
            raise StreamError(_error_text(data["error"]))
        choices = data.get("choices") or []
        usage = data.get("usage") or {}
        if choices:  # an output chunk, even when its text is empty (special tokens)
            choice = choices[0]
            tokens = None
            if usage.get("completion_tokens") is not None:
                tokens = usage["completion_tokens"] - self.counted
                self.counted = usage["completion_tokens"]
            ids = choice.get("token_ids")
            if ids is not None:
                result.output_token_ids = (result.output_token_ids or []) + list(ids)
                tokens = len(ids) if tokens is None else tokens
            result.chunk_times_s.append(t)
            result.chunk_tokens.append(tokens)
            result.text += choice.get("text") or ""
            if choice.get("finish_reason"):
                result.finish_reason = FINISH_REASONS.get(choice["finish_reason"], choice["finish_reason"])
        elif usage:  # the final usage-only chunk
            result.completion_tokens = usage.get("completion_tokens")
            result.prompt_tokens = usage.get("prompt_tokens")
            speculative = (data.get("metrics") or {}).get("speculative_decoding")
            if speculative:
                result.engine_meta = dict(speculative)


class SGLangGenerateStream:
    """SGLang's native `POST /generate`: `input_ids` in; each event carries `meta_info` with the
    cumulative `completion_tokens` and, for speculative decoding, `spec_verify_ct` and friends.
    `text` / `output_ids` are the whole output so far by default, and only the event's new part
    with --incremental-streaming-output (`incremental=True`: the server must have been started so)."""

    path = "/generate"

    def __init__(self, incremental: bool = False):
        self.counted = 0
        self.incremental = incremental

    @staticmethod
    def payload(spec: RequestSpec, model: str) -> dict:
        params = {"max_new_tokens": spec.max_new_tokens, "temperature": spec.temperature, "ignore_eos": spec.ignore_eos}
        if spec.seed is not None and spec.temperature > 0:
            params["sampling_seed"] = spec.seed
        return {"input_ids": spec.prompt_ids, "sampling_params": params, "stream": True}

    def feed(self, data: dict, t: float, result: StreamResult) -> None:
        if "error" in data:
            raise StreamError(_error_text(data["error"]))
        meta = data.get("meta_info") or {}
        total = meta.get("completion_tokens")
        if total is None:
            return
        new = total - self.counted
        if new > 0:  # an event without new tokens is not an output chunk
            result.chunk_times_s.append(t)
            result.chunk_tokens.append(new)
            ids, text = data.get("output_ids"), data.get("text")
            if self.incremental:
                if ids is not None:
                    result.output_token_ids = (result.output_token_ids or []) + list(ids)
                result.text += text or ""
            else:
                if ids is not None:
                    result.output_token_ids = list(ids)
                result.text = text if text is not None else result.text
            self.counted = total
        result.completion_tokens = total
        result.prompt_tokens = meta.get("prompt_tokens", result.prompt_tokens)
        reason = meta.get("finish_reason")
        if reason:
            kind = reason.get("type") if isinstance(reason, dict) else reason
            result.finish_reason = FINISH_REASONS.get(kind, kind)
        spec_fields = {k: v for k, v in meta.items() if k.startswith("spec_")}
        if spec_fields:
            result.engine_meta = spec_fields


PROTOCOLS = {"openai": OpenAICompletionsStream, "generate": SGLangGenerateStream}


def _error_text(error: Any) -> str:
    return error.get("message", json.dumps(error)) if isinstance(error, dict) else str(error)


def parse_sse_line(line: str) -> dict | None | str:
    """One line of a server-sent-event stream -> its JSON payload, "[DONE]", or None (not data)."""
    line = line.strip()
    if not line.startswith("data:"):
        return None
    body = line[len("data:"):].strip()
    return body if body == "[DONE]" else json.loads(body)


async def stream_request(session, url: str, protocol: str, model: str, spec: RequestSpec, cell_start: float,
                         options: dict) -> StreamResult:
    decoder = PROTOCOLS[protocol](**options)
    result = StreamResult(spec)
    start = time.perf_counter()
    result.start_s = start - cell_start
    try:
        async with session.post(url + decoder.path, json=decoder.payload(spec, model)) as response:
            if response.status != 200:
                raise StreamError(f"HTTP {response.status}: {(await response.text())[:1000]}")
            async for raw in response.content:  # one SSE line at a time
                event = parse_sse_line(raw.decode("utf-8", errors="replace"))
                if event is None:
                    continue
                if event == "[DONE]":
                    break
                decoder.feed(event, time.perf_counter() - start, result)
        if not result.chunk_times_s:
            raise StreamError("the stream ended without an output chunk")
        result.ok = True
    except Exception as exc:  # noqa: BLE001 - a failed request is a recorded row, never a crash
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def run_requests(base_url: str, protocol: str, model: str, specs: list[RequestSpec], concurrency: int,
                       timeout_s: float, options: dict | None = None) -> tuple[list[StreamResult], float]:
    """All `specs`, at most `concurrency` in flight (closed loop, as `vllm bench serve
    --max-concurrency N --request-rate inf`). Returns the results in spec order and the duration.
    `options` go to the protocol's stream parser (SGLang: incremental)."""
    import aiohttp

    limit = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, read_bufsize=2**20) as session:
        cell_start = time.perf_counter()

        async def one(spec: RequestSpec) -> StreamResult:
            async with limit:
                return await stream_request(session, base_url.rstrip("/"), protocol, model, spec, cell_start,
                                            options or {})

        results = await asyncio.gather(*(one(spec) for spec in specs))
        duration = time.perf_counter() - cell_start
    return list(results), duration
