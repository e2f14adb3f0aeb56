"""The timing runner: the cost of each forward a mode makes, on any weights (timing-only cells).

What a forward costs depends on its shapes, not on the weights' values, so a model built from a
published config with random weights (``model.random_weights=true``, e.g. ``model=qwen3-8b-shapes``)
measures the cost side of every mode on any GPU without a download. A sample is a forward shape:

  mode            forwards of one decoding step (L = the resolved block length)
  ar              decode: q = 1, causal
  diffusion       denoise: q = L, block (bidirectional); commit: q = L, causal
  linear_spec     draft: q = L, block; verify: q = L, causal
  quadratic_spec  quadratic: q = L(L+1), the TiDAR mask

each over a KV cache of ``context.input_tokens`` tokens per row, for every batch size in
``runner.batch_sizes`` (independent sequences sharing one forward, i.e. concurrency). The cache
is filled once per shape by an untimed prefill; every timed forward reads it and leaves it as it
was, so all repetitions see the same context. Each forward is followed by a host readback of its
last logits, as a decoding step would do, so the host cannot queue forwards ahead of the GPU.

Per shape: ``runner.warmup`` untimed forwards, then timed forwards until both
``runner.min_repetitions`` and ``runner.min_duration_s`` are met (capped at ``max_repetitions``);
one record per timed forward, with TPF and accuracy null (there are no tokens). The roofline of
each record is derived by `harness.costs`.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import torch

import reference_decoders
from reference_decoders import masks
from reference_decoders.adapter import ModelAdapter
from reference_decoders.counting import ForwardCounter
from runners.base import CellInfo, SampleResult
from runners.reference import ReferenceRunner

CAUSAL, BLOCK, QUADRATIC = "causal", "block", "quadratic"
STEP_FORWARDS = {  # mode -> (forward kind, attention pattern) of one decoding step
    "ar": [("decode", CAUSAL)],
    "diffusion": [("denoise", BLOCK), ("commit", CAUSAL)],
    "linear_spec": [("draft", BLOCK), ("verify", CAUSAL)],
    "quadratic_spec": [("quadratic", QUADRATIC)],
}


@dataclass(frozen=True)
class ForwardShape:
    kind: str
    pattern: str
    query_length: int  # per row
    batch_size: int
    context_tokens: int  # cached tokens per row
    block_length: int | None

    @property
    def id(self) -> str:
        return f"{self.kind}-q{self.query_length}-b{self.batch_size}"


def step_shapes(mode: str, block_length: int | None, batch_sizes: list[int], context_tokens: int) -> list[ForwardShape]:
    shapes = []
    for batch in batch_sizes:
        for kind, pattern in STEP_FORWARDS[mode]:
            if mode == "ar":
                q = 1
            elif pattern == QUADRATIC:
                q = block_length * (block_length + 1)
            else:
                q = block_length
            shapes.append(ForwardShape(kind, pattern, q, batch, context_tokens, block_length))
    return shapes


class TimingRunner(ReferenceRunner):
    name = "timing"
    modes = reference_decoders.MODES
    uses_task_samples = False

    def prepare(self, bench) -> CellInfo:
        info = super().prepare(bench)
        info.timing_only = True  # a forward's cost is all these cells measure, whatever the weights
        return info

    def run(self, bench, info: CellInfo, samples: list) -> Iterator[SampleResult]:
        cfg = bench.runner
        shapes = step_shapes(bench.mode.name, info.block_length, list(cfg.batch_sizes), bench.context.input_tokens)
        for shape in shapes:
            try:
                yield from self.time_shape(shape, cfg)
            except Exception as exc:  # e.g. out of memory at a large batch: recorded, the next shape runs
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                yield SampleResult(sample_id=shape.id, status="error", error=detail, batch_size=shape.batch_size,
                                   prompt_tokens=shape.context_tokens)
            finally:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    def time_shape(self, shape: ForwardShape, cfg) -> Iterator[SampleResult]:
        model = self.loaded.model
        device = next(model.parameters()).device
        vocab = int(model.config.vocab_size)
        generator = torch.Generator(device="cpu").manual_seed(0)
        query = torch.randint(0, vocab, (shape.batch_size, shape.query_length), generator=generator).to(device)
        counter = ForwardCounter(reference_decoders.counting_target(model), time_forwards=True)
        try:
            adapter = ModelAdapter(model, counter)
            state = self.fill_cache(adapter, shape, vocab, generator, device)
            first_timed = len(counter.log.kinds) + cfg.warmup
            for _ in range(cfg.warmup):
                self.step(adapter, state, query, shape)
            repetitions, spent = 0, 0.0
            with self.meter.measure():
                while repetitions < cfg.min_repetitions or (spent < cfg.min_duration_s and repetitions < cfg.max_repetitions):
                    started = time.perf_counter()
                    self.step(adapter, state, query, shape)
                    spent += time.perf_counter() - started
                    repetitions += 1
        finally:
            counter.close()  # resolves the CUDA event times
        log = counter.log
        for repetition, i in enumerate(range(first_timed, len(log.kinds))):
            yield SampleResult(
                sample_id=shape.id,
                repetition=repetition,
                prompt_tokens=shape.context_tokens,
                batch_size=shape.batch_size,
                forwards={log.kinds[i]: 1},
                query_tokens={log.kinds[i]: log.query_tokens[i]},
                forward_kinds=[log.kinds[i]],
                forward_query_tokens=[log.query_tokens[i]],
                forward_cache_tokens=[log.cache_tokens[i]],
                forward_seconds=[log.seconds[i]],
                forward_timing_method=log.timing_method,
            )

    def fill_cache(self, adapter: ModelAdapter, shape: ForwardShape, vocab: int, generator, device):
        """An untimed prefill of ``context_tokens`` random tokens per row (an empty cache for 0)."""
        if shape.context_tokens == 0:
            return adapter.new_state(shape.batch_size)
        prompt = torch.randint(0, vocab, (shape.batch_size, shape.context_tokens), generator=generator).to(device)
        state, _ = adapter.prefill(prompt)
        return state

    def step(self, adapter: ModelAdapter, state, query: torch.Tensor, shape: ForwardShape) -> None:
        """One forward of the shape; the cache is left as it was, the last logits read to the host."""
        if shape.pattern == BLOCK:
            logits = adapter.block_pass(state, query, shape.kind)
        else:
            if shape.pattern == QUADRATIC:
                L = shape.block_length
                logits = adapter.forward(state, query, shape.kind, masks.quadratic_spec(L, adapter.device),
                                         masks.quadratic_spec_positions(L, adapter.device))
            else:
                logits = adapter.forward(state, query, shape.kind, None)
            adapter.keep(state, 0)
        logits[:, -1].argmax(-1).tolist()  # a decoding step reads its tokens back: this synchronises
