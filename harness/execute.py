"""Run one cell: check it, run its runner, score, and hand the records to the store.

Failure is data: a sample that fails becomes an `error` row (inside the runner), a combination
that cannot run a `skipped` row, and a cell that breaks as a whole a `failed` row with the tail of
its traceback. The sweep goes on; the next run retries failed cells and skips complete ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import traceback
from dataclasses import asdict
from pathlib import Path

from harness import environment, progress
from harness.cell import Cell, identity_columns, loaded_revision, make_cell, skip_reason
from harness.config import BenchConfig
from harness.hardware import check_hardware, hardware_columns, run_device_type
from harness.prompts import Unfittable, build_samples, within_positions
from harness.shards import Shard, all_shards, parse_shard, retire_superseded, shard_complete, shard_samples
from harness.telemetry import open_cell_telemetry
from harness.records import SCHEMA_VERSION
from harness.store import CellState, ResultStore, note_kept_failure
from harness.tasks import columns as task_columns
from harness.tasks import get_task
from runners import SkipCell, get_runner

log = logging.getLogger("dlm-bench")


def run_cell(bench: BenchConfig, job_num: int | None = None) -> dict:
    """Run one cell (or one shard of it); returns a small summary: status, key, label, file, counts."""
    shard = parse_shard(bench.task.shard) if bench.task.shard is not None else None
    if shard is None and getattr(bench.runner, "shards", 1) > 1:
        return run_shards_in_turn(bench, job_num)
    cell = make_cell(bench)
    store = ResultStore(bench.results_dir, bench.sweep.name)
    progress.attach_sweep_log(store.root)
    clean_temporaries_once(store)
    where = progress.position(job_num)
    name = cell.label if shard is None else f"{cell.label} shard {shard}"
    summary = {"key": cell.key, "label": cell.label, **({"shard": str(shard)} if shard is not None else {})}
    state = store.inspect(cell.key, shard)  # a corrupt file is set aside here, and the cell runs
    if state is not None and state.complete and not bench.force:
        stale = stale_hub_revision(bench, state)
        if stale is None:
            log.info("%s cell %s (%s) already complete: not rerun (force=true reruns it)", where, name, cell.key)
            return {**summary, "status": "complete", **code_revision_check(cell, state)}
        log.warning("%s cell %s (%s) is stale, rerunning it: %s", where, name, cell.key, stale)
    elif not bench.force and shard_complete(store, cell.key, shard):  # complete in its other form (sharded or not)
        log.info("%s cell %s (%s) already complete: not rerun (force=true reruns it)", where, name, cell.key)
        return {**summary, "status": "complete"}
    # A complete file stays until its replacement is complete: a forced rerun that fails keeps it.
    keep = state.path if state is not None and state.complete else None
    log.info("%s cell %s (%s) starting", where, name, cell.key)

    hardware = check_hardware(bench.hardware, bench.runner)  # refuses a mismatch before any load
    base = {
        "schema_version": SCHEMA_VERSION,
        **identity_columns(cell),
        **hardware_columns(bench.hardware, hardware),
        **timing_columns(bench.runner),
        **protocol_columns(bench),
        "started_at": dt.datetime.now(dt.timezone.utc),
        **environment.capture(),
        "shard": None if shard is None else str(shard),
    }
    runner = get_runner(bench.runner.name)
    try:
        reason = skip_reason(bench, runner.modes)
        if reason:
            raise SkipCell(reason)
        rows, metadata = collect_rows(bench, runner, base, shard)
    except SkipCell as skip:
        return {**summary, **record_cell_outcome(store, cell, {**base, **skip.columns}, "skipped", str(skip), keep, shard)}
    except Exception as exc:  # a cell that cannot even start is recorded, and the sweep goes on
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]).strip()
        return {**summary, **record_cell_outcome(store, cell, base, "failed", detail, keep, shard)}
    path = store.write_cell(cell.key, cell.label, rows, metadata={**cell_metadata(cell), **metadata}, shard=shard)
    supersede_older_versions(store, cell)
    retired = retire_superseded(store, cell.key, shard)
    errors = sum(r.get("status") != "ok" for r in rows)
    log.info("cell %s done: %d records, %d sample errors -> %s%s", name, len(rows), errors, path.name,
             f" (replaces {', '.join(p.name for p in retired)})" if retired else "")
    return {**summary, "status": "ok", "rows": len(rows), "errors": errors, "file": str(path)}


def run_shards_in_turn(bench: BenchConfig, job_num: int | None) -> dict:
    """A job for a whole sharded cell (a single run, or a launch the sweep did not expand): its
    shards one after another in this process, one model load, each resumable on its own."""
    results = [run_cell(dataclasses.replace(bench, task=dataclasses.replace(bench.task, shard=str(shard))), job_num)
               for shard in all_shards(bench.runner.shards)]
    statuses = [r["status"] for r in results]
    status = next((s for s in ("failed", "ok", "skipped") if s in statuses), "complete")
    return {"key": results[0]["key"], "label": results[0]["label"], "status": status, "shards": results}


_CLEANED: set[Path] = set()


def clean_temporaries_once(store: ResultStore) -> None:
    """Temporaries a killed run left in this sweep folder, removed once per process."""
    if store.root not in _CLEANED:
        _CLEANED.add(store.root)
        store.clean_temporaries()


def cell_metadata(cell: Cell) -> dict[str, str]:
    """The resolved configuration and what the key's second part hashes, as JSON in the file's metadata."""
    return {"cell_config": json.dumps(asdict(cell.bench), sort_keys=True, default=str),
            "cell_provenance": json.dumps(cell.provenance, sort_keys=True)}


def stale_hub_revision(bench: BenchConfig, state: CellState) -> str | None:
    """Why a complete cell of a hub checkpoint is stale: its revision now resolves (in the local hub
    cache) to another commit than the rows were recorded with. None: not stale, or not knowable."""
    now = loaded_revision(bench.model)
    stored = state.model_revision
    if now is None or stored is None or now == stored or stored.startswith("sha256:"):
        return None
    return (f"model {bench.model.source} revision {bench.model.revision or '(default branch)'} now resolves to "
            f"commit {now}; the stored rows ({state.path.name}) were recorded with {stored}")


def code_revision_check(cell: Cell, state: CellState) -> dict:
    """Warn when a reused cell's rows were recorded by another harness commit; the two go in the summary."""
    current = environment.capture().get("env_git_sha")
    stored = state.env_git_sha
    if current is None or stored is None or current == stored:
        return {}
    log.warning("cell %s (%s) reused: its rows were recorded by harness commit %s, this is %s "
                "(force=true reruns it)", cell.label, cell.key, stored[:12], current[:12])
    return {"stored_git_sha": stored, "git_sha": current}


def supersede_older_versions(store: ResultStore, cell: Cell) -> None:
    """Once this version of the cell is complete, set aside the files of its other versions (same
    configuration, other checkpoint, data or task version)."""
    if shard_complete(store, cell.key, None):  # a sharded version: once every shard is
        store.supersede(cell.config_key, cell.key)


def protocol_columns(bench: BenchConfig) -> dict:
    """The task's version and the protocol it was prompted and scored under (task.protocol, resolved)."""
    task = get_task(bench.task.name)
    protocol = task.protocol(bench.task.protocol)
    return {"task_version": task.version, "task_protocol": protocol.name, "task_protocol_version": protocol.version,
            "task_protocol_reference": protocol.reference}


def timing_columns(runner_cfg) -> dict:
    """The runner's stopping rule for timed repetitions (null for runners without one)."""
    return {
        "timing_warmup": getattr(runner_cfg, "warmup", None),
        "timing_min_repetitions": getattr(runner_cfg, "min_repetitions", None),
        "timing_min_duration_s": getattr(runner_cfg, "min_duration_s", None),
        "timing_max_repetitions": getattr(runner_cfg, "max_repetitions", None),
    }


def record_cell_outcome(store: ResultStore, cell: Cell, base: dict, status: str, reason: str,
                        keep: Path | None = None, shard: Shard | None = None) -> dict:
    """One row standing for a whole cell (or shard) that produced no samples; not written over
    `keep`, its complete file (a forced or stale rerun that failed keeps the good rows)."""
    level = logging.INFO if status == "skipped" else logging.ERROR
    name = cell.label if shard is None else f"{cell.label} shard {shard}"
    log.log(level, "cell %s %s: %s", name, status, reason)
    if keep is not None:
        log.warning("cell %s %s on its rerun: kept its complete file %s (the %s row is not written)",
                    name, status, keep.name, status)
        if status == "failed":
            note_kept_failure(store.root, cell.key, name, reason)
        return {"status": status, "reason": reason, "file": str(keep), "kept": str(keep)}
    path = store.write_cell(cell.key, cell.label, [{**base, "status": status, "error": reason}], metadata=cell_metadata(cell),
                            shard=shard)
    if status == "skipped":
        supersede_older_versions(store, cell)
    retire_superseded(store, cell.key, shard)
    return {"status": status, "reason": reason, "file": str(path)}


def collect_rows(bench: BenchConfig, runner, base: dict, shard: Shard | None = None) -> tuple[list[dict], dict[str, str]]:
    """The cell's (or shard's) rows and the metadata for its file (the raw GPU telemetry series)."""
    task = get_task(bench.task.name)
    if runner.uses_task_samples:
        task.preflight(bench.task)  # e.g. no sandbox for generated code: fail before the model loads
    info = runner.prepare(bench)
    if info.max_positions and bench.context.input_tokens + bench.task.max_new_tokens > info.max_positions:
        raise SkipCell(
            f"context {bench.context.input_tokens} + max_new_tokens {bench.task.max_new_tokens} exceeds "
            f"model {bench.model.name}'s {info.max_positions} positions"
        )
    samples = []
    if runner.uses_task_samples:
        samples = build_samples(task, bench.task, info.tokenizer, bench.context.input_tokens)
        samples = within_positions(samples, info.max_positions, bench.task.max_new_tokens)
        # after the full list: a shard's samples, ids and batches are those of the unsharded run
        samples = shard_samples(samples, bench.mode.batch_size, shard, fitted=lambda s: not isinstance(s, Unfittable))
    examples = {s.example.id: s.example for s in samples}
    prompts = {s.example.id: task_columns.prompt_columns(s.example, getattr(s, "prompt_text", None)) for s in samples}
    cell_columns = {
        **base,
        "model_revision": loaded_revision(bench.model),  # after the load: a hub revision resolves now
        "model_family": info.model_family,
        "model_parameters": info.model_parameters,
        "model_weight_bytes": info.model_weight_bytes,
        "block_length": info.block_length,
        "timing_only": info.timing_only,
        "draft_lora_tensors": info.draft_lora_tensors,
        **(info.model_shape.columns() if info.model_shape is not None else {}),
        **(task_columns.cell_columns(task, bench.task, info.tokenizer) if runner.uses_task_samples else {}),
    }
    rows = []
    telemetry = open_cell_telemetry(run_device_type(bench.hardware, bench.runner), bench.hardware.telemetry_interval_s)
    runner.meter = telemetry
    meter = progress.CellProgress(total=len(samples) if runner.uses_task_samples else None)
    with telemetry:
        for result in runner.run(bench, info, samples):
            row = {**cell_columns, **result.columns(), **prompts.get(result.sample_id, {})}
            meter.update(result.sample_id, row.get("new_tokens"))
            example = examples.get(result.sample_id)
            if example is not None:
                row["reference_answer"] = None if example.answer is None else str(example.answer)
                if result.status == "ok" and not info.timing_only:
                    row.update(task_columns.score_columns(task, example, result.output_text or "", cell_columns["stop_strings"]))
            rows.append(row)
    cell_telemetry = telemetry.columns()
    for row in rows:
        row.update(cell_telemetry)
    return rows, telemetry.metadata()
