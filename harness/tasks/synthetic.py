"""Synthetic tasks for the in-repo tiny model: checkable, generated from a seed, partly
parallel-predictable.

copy and reverse are nearly position-wise maps of the prompt (a block can be predicted in
parallel); sort needs every output position to agree with the others; add needs carries
(right to left) and is the hardest to decode in parallel. Formats are character-level:

    copy 8f3k2=      ->  8f3k2
    reverse 8f3k2=   ->  2k3f8
    sort 8f3k2=      ->  238fk
    add 123+45=      ->  168

A context padding prefix ends with a newline, which the tiny model is trained to skip.
"""

from __future__ import annotations

import random
import string

from harness.config import TaskConfig
from harness.tasks.base import Example, Score, Task, take

SYMBOLS = string.digits + string.ascii_lowercase
FILLER_ALPHABET = string.ascii_lowercase + " "
MIN_LENGTH, MAX_LENGTH = 4, 16
POOL_SIZE = 512  # examples generated per seed; the first num_samples are used


class SequenceTask(Task):
    version = "1"
    operator: str

    def transform(self, sequence: str) -> str:
        raise NotImplementedError

    def make_question(self, rng: random.Random) -> tuple[str, str]:
        sequence = "".join(rng.choice(SYMBOLS) for _ in range(rng.randint(MIN_LENGTH, MAX_LENGTH)))
        return sequence, self.transform(sequence)

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rng = random.Random(f"{self.name}-{cfg.seed}")
        pool = []
        for i in range(POOL_SIZE):
            question, answer = self.make_question(rng)
            pool.append(Example(id=f"{self.name}-{cfg.seed}-{i}", question=question, answer=answer))
        return take(pool, cfg)

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        prefix = f"{filler}\n" if filler else ""
        return f"{prefix}{self.name} {example.question}="

    def score(self, example: Example, completion: str) -> Score:
        extracted = completion.strip()
        return Score(correct=extracted == example.answer, extracted=extracted)

    def filler(self, rng: random.Random, n_chars: int) -> str:
        return "".join(rng.choice(FILLER_ALPHABET) for _ in range(n_chars))


class Copy(SequenceTask):
    name = "copy"

    def transform(self, sequence: str) -> str:
        return sequence


class Reverse(SequenceTask):
    name = "reverse"

    def transform(self, sequence: str) -> str:
        return sequence[::-1]


class Sort(SequenceTask):
    name = "sort"

    def transform(self, sequence: str) -> str:
        return "".join(sorted(sequence))


class Add(SequenceTask):
    name = "add"
    max_digits = 5

    def make_question(self, rng: random.Random) -> tuple[str, str]:
        a = rng.randint(0, 10 ** rng.randint(1, self.max_digits) - 1)
        b = rng.randint(0, 10 ** rng.randint(1, self.max_digits) - 1)
        return f"{a}+{b}", str(a + b)


SYNTHETIC_TASKS = {task.name: task for task in (Copy(), Reverse(), Sort(), Add())}
