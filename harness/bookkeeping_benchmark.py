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
`--rerun-only DIR --repo A --repo B ...` fills DIR with the N complete cells once (with the first
checkout), then times the rerun with each checkout in turn, twice, interleaved: on a shared machine
the checkouts then see the same load. Wall time and CPU time (user + system of the process and
its children) are printed for every run; CPU time is the figure that load does not inflate.
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


LAST_CPU = [0.0]  # CPU seconds of the last run_timed process


def run_timed(repo: Path, arguments: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    import resource

    env = {**os.environ, "PYTHONPATH": str(repo)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "harness.cli", *arguments], cwd=repo, env=env,
                            capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU[0] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, result


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
    parser.add_argument("--repo", type=Path, action="append", help="checkout to time (default: this one); repeatable")
    parser.add_argument("--rerun-only", type=Path, metavar="DIR", help="time reruns of N complete cells in DIR only")
    args = parser.parse_args(argv)
    repos = [r.resolve() for r in args.repo or [Path(__file__).resolve().parent.parent]]
    if args.rerun_only:
        time_reruns(repos, args.cells, args.rerun_only)
        return
    repo = repos[0]
    print(f"checkout: {repo}")

    help_wall, _ = run_timed(repo, ["--help"])
    print(f"dlm-bench --help: {help_wall:.2f} s wall, {LAST_CPU[0]:.2f} s CPU (user + system) of one fresh process")

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
        print(f"rerun of {n} complete cells: {rerun:.1f} s wall, {LAST_CPU[0]:.1f} s CPU, exit {result.returncode}")


def time_reruns(repos: list[Path], cells: int, results: Path) -> None:
    if not (results / "bench").exists():
        wall, result = run_timed(repos[0], sweep_arguments(cells, results))
        if result.returncode != 0:
            sys.exit(f"sweep of {cells} cells failed ({result.returncode}):\n{result.stderr[-3000:]}")
        print(f"filled {results} with {cells} cells using {repos[0]} ({wall:.1f} s wall)")
    for round_ in (1, 2):
        for repo in repos:
            wall, result = run_timed(repo, sweep_arguments(cells, results))
            print(f"rerun of {cells} complete cells, {repo} (round {round_}): {wall:.1f} s wall, "
                  f"{LAST_CPU[0]:.1f} s CPU, exit {result.returncode}")


if __name__ == "__main__":
    main()
