"""Run one cell: check it, run its runner, score, and hand the records to the store."""

from __future__ import annotations

import datetime as dt
import logging
import traceback

from harness import environment
from harness.cell import Cell, identity_columns, make_cell, skip_reason
from harness.config import BenchConfig
from harness.crosscheck import flag_engine_rows
from harness.hardware import check_hardware
from harness.prompts import build_samples
from harness.records import SCHEMA_VERSION
from harness.store import ResultStore
from harness.tasks import get_task
from runners import get_runner

log = logging.getLogger(__name__)


class SkipCell(Exception):
    """The combination cannot run (found only once the model is known); recorded as skipped."""


def run_cell(bench: BenchConfig) -> dict:
    """Returns a small summary of the cell: status, key, file, counts."""
    cell = make_cell(bench)
    store = ResultStore(bench.results_dir, bench.sweep.name)
    if store.is_complete(cell.key) and not bench.force:
        log.info("cell %s (%s) already complete: skipped", cell.label, cell.key)
        return {"status": "complete", "key": cell.key, "label": cell.label}

    hardware_detected = check_hardware(bench.hardware, bench.runner)  # refuses a mismatch before any load
    started = dt.datetime.now(dt.timezone.utc)
    base = {
        "schema_version": SCHEMA_VERSION,
        **identity_columns(cell),
        "hardware_detected": hardware_detected,
        "task_version": get_task(bench.task.name).version,
        "started_at": started,
        **environment.capture(),
    }
    runner = get_runner(bench.runner.name)
    reason = skip_reason(bench, runner.modes)
    if reason:
        log.info("cell %s skipped: %s", cell.label, reason)
        path = store.write_cell(cell.key, cell.label, [{**base, "status": "skipped", "error": reason}])
        return {"status": "skipped", "key": cell.key, "label": cell.label, "reason": reason, "file": str(path)}

    try:
        rows = collect_rows(bench, cell, runner, base)
    except SkipCell as skip:
        reason = str(skip)
        log.info("cell %s skipped: %s", cell.label, reason)
        path = store.write_cell(cell.key, cell.label, [{**base, "status": "skipped", "error": reason}])
        return {"status": "skipped", "key": cell.key, "label": cell.label, "reason": reason, "file": str(path)}
    except Exception as exc:  # a cell that cannot even start is recorded, and the sweep goes on
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]).strip()
        log.error("cell %s failed: %s", cell.label, detail)
        path = store.write_cell(cell.key, cell.label, [{**base, "status": "failed", "error": detail}])
        return {"status": "failed", "key": cell.key, "label": cell.label, "reason": detail, "file": str(path)}
    rows = flag_engine_rows(rows, store.read)  # engine cells only: vs the sweep's reference cell
    path = store.write_cell(cell.key, cell.label, rows, metadata={"cell_config": repr(bench)})
    errors = sum(r.get("status") != "ok" for r in rows)
    return {"status": "ok", "key": cell.key, "label": cell.label, "rows": len(rows), "errors": errors, "file": str(path)}


def collect_rows(bench: BenchConfig, cell: Cell, runner, base: dict) -> list[dict]:
    info = runner.prepare(bench)
    task = get_task(bench.task.name)
    if info.max_positions and bench.context.input_tokens + bench.task.max_new_tokens > info.max_positions:
        raise SkipCell(
            f"context {bench.context.input_tokens} + max_new_tokens {bench.task.max_new_tokens} exceeds "
            f"model {bench.model.name}'s {info.max_positions} positions"
        )
    samples = build_samples(task, bench.task, info.tokenizer, bench.context.input_tokens)
    examples = {s.example.id: s.example for s in samples}
    cell_columns = {
        **base,
        "model_family": info.model_family,
        "model_parameters": info.model_parameters,
        "model_weight_bytes": info.model_weight_bytes,
        "block_length": info.block_length,
        "timing_only": info.timing_only,
    }
    rows = []
    for result in runner.run(bench, info, samples):
        row = {**cell_columns, **result.columns()}
        example = examples[result.sample_id]
        row["reference_answer"] = str(example.answer)
        if result.status == "ok" and not info.timing_only:
            score = task.score(example, result.output_text or "")
            row.update(correct=score.correct, extracted_answer=score.extracted, score_detail=score.detail)
        rows.append(row)
    return rows
