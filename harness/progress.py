"""Progress a person can follow on long sweeps, and one log file per sweep.

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
