"""Progress a person can follow on long sweeps, one log file per sweep, and what this run is.

Between cells: `[k/N] elapsed, ETA` (`position`). Inside a cell: `CellProgress` logs samples done,
output tokens/s and the cell's ETA at its first result and then every `DLM_BENCH_PROGRESS_S` seconds
(default 30), plain log lines so that a SLURM log shows them too.

The planning sweeper (harness/sweeper.py) knows the sweep's cells before the first one runs; it
exports the count, the start time and the sweep positions of the cells it launches through the
environment, which every job inherits (the basic launcher runs jobs in this process; submitit's
local and SLURM executors copy the environment into each job). In this process it also keeps
`current`: this run's results folder and cell keys, from which the exit status and the
interruption message are counted.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

TOTAL = "DLM_BENCH_SWEEP_CELLS"
STARTED = "DLM_BENCH_SWEEP_STARTED"
# Sweep positions (0-based) of the launched cells, in launch order: job k is cell POSITIONS[k]. Left
# unset past MAX_POSITIONS_CHARS (an environment string is limited to 128 KiB on Linux); the
# position shown is then the job's own number.
POSITIONS = "DLM_BENCH_SWEEP_POSITIONS"
MAX_POSITIONS_CHARS = 64_000
LOG_FILE = "_logs/sweep.log"
INTERVAL = "DLM_BENCH_PROGRESS_S"
DEFAULT_INTERVAL_S = 30.0

log = logging.getLogger("dlm-bench")


@dataclass
class Run:
    root: Path  # <results_dir>/<sweep>
    keys: list[str]  # every cell key of this run, complete ones included
    launched: int  # how many of them this run runs
    started: float = 0.0  # epoch seconds: when this process began, before the plan set anything aside


current: Run | None = None
PROCESS_STARTED = time.time()


def announce_run(root: Path, keys: list[str], launched: list[int]) -> None:
    global current
    current = Run(Path(root), list(keys), len(launched), PROCESS_STARTED)
    os.environ[TOTAL] = str(len(keys))
    os.environ[STARTED] = str(time.time())
    text = ",".join(map(str, launched))
    if len(text) <= MAX_POSITIONS_CHARS:
        os.environ[POSITIONS] = text
    else:
        os.environ.pop(POSITIONS, None)


def position(job_num: int | None) -> str:
    """'[k/N] elapsed 3m10s, ETA 12m' for the cell about to run (job_num: 0-based, among launched cells)."""
    total = os.environ.get(TOTAL)
    if job_num is None or total is None:
        return ""
    text = os.environ.get(POSITIONS)
    launched = [int(p) for p in text.split(",") if p] if text is not None else None
    where = launched[job_num] if launched and job_num < len(launched) else job_num
    remaining_of = len(launched) if launched else int(total)
    elapsed = time.time() - float(os.environ.get(STARTED, time.time()))
    # the ETA extrapolates from the launched cells done so far; complete cells take no time
    eta = f", ETA {_duration(elapsed / job_num * (remaining_of - job_num))}" if job_num else ""
    return f"[{where + 1}/{total}] elapsed {_duration(elapsed)}{eta}"


class CellProgress:
    """Samples done, tokens/s and ETA inside one cell, logged every `interval_s` seconds.

    `total` is the number of distinct samples the cell will decode (None when the runner does not
    decode one request per sample, e.g. an engine's `num_requests`: then no ETA). Repetitions of a
    sample count once; tokens count every decode.
    """

    def __init__(self, total: int | None, interval_s: float | None = None, clock=time.monotonic):
        self.total, self.clock = total, clock
        self.interval_s = float(os.environ.get(INTERVAL, DEFAULT_INTERVAL_S)) if interval_s is None else interval_s
        self.started = clock()
        self.logged_at: float | None = None
        self.samples: set[str] = set()
        self.results = 0
        self.tokens = 0

    def update(self, sample_id: str, new_tokens: int | None) -> None:
        self.samples.add(sample_id)
        self.results += 1
        self.tokens += new_tokens or 0
        now = self.clock()
        if self.logged_at is None or now - self.logged_at >= self.interval_s:
            self.logged_at = now
            log.info("  %s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.started
        done = len(self.samples)
        samples = f"{done}/{self.total} samples" if self.total else f"{done} samples"
        rate = f"{self.tokens / elapsed:,.1f} tok/s" if elapsed > 0 else "- tok/s"
        eta = ""
        if self.total and 0 < done < self.total:
            eta = f", ETA {_duration(elapsed / done * (self.total - done))}"
        return (f"cell progress: {samples} ({self.results} decodes), {self.tokens:,} new tokens in {_duration(elapsed)}: "
                f"{rate} (new tokens / wall time since the first sample started){eta}")


def attach_sweep_log(folder: Path) -> None:
    """Append this process's dlm-bench log lines to <sweep>/_logs/sweep.log (once per process)."""
    path = (folder / LOG_FILE).resolve()
    if any(getattr(h, "baseFilename", None) == str(path) for h in log.handlers):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    log.addHandler(handler)


def complete_count(run: Run) -> int:
    """How many of the run's cells have complete results now (read from the folder)."""
    from harness.store import ResultStore

    store = ResultStore(run.root.parent, run.root.name)
    done = 0
    for key in run.keys:
        try:
            done += store.is_complete(key)
        except Exception:  # an unreadable file is not a complete cell
            pass
    return done


def interruption_line() -> str:
    if current is None:
        return "interrupted before the sweep's cells were planned: nothing was run; rerun the same command"
    return (f"interrupted: {complete_count(current)} of {len(current.keys)} cells complete; "
            "rerun the same command to resume")


def note_in_sweep_log(message: str, level: int = logging.WARNING) -> None:
    """Write a line to the sweep log only (the console gets it from the caller)."""
    for handler in log.handlers:
        if getattr(handler, "baseFilename", None):
            handler.handle(log.makeRecord(log.name, level, __file__, 0, message, None, None))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
