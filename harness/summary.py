"""The human table printed at the end of a sweep, with the rule behind every column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.metrics import DEFINITIONS, summarize
from harness.store import read_results

SHOWN = ["model", "mode", "block_length", "runner", "concurrency", "task", "context", "status", "n", "acc", "tokens", "TPF", "TPF-np",
         "vTPF", "acc_len", "q/fwd", "E2E ms", "tok/s"]


def format_summary(summary: pd.DataFrame) -> str:
    if summary.empty:
        return "(no records)"
    table = summary[[c for c in SHOWN if c in summary]].copy()
    text = table.to_string(index=False, float_format=lambda x: f"{x:.3g}", na_rep="-")
    notes = summary[summary["note"] != ""]
    lines = [text, "", "How each column is counted:"]
    lines += [f"  {name:8s} {rule}" for name, rule in DEFINITIONS.items()]
    if not notes.empty:
        lines += ["", "Skipped or failed cells:"]
        lines += [f"  {r.model} {r.mode} {r.task} {r.context}: {r.status}: {r.note.splitlines()[-1]}" for r in notes.itertuples()]
    return "\n".join(lines)


def print_summary(folder: Path, records: pd.DataFrame | None = None) -> pd.DataFrame:
    records = read_results(folder) if records is None else records
    summary = summarize(records)
    print(f"\n== dlm-bench summary: {folder} ({len(records)} records) ==")
    print(format_summary(summary))
    print()
    return summary


def failures_since(records: pd.DataFrame, since_epoch: float) -> list[tuple[str, str]]:
    """(cell label, reason) of cells that failed as a whole and started at or after `since_epoch`."""
    if records.empty:
        return []
    failed = records[records["status"] == "failed"]
    started = pd.to_datetime(failed["started_at"], utc=True)
    recent = failed[started >= pd.Timestamp(since_epoch, unit="s", tz="UTC").floor("s")]
    return [(f"{r.model} {r.mode} {r.task} {r.context}", r.error or "") for r in recent.itertuples()]
