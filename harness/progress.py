"""Progress a person can follow on long sweeps, and one log file per sweep.

Between cells: `[k/N] elapsed, ETA` (`position`). Inside a cell: `CellProgress` logs samples done,
output tokens/s and the cell's ETA at its first result and then every `DLM_BENCH_PROGRESS_S` seconds
(default 30), plain log lines so that a SLURM log shows them too.

The preflight callback knows the sweep's size and start time before the first cell; it exports
them through the environment, which every job inherits (the basic launcher runs jobs in this
process; submitit's local and SLURM executors copy the environment into each job).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

TOTAL = "DLM_BENCH_SWEEP_CELLS"
STARTED = "DLM_BENCH_SWEEP_STARTED"
LOG_FILE = "_logs/sweep.log"
INTERVAL = "DLM_BENCH_PROGRESS_S"
DEFAULT_INTERVAL_S = 30.0

log = logging.getLogger("dlm-bench")


def announce_sweep(total: int) -> None:
    os.environ[TOTAL] = str(total)
    os.environ[STARTED] = str(time.time())


def position(job_num: int | None) -> str:
    """'[k/N] elapsed 3m10s, ETA 12m' for the cell about to run (job_num is 0-based)."""
    total = os.environ.get(TOTAL)
    if job_num is None or total is None:
        return ""
    done, total = job_num, int(total)
    elapsed = time.time() - float(os.environ.get(STARTED, time.time()))
    eta = f", ETA {_duration(elapsed / done * (total - done))}" if done else ""
    return f"[{done + 1}/{total}] elapsed {_duration(elapsed)}{eta}"


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


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
