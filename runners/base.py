"""The runner contract: a runner turns prompts into per-sample measurements, nothing else.

A runner never writes files and never scores: it yields `SampleResult`s, and the harness adds the
cell's identity, the score and the environment before the store writes them. `CellInfo` is what
the runner learned while preparing the cell (the loaded model's size, the block length it
resolved), recorded with every row so that nothing decided at run time goes unrecorded.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.contracts import FORWARD_KINDS


class SkipCell(Exception):
    """The combination cannot run (found only once the model or the engine build is known): the
    harness records a `skipped` row with the reason and `columns` (e.g. the build it needs)."""

    def __init__(self, reason: str, columns: dict[str, Any] | None = None):
        super().__init__(reason)
        self.columns = dict(columns or {})


@dataclass
class CellInfo:
    model_family: str | None = None
    model_parameters: int | None = None
    model_weight_bytes: int | None = None
    block_length: int | None = None  # resolved (config null -> the checkpoint's block_size)
    max_positions: int | None = None
    hardware_detected: str | None = None
    timing_only: bool = False
    model_shape: Any = None  # harness.costs.ModelShape: what the roofline needs, recorded as model_* columns
    draft_lora_tensors: int | None = None  # saved draft-LoRA tensors loaded onto the model (None = no adapter)
    tokenizer: Any = None  # for prompt building; not recorded


@dataclass
class SampleResult:
    sample_id: str
    repetition: int = 0
    status: str = "ok"  # ok | error
    error: str | None = None
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    max_new_tokens: int | None = None
    tokens_untrimmed: int | None = None
    finish_reason: str | None = None
    output_token_ids: list[int] | None = None
    output_text: str | None = None
    forwards: dict[str, int] | None = field(default_factory=dict)  # None: not observable (served engines)
    query_tokens: dict[str, int] | None = field(default_factory=dict)
    accept_lengths: list[int] | None = None
    vendor_nfe: int | None = None
    vendor_nfe_rule: str | None = None
    forward_kinds: list[str] | None = None
    forward_query_tokens: list[int] | None = None
    forward_cache_tokens: list[int] | None = None
    forward_seconds: list[float] | None = None
    forward_timing_method: str | None = None  # how forward_seconds were taken (cuda_event | perf_counter)
    emit_seconds: list[float] | None = None
    emit_counts: list[int] | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    timing_method: str | None = None  # how ttft_s / e2e_s / emit_seconds were taken
    draft_adapter_active: bool | None = None
    acceptance_rule: str | None = None  # greedy | speculative | sample_match (speculative modes only)
    batch_size: int | None = None  # sequences in this row's forwards, when the runner decides it per sample
    extra: dict[str, Any] = field(default_factory=dict)  # runner-specific record columns (harness.records.COLUMNS)

    def columns(self) -> dict:
        row = {k: v for k, v in self.__dict__.items() if k not in ("forwards", "query_tokens", "extra")}
        if self.batch_size is None:
            del row["batch_size"]  # the cell's (mode.batch_size) stands
        if self.status == "ok" and self.forwards is not None:
            for kind in FORWARD_KINDS:
                row[f"forwards_{kind}"] = self.forwards.get(kind, 0)
                row[f"query_tokens_{kind}"] = (self.query_tokens or {}).get(kind, 0)
        return {**row, **self.extra}


class Meter:
    """Marks the regions a runner measures, so the harness can attribute GPU energy to exactly the
    work the records count: ``with self.meter.measure(): <one timed decode>``, warm-up outside.
    The harness replaces the default, which does nothing, with `harness.telemetry.CellTelemetry`."""

    @contextlib.contextmanager
    def measure(self):
        yield


class Runner(ABC):
    name: str
    modes: tuple[str, ...]  # decoding modes this runner can execute
    uses_task_samples: bool = True  # False: the runner makes its own samples (timing shapes); no task prompts
    meter: Meter = Meter()

    @abstractmethod
    def prepare(self, bench) -> CellInfo:
        """Load (or reuse) what the cell needs; called once per cell, before any sample."""

    @abstractmethod
    def run(self, bench, info: CellInfo, samples: list) -> Iterator[SampleResult]:
        """Decode every sample (harness.prompts.Sample or Unfittable), yielding one result per repetition."""
