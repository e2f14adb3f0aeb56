"""One cell = model x mode x runner x hardware x context x task (x seed): identity, key, skips."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from harness.config import BenchConfig

# Output locations, rerun switches and the split into shards (harness/shards.py: every shard of a
# cell shares its key) do not change what a cell measures. Dotted names are nested fields.
NOT_IDENTITY = ("results_dir", "force", "task.shard", "runner.shards")


@dataclass(frozen=True)
class Cell:
    bench: BenchConfig
    key: str
    label: str


def make_cell(bench: BenchConfig) -> Cell:
    identity = {k: v for k, v in asdict(bench).items() if k not in NOT_IDENTITY}
    for group, _, name in (n.partition(".") for n in NOT_IDENTITY if "." in n):
        identity.get(group, {}).pop(name, None)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
    label = f"{bench.model.name}_{bench.mode.name}_{bench.task.name}_{bench.context.name}"
    return Cell(bench=bench, key=digest, label=label)


def skip_reason(bench: BenchConfig, runner_modes: tuple[str, ...]) -> str | None:
    """Why this combination cannot run (recorded, not raised), or None."""
    mode = bench.mode.name
    if mode not in bench.model.modes:
        return (
            f"model {bench.model.name} was trained for modes {list(bench.model.modes)}; "
            f"{mode} needs a checkpoint trained with a diffusion objective"
        )
    if mode not in runner_modes:
        return f"runner {bench.runner.name} cannot run mode {mode}; it runs {list(runner_modes)}"
    if bench.mode.use_draft_lora and not bench.model.draft_lora:
        return f"mode asks for the draft LoRA but model {bench.model.name} configures none (model.draft_lora)"
    return None


def identity_columns(cell: Cell) -> dict:
    b = cell.bench
    return {
        "sweep": b.sweep.name,
        "cell_key": cell.key,
        "model": b.model.name,
        "model_source": b.model.source,
        "model_revision": b.model.revision,
        "model_dtype": b.model.dtype,
        "mode": b.mode.name,
        "block_length": b.mode.block_length,
        "threshold": b.mode.threshold,
        "steps": b.mode.steps,
        "temperature": b.mode.temperature,
        "batch_size": b.mode.batch_size,
        "draft_lora": b.model.draft_lora if b.mode.use_draft_lora else None,
        "runner": b.runner.name,
        "hardware": b.hardware.name,
        "hardware_mismatch_allowed": b.hardware.allow_mismatch,
        "context": b.context.name,
        "context_tokens": b.context.input_tokens,
        "task": b.task.name,
        "seed": b.seed,
        "timing_only": b.model.random_weights,
    }
