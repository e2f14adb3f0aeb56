"""What a sweep costs beyond the model work, and how long `--help` takes.

    python -m harness.bookkeeping_benchmark [--cells 64] [--repo PATH]

Runs `dlm-bench` in fresh processes on the embedded tiny model (one sample per cell, no warm-up)
and prints, each with how it was counted:

- per-cell bookkeeping: a sweep's wall time minus the time its cells spent between their
  "starting" and "done" log lines (the cell's own work: hardware check, model load, decoding,
  writing its file), for a 1-cell sweep and an N-cell sweep; the per-cell figure is the
  difference of the two overheads over N - 1, so the fixed start-up (imports, Hydra) is not in it;
- the rerun of the N complete cells: wall time of the same command again, nothing left to run;
- `dlm-bench --help`: wall time of the process.

`--repo` times another checkout (e.g. a worktree of an older commit) with this script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \d+ \w+ (.*)$")
MODES = ("ar", "diffusion", "linear_spec", "quadratic_spec")


def sweep_arguments(cells: int, results: Path) -> list[str]:
    """`cells` tiny-model cells: modes x contexts x tasks x seeds (a multiple of 16 above 16)."""
    seeds = max(1, cells // 16)
    grid = ["mode=" + ",".join(MODES), "context=natural,ctx128", "task=copy,sort", "seed=" + ",".join(map(str, range(seeds)))]
    if cells == 1:
        grid = ["mode=ar", "context=natural", "task=copy", "seed=0"]
    return ["-m", *grid, "sweep.name=bench", f"results_dir={results}", "task.num_samples=1", "runner.warmup=0"]


def run_timed(repo: Path, arguments: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "harness.cli", *arguments], cwd=repo, env=env,
                            capture_output=True, text=True)
    return time.perf_counter() - start, result


def cell_work_seconds(log: Path) -> tuple[float, int]:
    """Sum over cells of the time from a cell's "starting" line to its outcome line, and the count."""
    began, total, count = None, 0.0, 0
    for line in log.read_text().splitlines():
        match = LINE.match(line)
        if not match:
            continue
        when = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        message = match.group(2)
        if re.search(r"cell \S+ \(\w+\) starting", message):
            began = when
        elif began is not None and re.search(r"cell \S+ (done|skipped|failed)", message):
            total, count, began = total + when - began, count + 1, None
    return total, count


def measure_sweep(repo: Path, cells: int, results: Path) -> tuple[float, float, int]:
    wall, result = run_timed(repo, sweep_arguments(cells, results))
    if result.returncode != 0:
        sys.exit(f"sweep of {cells} cells failed ({result.returncode}):\n{result.stderr[-3000:]}")
    work, counted = cell_work_seconds(results / "bench" / "_logs" / "sweep.log")
    return wall, work, counted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=64, help="cells of the large sweep (a multiple of 16)")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent, help="checkout to time")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    print(f"checkout: {repo}")

    help_wall, _ = run_timed(repo, ["--help"])
    print(f"dlm-bench --help: {help_wall:.2f} s wall (one fresh process)")

    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
        wall1, work1, n1 = measure_sweep(repo, 1, Path(one))
        wall, work, n = measure_sweep(repo, args.cells, Path(many))
        if n != args.cells or n1 != 1:
            sys.exit(f"expected {args.cells} and 1 cells in the sweep logs, found {n} and {n1}")
        per_cell = ((wall - work) - (wall1 - work1)) / (n - 1)
        print(f"1-cell sweep: {wall1:.1f} s wall, {work1:.1f} s cell work, {wall1 - work1:.1f} s fixed overhead")
        print(f"{n}-cell sweep: {wall:.1f} s wall, {work:.1f} s cell work (sum of 'starting'..'done' in sweep.log)")
        print(f"per-cell bookkeeping: {per_cell:.3f} s "
              f"(({wall:.1f} - {work:.1f}) - ({wall1:.1f} - {work1:.1f})) / {n - 1}: overhead beyond the 1-cell sweep's, per extra cell")
        rerun, result = run_timed(repo, sweep_arguments(args.cells, Path(many)))
        print(f"rerun of {n} complete cells: {rerun:.1f} s wall, exit {result.returncode}")


if __name__ == "__main__":
    main()
