"""The task contract (lm-eval style, kept small): data plus a scorer, versioned.

A task yields `Example`s, renders one into prompt text, and scores a completion. Everything
model-specific (tokenizer, chat template, context length) is the harness's business
(`harness.prompts`), so a task never sees a model.

Stop strings: the decoders stop only at EOS tokens. The harness cuts each completion at the first
of the task's stop strings (`cut_at_stop`) before the task scores it, and records which one cut it;
`new_tokens` still counts everything the decoder produced.

Protocols: one task can be prompted and scored after several reference implementations (lm-eval's
task YAML, NeMo-Skills, RULER). A `Protocol` is that choice as data (`task.protocol` picks it; the
first of a task's `protocols` is its default); every row records its name, version and reference.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from harness.config import TaskConfig


@dataclass(frozen=True)
class Protocol:
    """How a task is prompted and scored, after one reference implementation."""

    name: str  # the value of task.protocol
    version: str  # bump when this protocol's prompt, exemplars, stop strings or scorer change: records carry it
    reference: str  # the code (and its version) this protocol reproduces, recorded with every row
    few_shot: int = 0  # exemplars per prompt by default
    max_few_shot: int | None = 0  # most exemplars a prompt can take (None: as many as the data has)
    stop: tuple[str, ...] = ()  # completions are cut at the first of these (after decoding)
    chat: bool | None = None  # True: through the chat template (required); False: never; None: when the tokenizer has one


# The project's own definition, for tasks no external reference defines (synthetic, SPEED-Bench).
HARNESS = Protocol("harness", "1", "dlm-bench's own task definition")


@dataclass(frozen=True)
class Example:
    id: str
    question: str  # the task's input, before any prompting
    answer: Any  # what the scorer compares against (None: the task has no reference answer)
    metadata: dict = field(default_factory=dict)
    category: str | None = None  # the dataset's own grouping of the example (subject, category, depth)
    protocol: str | None = None  # the protocol the example was made under (None: the task's default)


@dataclass(frozen=True)
class Score:
    correct: bool | None  # None: the task has no reference to score against (a speed workload)
    extracted: str | None  # the answer as read from the completion (None: nothing readable)
    detail: str | None = None  # why it failed, when that is not obvious (sandbox errors, ...)
    strict_correct: bool | None = None  # the protocol's second verdict, where it has one (lm-eval GSM8K strict-match)
    strict_extracted: str | None = None
    value: float | None = None  # the protocol's per-sample score in [0, 1] (None: 1.0 if correct else 0.0)
    sandbox_level: str | None = None  # how the generated code was isolated when it ran (harness.sandbox.LEVELS)

    @property
    def score(self) -> float | None:
        if self.value is not None:
            return self.value
        return None if self.correct is None else float(self.correct)


@dataclass(frozen=True)
class Provenance:
    """Where a task's examples came from, as recorded with every row."""

    source: str  # hub dataset id, local path, or "generated:seed=N"
    revision: str | None  # hub commit, "sha256:<hex>" of local files, or None (generated)
    split: str | None = None  # "<config>/<split>" as loaded
    rows_skipped: int = 0  # bad rows left out (task.on_bad_row=skip)


def with_exemplars(evaluated: Provenance, exemplars: Provenance | None) -> Provenance:
    """Provenance of a prompt built from two splits: the evaluated one and the exemplars' one."""
    if exemplars is None:
        return evaluated
    same = evaluated.revision == exemplars.revision  # one hub commit covers both splits
    revision = evaluated.revision if same else f"{evaluated.revision}+{exemplars.revision}"
    return Provenance(evaluated.source, revision, f"{evaluated.split}+{exemplars.split}",
                      evaluated.rows_skipped + exemplars.rows_skipped)


class Task(ABC):
    name: str
    version: str  # bump when data, prompt or scorer change: records carry it
    protocols: tuple[Protocol, ...] = (HARNESS,)  # the first is the default

    @abstractmethod
    def examples(self, cfg: TaskConfig) -> list[Example]: ...

    @abstractmethod
    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        """The prompt text; `filler` (context padding) goes where the task can ignore it."""

    @abstractmethod
    def score(self, example: Example, completion: str) -> Score: ...

    def protocol(self, name: str | None) -> Protocol:
        """The protocol called `name` (None: the default); an unknown name names the valid ones."""
        if name is None:
            return self.protocols[0]
        for protocol in self.protocols:
            if protocol.name == name:
                return protocol
        raise KeyError(f"task {self.name} has no protocol {name!r}; valid: {', '.join(p.name for p in self.protocols)}")

    def preflight(self, cfg: TaskConfig) -> None:
        """Raise if this task cannot be scored on this machine; runs before any model loads."""

    def few_shot(self, cfg: TaskConfig) -> int:
        """Exemplars this configuration puts in each prompt."""
        return self.protocol(cfg.protocol).few_shot if cfg.few_shot is None else cfg.few_shot

    def stop_strings(self, cfg: TaskConfig, chat: bool) -> tuple[str, ...]:
        """Stop strings for a prompt that went through a chat template (`chat`) or not."""
        return self.protocol(cfg.protocol).stop

    def provenance(self, cfg: TaskConfig) -> Provenance:
        return Provenance(source=f"generated:seed={cfg.seed}", revision=None)

    def filler(self, rng: random.Random, n_chars: int) -> str:
        """Neutral text used to pad a prompt to a context length."""
        return noise_text(rng, n_chars)


NOISE_SENTENCES = (
    "The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
    "There and back again.", "The river flows to the sea.",
)


def noise_text(rng: random.Random, n_chars: int, sentences: tuple[str, ...] = NOISE_SENTENCES) -> str:
    """Sentences drawn from `rng`, cut to `n_chars`: a prefix of the text drawn for any larger size."""
    out: list[str] = []
    length = -1  # " ".join adds len(out) - 1 separators
    while length < n_chars:
        sentence = rng.choice(sentences)
        out.append(sentence)
        length += len(sentence) + 1
    return " ".join(out)[:n_chars]


def cut_at_stop(completion: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    """The completion up to the earliest stop string, and that string (None: no stop string found)."""
    cut, hit = len(completion), None
    for stop in stops:
        position = completion.find(stop)
        if 0 <= position < cut:
            cut, hit = position, stop
    return completion[:cut], hit


def take(examples: list[Example], cfg: TaskConfig) -> list[Example]:
    """The first `num_samples` examples (0 = all): deterministic, so every mode sees the same ones."""
    return examples if cfg.num_samples == 0 else examples[: cfg.num_samples]
