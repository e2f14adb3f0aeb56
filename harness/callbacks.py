"""Hydra callbacks around a run: check a single-run config first, summarise every cell last.

A sweep (``hydra.mode=MULTIRUN``, every shipped preset, `sweep=single` included) is planned and
checked by the planning sweeper (harness/sweeper.py); `Preflight` checks the one cell of an
explicit ``hydra.mode=RUN``. Hydra turns exceptions raised in callbacks into warnings, so these
stop a run with SystemExit: exit status 2 for a configuration that must not run, 1 when cells of
this run failed or the summary or the report could not be made.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

import harness.sweeper  # noqa: F401  (registers dlm-bench's Hydra plugins in every process Hydra starts)
from harness import progress
from harness.config import ConfigError, to_bench_config

log = logging.getLogger("dlm-bench")


class Preflight(Callback):
    """Validates the cell of a single run (``hydra.mode=RUN``) before anything is written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from harness.cell import make_cell
        from harness.sweeper import refuse, results_root

        try:
            bench = to_bench_config(config)
        except ConfigError as exc:
            refuse("invalid configuration", [f"  {exc}"])
        progress.announce_run(results_root(bench), [make_cell(bench).key], [0])


class SweepSummary(Callback):
    """Prints the summary table of the sweep folder, writes its report, sets the exit status."""

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._summarise()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._summarise()

    def _summarise(self) -> None:
        run = progress.current
        if run is None or not run.root.exists():
            return
        try:
            failed, problems = summarise_run(run)
        except Exception as exc:  # anything else: still a run that did not end well
            failed, problems = [], [f"the end-of-sweep summary failed: {type(exc).__name__}: {exc}"]
        if failed:
            print(f"dlm-bench: {len(failed)} cell(s) failed in this run:", file=sys.stderr)
            for label, reason in failed:
                print(f"  {label}: {reason.strip().splitlines()[-1] if reason.strip() else '(no reason recorded)'}",
                      file=sys.stderr)
        for problem in problems:
            print(f"dlm-bench: {problem}", file=sys.stderr)
            progress.note_in_sweep_log(problem, logging.ERROR)
        if failed or problems:
            raise SystemExit(1)


def report_is_current(root: Path) -> bool:
    """The report exists and is newer than every input: the cell files, the claims, the report code."""
    from harness.report import REPORT_DIR
    from harness.report.claims import DEFAULT_CLAIMS

    report = root / REPORT_DIR
    outputs = [report / "report.html", report / "report.md", report / "claims.csv"]
    if not all(p.exists() for p in outputs):
        return False
    inputs = [*root.glob("*.parquet"), DEFAULT_CLAIMS, *Path(__file__).resolve().parent.joinpath("report").glob("*.py")]
    return min(p.stat().st_mtime for p in outputs) >= max(p.stat().st_mtime for p in inputs)


def summarise_run(run: progress.Run) -> tuple[list[tuple[str, str]], list[str]]:
    """Summary table and report of the run's folder; (failed cells of this run, what went wrong)."""
    import pandas as pd

    from harness.report import REPORT_DIR, build_report
    from harness.store import kept_failures, read_results, set_aside_files
    from harness.summary import failures_of, print_summary
    from harness.sweeper import unwritable_reason

    records = read_results(run.root)  # once: the summary, the report and the exit status share it
    failed = failures_of(records, run.keys) + kept_failures(run.root, run.keys, run.started)
    problems = []
    try:
        print_summary(run.root, records)
    except Exception as exc:
        problems.append(f"the summary table failed: {type(exc).__name__}: {exc}")
    for moved in set_aside_files(run.root, since=run.started):  # named in the log when moved, and here
        print(f"set aside ({moved.kind}): {moved.original} -> {moved.path.name}")
    blocked = unwritable_reason(run.root) if not run.launched else None
    if blocked:  # a complete, read-only folder: nothing ran, nothing to write
        log.info("results folder %s is not writable (%s): every cell was complete; the report was not rewritten",
                 run.root, blocked)
        return failed, problems
    if not run.launched and report_is_current(run.root):
        # nothing ran and nothing the report is made from changed since it was written (the plots
        # are most of a rerun's time); dlm-bench-report rebuilds it on demand
        html = run.root / REPORT_DIR / "report.html"
        print(f"report: {html} (up to date: no cell file, claim or report code is newer)")
        for claim in pd.read_csv(run.root / REPORT_DIR / "claims.csv").itertuples():
            print(f"  claim {claim.claim}: {claim.verdict}")
        return failed, problems
    try:
        report = build_report(run.root, records=records)
    except Exception as exc:
        problems.append(f"the report could not be written: {type(exc).__name__}: {exc}")
        return failed, problems
    print(f"report: {report.html} (Markdown: {report.markdown.name}, tables: {report.folder})")
    for verdict in report.verdicts:
        print(f"  claim {verdict.claim.id}: {verdict.verdict}")
    return failed, problems
