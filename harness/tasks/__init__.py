"""Task registry: `task.name` in the configs is a key of REGISTRY."""

from __future__ import annotations

from harness.tasks.base import Example, Score, Task
from harness.tasks.synthetic import SYNTHETIC_TASKS

REGISTRY: dict[str, Task] = {**SYNTHETIC_TASKS}

__all__ = ["REGISTRY", "Example", "Score", "Task", "get_task"]


def get_task(name: str) -> Task:
    if name not in REGISTRY:
        raise KeyError(f"unknown task {name!r}; valid: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]
