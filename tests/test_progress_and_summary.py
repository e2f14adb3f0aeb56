"""Progress inside a cell (samples done, tokens/s, ETA) and a summary a person reads without
decoding scientific notation."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

import harness.report  # noqa: F401  (harness.summary and harness.report import each other: the report first)
from harness.progress import CellProgress
from harness.summary import format_summary
from tests.conftest import run_cli


def test_cell_progress_logs_samples_tokens_per_second_and_eta(caplog):
    times = iter([0.0, 0.0, 5.0, 20.0])
    meter = CellProgress(total=4, interval_s=10, clock=lambda: next(times))
    with caplog.at_level(logging.INFO, logger="dlm-bench"):
        meter.update("a", 10)  # t=0: the first result is always logged
        meter.update("b", 10)  # t=5: within the interval, silent
        meter.update("a", 10)  # t=20: a repetition of a; 2 of 4 samples done in 20 s
    lines = [r.getMessage().strip() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("cell progress: 1/4 samples (1 decodes), 10 new tokens in 0s")
    assert lines[1] == ("cell progress: 2/4 samples (3 decodes), 30 new tokens in 20s: 1.5 tok/s "
                        "(new tokens / wall time since the first sample started), ETA 20s")


def test_cell_progress_without_a_sample_count_gives_no_eta():
    meter = CellProgress(total=None, interval_s=1e9, clock=iter([0.0, 4.0, 4.0]).__next__)
    meter.update("r0", 8)
    assert meter.line() == ("cell progress: 1 samples (1 decodes), 8 new tokens in 4s: 2.0 tok/s "
                            "(new tokens / wall time since the first sample started)")


def summary(e2e_ms, tok_s) -> pd.DataFrame:
    n = len(e2e_ms)
    return pd.DataFrame({"model": ["m"] * n, "mode": ["ar"] * n, "runner": ["reference"] * n, "conc": ["-"] * n,
                         "task": ["copy"] * n, "context": ["natural"] * n, "status": ["ok"] * n, "n": [8] * n,
                         "TPF": [1.0] * n, "vTPF": [np.nan] * n, "E2E ms": e2e_ms, "tok/s sys": tok_s, "note": [""] * n})


def test_the_summary_prints_times_with_units_and_drops_empty_columns():
    text = format_summary(summary([1140.0, 850.0, 12.34, 125_000.0], [1140.4, 33.33, np.nan, 0.5]))
    table, rules = text.split("How each column is counted:")
    assert not re.search(r"\de[+-]\d", text)
    assert "1.14 s" in table and "850 ms" in table and "12.3 ms" in table and "2m05s" in table
    assert "1,140" in table and "33.3" in table
    header = table.splitlines()[0].split()
    assert "vTPF" not in header and "conc" not in header  # every value a dash
    assert "E2E" in header and "E2E ms" not in table
    assert "  vTPF" not in rules and "  E2E " in rules


def test_a_cell_logs_its_progress_and_the_summary_reads_plainly(tmp_path):
    result = run_cli("sweep=single", "task.num_samples=2", f"results_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "cell progress: 1/2 samples (1 decodes)" in output
    table = result.stdout[result.stdout.index("dlm-bench summary"):result.stdout.index("How each column is counted")]
    assert not re.search(r"\de[+-]\d", table) and " ms " in table, table


def test_a_list_valued_column_that_differs_between_cells_is_shown_not_dropped():
    # Cells differing only in their stop strings ([] for one, a list for the other, None for a third).
    table = summary([100.0, 200.0, 300.0], [1.0, 2.0, 3.0])
    table.insert(6, "stop_strings", [[], ["\n\n"], None])
    header = format_summary(table).splitlines()[0].split()
    assert "stop_strings" in header
