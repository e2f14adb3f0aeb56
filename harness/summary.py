"""The human table printed at the end of a sweep: a view of the per-cell aggregate, with the rule
behind every column (`harness.report.aggregate`; summary.csv is the same table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.report.aggregate import DEFINITIONS, aggregate, varying_columns
from harness.store import read_results

# title -> column of Aggregates.cells
SHOWN = {"model": "model", "mode": "mode_label", "runner": "runner", "conc": "concurrency", "task": "task",
         "context": "context", "status": "status", "n": "samples", "acc": "acc", "TPF": "tpf",
         "TPF-np": "tpf_excl_prefill", "vTPF": "vendor_tpf", "acc_len": "accept_length",
         "q/fwd": "query_tokens_per_forward", "E2E ms": "e2e_p50", "tok/s sys": "tok_s_system"}
RULES = {"n": DEFINITIONS["n"], "acc": DEFINITIONS["acc"].split(";")[0], "TPF": DEFINITIONS["TPF"],
         "TPF-np": DEFINITIONS["TPF-np"], "vTPF": DEFINITIONS["vTPF"], "acc_len": DEFINITIONS["acc_len"],
         "q/fwd": DEFINITIONS["q/fwd"], "E2E ms": "median over samples of E2E (per-sample median over repetitions)",
         "tok/s sys": DEFINITIONS["tok/s sys"]}


def summary_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One line per cell. Every other description column on which cells differ (seed, generation
    limit, batch size, data, ...) is shown too, so that two cells never read as one."""
    if cells.empty:
        return pd.DataFrame(columns=[*SHOWN, "note"])
    varying = varying_columns(cells)
    table = pd.DataFrame({title: cells[column] for title, column in SHOWN.items() if column in cells})
    table["conc"] = table["conc"].map(lambda v: "-" if pd.isna(v) else str(int(v)))  # requests in flight: a count
    position = list(table.columns).index("status")
    for offset, column in enumerate(varying):
        table.insert(position + offset, column, cells[column])
    table["note"] = cells["note"].fillna("")
    order = [c for c in ("model", "mode", "runner", "conc", "task", "context", *varying) if c in table]
    return table.sort_values(order, kind="stable", key=lambda s: s.astype(str)).reset_index(drop=True)


def format_summary(summary: pd.DataFrame) -> str:
    """The table as a person reads it: units on times (850 ms, 1.14 s), thousands separated
    (1,140 tok/s), and no column that holds nothing but dashes."""
    if summary.empty:
        return "(no records)"
    table = summary.drop(columns=["note"])
    table = table[[c for c in table.columns if not _all_missing(table[c])]]
    shown = {"E2E ms": "E2E"}  # its values carry their unit
    formatters = {shown.get(c, c): (_milliseconds if c == "E2E ms" else _number)
                  for c in table.columns if pd.api.types.is_float_dtype(table[c])}
    text = table.rename(columns=shown).to_string(index=False, na_rep="-", formatters=formatters)
    notes = summary[summary["note"] != ""]
    lines = [text, "", "How each column is counted:"]
    lines += [f"  {shown.get(name, name):9s} {rule}" for name, rule in RULES.items() if name in table.columns]
    if not notes.empty:
        lines += ["", "Skipped or failed cells:"]
        lines += [f"  {r['model']} {r['mode']} {r['task']} {r['context']}: {r['status']}: {r['note'].splitlines()[-1]}"
                  for _, r in notes.iterrows()]
    return "\n".join(lines)


def _all_missing(column: pd.Series) -> bool:
    return bool(column.map(_missing).all())


def _missing(value) -> bool:
    if isinstance(value, str):
        return value == "-"
    if isinstance(value, (list, tuple, np.ndarray)):  # a list-valued setting (stop strings) is a value, even empty
        return False
    return bool(pd.isna(value)) or (isinstance(value, float) and np.isinf(value))


def _number(value: float) -> str:
    """Three significant figures; 1,000 and above whole, with thousands separated."""
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _milliseconds(value: float) -> str:
    """A time given in ms, in the unit that reads best: 12.3 ms, 850 ms, 1.14 s, 2m05s."""
    if value is None or not np.isfinite(value):
        return "-"
    if value < 1000:
        return f"{value:.3g} ms"
    if value < 60_000:
        return f"{value / 1000:.3g} s"
    minutes, seconds = divmod(round(value / 1000), 60)
    return f"{minutes}m{seconds:02d}s"


def print_summary(folder: Path, records: pd.DataFrame | None = None) -> pd.DataFrame:
    """The end-of-sweep table: point values of the aggregate (the report adds the intervals)."""
    records = read_results(folder) if records is None else records
    summary = summary_table(aggregate(records, boot=None).cells) if not records.empty else summary_table(pd.DataFrame())
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
