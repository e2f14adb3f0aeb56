"""The task contract (lm-eval style, kept small): data plus a scorer, versioned.

A task yields `Example`s, renders one into prompt text, and scores a completion. Everything
model-specific (tokenizer, chat template, context length) is the harness's business
(`harness.prompts`), so a task never sees a model.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from harness.config import TaskConfig


@dataclass(frozen=True)
class Example:
    id: str
    question: str  # the task's input, before any prompting
    answer: Any  # what the scorer compares against
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    correct: bool
    extracted: str | None  # the answer as read from the completion (None: nothing readable)
    detail: str | None = None  # why it failed, when that is not obvious (sandbox errors, ...)


class Task(ABC):
    name: str
    version: str  # bump when data, prompt or scorer change: records carry it
    default_few_shot: int = 0
    stop: tuple[str, ...] = ()  # completions are cut at the first of these (after decoding)

    @abstractmethod
    def examples(self, cfg: TaskConfig) -> list[Example]: ...

    @abstractmethod
    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        """The prompt text; `filler` (context padding) goes where the task can ignore it."""

    @abstractmethod
    def score(self, example: Example, completion: str) -> Score: ...

    def filler(self, rng: random.Random, n_chars: int) -> str:
        """Neutral text used to pad a prompt to a context length."""
        sentences = [
            "The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
            "There and back again.", "The river flows to the sea.",
        ]
        out: list[str] = []
        while sum(len(s) + 1 for s in out) < n_chars:
            out.append(rng.choice(sentences))
        return " ".join(out)[:n_chars]


def take(examples: list[Example], cfg: TaskConfig) -> list[Example]:
    """The first `num_samples` examples (0 = all): deterministic, so every mode sees the same ones."""
    return examples if cfg.num_samples == 0 else examples[: cfg.num_samples]
