"""The reference runner: our decoders (reference_decoders) over a transformers model, timed.

Per sample: `warmup` untimed decodes (first batch only: they load kernels and caches), then timed
repetitions until both `min_repetitions` and `min_duration_s` are met (capped at
`max_repetitions`). Each repetition is a record; statistics over repetitions are derived later,
never stored. Each timed decode runs inside `self.meter.measure()`, so GPU energy is counted over
exactly the decodes whose tokens are recorded. How each time was taken is in the row
(`timing_method`, `forward_timing_method`; reference_decoders.counting). `runner.backend` picks
eager or compiled forwards (the `backend` column); with compiled, a decode that is the first to
need a shape is preceded by an untimed warm-up decode, reported in `compile_s` and in no time.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import traceback
import zlib
from collections import OrderedDict
from collections.abc import Iterator

import torch

import reference_decoders
from harness.costs import model_shape
from harness.models import resolve_source
from harness.prompts import Unfittable
from reference_decoders.loading import LoadedModel, load_checkpoint
from runners.base import CellInfo, Runner, SampleResult

log = logging.getLogger("dlm-bench")


class ModelCache:
    """Keeps the most recently used model(s): consecutive cells of one model load it once."""

    def __init__(self, capacity: int = 1):
        self.capacity = capacity
        self.loads = 0
        self._entries: OrderedDict[tuple, LoadedModel] = OrderedDict()

    def get(self, key: tuple, load) -> LoadedModel:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        while len(self._entries) >= self.capacity:
            self._entries.popitem(last=False)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        self.loads += 1
        log.info("loading model %s (load #%d in this process)", key[0], self.loads)
        self._entries[key] = load()
        return self._entries[key]


MODEL_CACHE = ModelCache()


def run_device(bench) -> str:
    device = bench.runner.device
    return bench.hardware.device_type if device == "auto" else device


class ReferenceRunner(Runner):
    name = "reference"
    modes = reference_decoders.MODES

    def __init__(self):
        self.loaded: LoadedModel | None = None

    def prepare(self, bench) -> CellInfo:
        model_cfg = bench.model
        device = run_device(bench)
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("runner.device is cuda but no CUDA device is available; valid here: cpu")
        draft_lora = model_cfg.draft_lora if bench.mode.use_draft_lora else None
        key = (model_cfg.source, model_cfg.revision, model_cfg.family, model_cfg.dtype, device, draft_lora, model_cfg.random_weights)
        self.loaded = MODEL_CACHE.get(
            key,
            lambda: load_checkpoint(
                resolve_source(model_cfg.source),
                revision=model_cfg.revision,
                family=model_cfg.family,
                dtype=model_cfg.dtype,
                device=device,
                draft_lora=draft_lora,
                random_weights=model_cfg.random_weights,
            ),
        )
        loaded = self.loaded
        block_length = None
        if bench.mode.name != "ar":
            block_length = bench.mode.block_length or loaded.block_size or reference_decoders.params.DEFAULT_BLOCK_LENGTH
        return CellInfo(
            model_family=loaded.family,
            model_parameters=loaded.num_parameters,
            model_weight_bytes=loaded.weight_bytes,
            block_length=block_length,
            max_positions=loaded.max_positions,
            timing_only=loaded.random_weights,
            model_shape=model_shape(loaded.model),
            tokenizer=loaded.tokenizer,
            draft_lora_tensors=loaded.draft_lora_tensors,
        )

    def decode_params(self, bench, info: CellInfo, sample_id: str) -> dict:
        mode = bench.mode
        params = dict(
            max_new_tokens=bench.task.max_new_tokens,
            temperature=mode.temperature,
            seed=zlib.crc32(f"{bench.seed}-{sample_id}".encode()),
            eos_token_ids=self.loaded.eos_token_ids,
        )
        if mode.name != "ar":
            params.update(block_length=info.block_length, threshold=mode.threshold, mask_token_id=self.loaded.mask_token_id)
        if mode.name == "diffusion":
            params["steps"] = mode.steps
        if mode.name == "linear_spec":
            params["use_draft_adapter"] = mode.use_draft_lora
        if mode.name in reference_decoders.SPECULATIVE_MODES:
            params["acceptance"] = mode.acceptance
        return params

    def run(self, bench, info: CellInfo, samples: list) -> Iterator[SampleResult]:
        runner_cfg = bench.runner
        batch_size = bench.mode.batch_size
        fitted = [s for s in samples if not isinstance(s, Unfittable)]
        for sample in samples:
            if isinstance(sample, Unfittable):
                yield SampleResult(sample_id=sample.example.id, status="error", error=sample.reason)
        for start in range(0, len(fitted), batch_size):
            batch = fitted[start : start + batch_size]
            try:
                compile_s = None  # compiled backend: compile time since the last recorded decode
                if start == 0:
                    for _ in range(runner_cfg.warmup):
                        compile_s = _add(compile_s, self.decode(bench, info, batch)[0].compile_seconds)
                repetition, spent = 0, 0.0
                while repetition < runner_cfg.min_repetitions or (
                    spent < runner_cfg.min_duration_s and repetition < runner_cfg.max_repetitions
                ):
                    with self.meter.measure():
                        results = self.decode(bench, info, batch)
                    compile_s, carried = None, _add(compile_s, results[0].compile_seconds)
                    for sample, result in zip(batch, results):
                        yield self.to_sample_result(sample, result, repetition, bench, carried)
                    spent += max(r.emit_seconds[-1] for r in results)
                    repetition += 1
            except Exception as exc:  # one failing sample (OOM, timeout, bad output) must not sink the cell
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()  # an out-of-memory sample leaves its blocks cached
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                for sample in batch:
                    yield SampleResult(sample_id=sample.id, status="error", error=detail, prompt_tokens=len(sample.prompt_ids))

    def decode(self, bench, info: CellInfo, batch: list) -> list:
        params = self.decode_params(bench, info, batch[0].id)
        prompts = [s.prompt_ids for s in batch]
        with deadline(bench.runner.sample_timeout_s):
            return reference_decoders.generate_batch(
                self.loaded.model, prompts, bench.mode.name, time_forwards=bench.runner.time_forwards,
                backend=bench.runner.backend, **params
            )

    def to_sample_result(self, sample, result, repetition: int, bench, compile_s: float | None = None) -> SampleResult:
        tokenizer = self.loaded.tokenizer
        log = result.forward_log
        return SampleResult(
            sample_id=sample.id,
            repetition=repetition,
            prompt_tokens=len(sample.prompt_ids),
            new_tokens=len(result.tokens),
            max_new_tokens=bench.task.max_new_tokens,
            tokens_untrimmed=result.tokens_untrimmed,
            finish_reason=result.finish_reason,
            output_token_ids=result.tokens,
            output_text=tokenizer.decode(result.tokens, skip_special_tokens=True) if tokenizer is not None else None,
            forwards=result.forwards,
            query_tokens=result.query_tokens,
            accept_lengths=result.accept_lengths if bench.mode.name in ("linear_spec", "quadratic_spec") else None,
            vendor_nfe=result.vendor_nfe,
            vendor_nfe_rule=result.vendor_nfe_rule,
            forward_kinds=log.kinds,
            forward_query_tokens=log.query_tokens,
            forward_cache_tokens=log.cache_tokens,
            forward_seconds=log.seconds or None,
            forward_timing_method=log.timing_method,
            emit_seconds=result.emit_seconds,
            emit_counts=result.emit_counts,
            ttft_s=result.emit_seconds[0] if result.emit_seconds else None,
            e2e_s=result.emit_seconds[-1] if result.emit_seconds else None,
            timing_method=result.timing_method,
            draft_adapter_active=result.draft_adapter_active,
            acceptance_rule=result.acceptance_rule,
            batch_size=result.batch_size,
            extra={"compile_s": compile_s},
        )


def _add(total: float | None, seconds: float | None) -> float | None:
    """Sum of compile seconds where null (eager) stays null."""
    return total if seconds is None else (total or 0.0) + seconds


class SampleTimeout(TimeoutError):
    pass


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Raise SampleTimeout in this thread after `seconds` of wall time (POSIX, main thread only)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise SampleTimeout(f"sample exceeded runner.sample_timeout_s={seconds}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
