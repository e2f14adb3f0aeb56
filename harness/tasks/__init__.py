"""Task registry: `task.name` in the configs is a key of REGISTRY.

One module per task family: `synthetic` (the tiny model's tasks), `math_reasoning` (GSM8K,
MATH-500), `coding` (HumanEval, MBPP), `long_context` (passkey, multi-key needle, variable
tracking), `speed_bench` (SPEED-Bench). Dataset loading lives in `data`; the record columns a task
fills (few-shot, stop strings, provenance, extraction) in `columns`; the graders the math protocols
share (lm-eval's GSM8K filters, NeMo-Skills' last box and `math_equal`) in `math_grading`. Each
task's protocols (`task.protocol`) and the published numbers they reproduce: README.md here.
"""

from __future__ import annotations

from harness.tasks.base import Example, Score, Task
from harness.tasks.coding import CODING_TASKS
from harness.tasks.long_context import LONG_CONTEXT_TASKS
from harness.tasks.math_reasoning import MATH_TASKS
from harness.tasks.speed_bench import SPEED_BENCH_TASKS
from harness.tasks.synthetic import SYNTHETIC_TASKS

REGISTRY: dict[str, Task] = {**SYNTHETIC_TASKS, **MATH_TASKS, **CODING_TASKS, **LONG_CONTEXT_TASKS, **SPEED_BENCH_TASKS}

__all__ = ["REGISTRY", "Example", "Score", "Task", "get_task"]


def get_task(name: str) -> Task:
    if name not in REGISTRY:
        raise KeyError(f"unknown task {name!r}; valid: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]
