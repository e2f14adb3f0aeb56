"""One cell = model x mode x runner x hardware x context x task (x seed): identity, key, skips.

The cell key is two hashes side by side (harness/README.md, "Results store and cell keys"):
16 hex digits of the resolved configuration, output paths excluded (`config_key`), then 8 of what
the configuration does not pin: the task's version, the content of a local data source, and the
content of a local checkpoint folder (and of a draft LoRA outside it). A checkpoint swapped at the
same path, an edited data file or a new task version makes a new key, so the old rows are never
reused; the store sets the old file aside once the new one is complete (`ResultStore.supersede`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.config import BenchConfig, ModelConfig

# Output locations, rerun switches and the split into shards (harness/shards.py: every shard of a
# cell shares its key) do not change what a cell measures. Dotted names are nested fields.
NOT_IDENTITY = ("results_dir", "force", "task.shard", "runner.shards")
CONFIG_KEY_HEX = 16
PROVENANCE_KEY_HEX = 8


@dataclass(frozen=True)
class Cell:
    bench: BenchConfig
    key: str
    label: str
    config_key: str = ""  # the configuration's part of `key` (its prefix)
    provenance: dict = field(default_factory=dict)  # what the rest of `key` hashes


def _digest(value, n: int) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:n]


def make_cell(bench: BenchConfig) -> Cell:
    identity = {k: v for k, v in asdict(bench).items() if k not in NOT_IDENTITY}
    for group, _, name in (n.partition(".") for n in NOT_IDENTITY if "." in n):
        identity.get(group, {}).pop(name, None)
    provenance = cell_provenance(bench)
    config_key = _digest(identity, CONFIG_KEY_HEX)
    label = f"{bench.model.name}_{bench.mode.name}_{bench.task.name}_{bench.context.name}"
    return Cell(bench=bench, key=config_key + _digest(provenance, PROVENANCE_KEY_HEX), label=label,
                config_key=config_key, provenance=provenance)


def cell_provenance(bench: BenchConfig) -> dict:
    """What a cell's results depend on beyond its configuration, each cheap to read again."""
    from harness.tasks import get_task
    from harness.tasks.data import source_digest

    draft = bench.model.draft_lora if bench.mode.use_draft_lora else None
    return {
        "task_version": get_task(bench.task.name).version,
        "data": source_digest(bench.task.source),
        "checkpoint": checkpoint_identity(bench.model),
        "draft_lora": _folder_digest(draft) if draft and Path(draft).is_absolute() else None,
    }


def checkpoint_identity(model: ModelConfig) -> str | None:
    """A local checkpoint's content fingerprint; None for a hub id (its configured revision is in
    the configuration; `loaded_revision` names the commit it resolved to)."""
    from harness.models import resolve_source

    try:
        source = resolve_source(model.source)
    except (ValueError, FileNotFoundError) as exc:
        return f"unresolvable: {exc}"  # the cell fails saying so; a stable key meanwhile
    if _is_local(source):
        return _folder_digest(source)
    return None


def loaded_revision(model: ModelConfig) -> str | None:
    """What `model_revision` records: the hub commit loaded (from the local hub cache), or a local
    folder's content fingerprint; None when neither can be seen."""
    from reference_decoders.loading import resolved_revision

    from harness.models import resolve_source

    try:
        source = resolve_source(model.source)
    except (ValueError, FileNotFoundError):
        return None
    if _is_local(source):
        digest = _folder_digest(source)
        return digest if digest.startswith("sha256:") else None
    return resolved_revision(source, model.revision)


def _is_local(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or Path(source).exists()


def _folder_digest(path: str) -> str:
    from reference_decoders.loading import checkpoint_digest

    folder = Path(path).expanduser()
    return checkpoint_digest(folder) if folder.is_dir() else f"missing: {folder}"


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
        "model_revision": loaded_revision(b.model),
        "model_dtype": b.model.dtype,
        "mode": b.mode.name,
        "block_length": b.mode.block_length,
        "threshold": b.mode.threshold,
        "steps": b.mode.steps,
        "temperature": b.mode.temperature,
        "batch_size": b.mode.batch_size,
        "draft_lora": b.model.draft_lora if b.mode.use_draft_lora else None,
        "runner": b.runner.name,
        "backend": getattr(b.runner, "backend", None),
        "hardware": b.hardware.name,
        "hardware_mismatch_allowed": b.hardware.allow_mismatch,
        "context": b.context.name,
        "context_tokens": b.context.input_tokens,
        "task": b.task.name,
        "seed": b.seed,
        "timing_only": b.model.random_weights,
    }
