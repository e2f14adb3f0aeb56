"""Math word problems: GSM8K (numeric answer) and MATH-500 (LaTeX answer, checked with math-verify).

GSM8K, as lm-eval's `gsm8k` task prompts it: `default_few_shot` = 5 worked solutions from the train
split (its first rows, so every mode and run sees the same ones), each `Question: ...\\nAnswer:
<solution> #### <number>`, then the test question; completions are cut at `Question:`. The
calculator annotations of the solutions (`<<48/2=24>>`) are removed from the exemplars. Two
extractions are recorded: flexible (the last number in the completion) is `correct`, and strict
(the number after the first `####`) is `correct_strict`. Flexible is the headline because chat models
answer in their own words and the vendor's evaluation reads the final answer, not a `####` line;
strict shows how often a mode keeps the few-shot format.

MATH-500 (Lightman et al.'s 500-problem subset of MATH): zero-shot, asking for the answer in
`\\boxed{}`; `math-verify` parses the last boxed answer (or, without a box, the last expression
it finds) and checks it against the reference symbolically, so `\\dfrac34`, `0.75` and
`\\frac{3}{4}` agree, and `(1, 2]` is an interval.
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal, InvalidOperation

from harness.config import TaskConfig
from harness.tasks.base import Example, Provenance, Score, Task, take, with_exemplars
from harness.tasks.data import DatasetError, HubDataset, load_rows, require_columns

GSM8K_HUB = HubDataset("openai/gsm8k", "main", "test", revision="e53f048856ff4f594e959d75785d2c2d37b678ee")
MATH500_HUB = HubDataset("HuggingFaceH4/MATH-500", None, "test", revision="6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be")

# A number as people write it: optional minus and dollar sign, thousands commas only in groups of
# three (so "1,2,3" is three numbers), optional decimals.
NUMBER = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
CALCULATOR_ANNOTATION = re.compile(r"<<[^>]*>>")
STRICT_ANSWER = re.compile(rf"####\s*({NUMBER})")


def to_number(text: str) -> Decimal | None:
    cleaned = text.replace("\u2212", "-").replace("$", "").replace(",", "").replace(" ", "")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def number_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def flexible_number(completion: str) -> Decimal | None:
    """The last number in the completion."""
    matches = re.findall(NUMBER, completion.replace("\u2212", "-"))
    return to_number(matches[-1]) if matches else None


def strict_number(completion: str) -> Decimal | None:
    """The number after the first `####`, GSM8K's own answer format."""
    match = STRICT_ANSWER.search(completion.replace("\u2212", "-"))
    return to_number(match.group(1)) if match else None


class GSM8K(Task):
    name = "gsm8k"
    version = "1"
    default_few_shot = 5
    max_few_shot = None  # as many as the train split holds
    stop = ("Question:",)

    def provenance(self, cfg: TaskConfig) -> Provenance:
        shots = load_rows(cfg, GSM8K_HUB, split="train")[1] if self.few_shot(cfg) else None
        return with_exemplars(self._load(cfg)[1], shots)

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rows, _ = self._load(cfg)
        shots = self.exemplars(cfg)
        examples = [
            Example(id=f"gsm8k-{i}", question=row["question"], answer=number_text(self.gold(row["answer"])),
                    metadata={"shots": shots})
            for i, row in enumerate(rows)
        ]
        return take(examples, cfg)

    def _load(self, cfg: TaskConfig):
        rows, provenance = load_rows(cfg, GSM8K_HUB)
        require_columns(rows, ("question", "answer"), "GSM8K")
        return rows, provenance

    def exemplars(self, cfg: TaskConfig) -> tuple[tuple[str, str], ...]:
        count = self.few_shot(cfg)
        if count == 0:
            return ()
        rows, _ = load_rows(cfg, GSM8K_HUB, split="train")
        if len(rows) < count:
            raise DatasetError(f"task.few_shot={count} but the GSM8K train split holds {len(rows)} rows")
        return tuple((row["question"], CALCULATOR_ANNOTATION.sub("", row["answer"])) for row in rows[:count])

    @staticmethod
    def gold(answer: str) -> Decimal:
        value = to_number(answer.split("####")[-1].strip())
        if value is None:
            raise DatasetError(f"GSM8K answer without a number after '####': {answer[-80:]!r}")
        return value

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        blocks = [f"Question: {q}\nAnswer: {a}" for q, a in example.metadata["shots"]]
        blocks.append(f"Question: {example.question}\nAnswer:")
        prefix = f"{filler}\n\n" if filler else ""
        return prefix + "\n\n".join(blocks)

    def score(self, example: Example, completion: str) -> Score:
        gold = Decimal(example.answer)
        flexible, strict = flexible_number(completion), strict_number(completion)
        return Score(
            correct=flexible is not None and flexible == gold,
            extracted=None if flexible is None else number_text(flexible),
            detail=None if flexible is not None else "no number in the completion",
            strict_correct=strict is not None and strict == gold,
            strict_extracted=None if strict is None else number_text(strict),
        )


class MATH500(Task):
    name = "math500"
    version = "1"
    default_few_shot = 0
    max_few_shot = 0
    stop = ("\nProblem:",)

    def provenance(self, cfg: TaskConfig) -> Provenance:
        return self._load(cfg)[1]

    def _load(self, cfg: TaskConfig):
        rows, provenance = load_rows(cfg, MATH500_HUB)
        require_columns(rows, ("problem", "answer", "subject", "level", "unique_id"), "MATH-500")
        return rows, provenance

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rows, _ = self._load(cfg)
        examples = [
            Example(id=row["unique_id"], question=row["problem"], answer=row["answer"],
                    category=f"{row['subject']}, level {row['level']}")
            for row in rows
        ]
        return take(examples, cfg)

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        prefix = f"{filler}\n\n" if filler else ""
        return (f"{prefix}Solve the following math problem. Put the final answer, and only the final answer, "
                f"inside \\boxed{{}}.\n\nProblem: {example.question}\n\nSolution:")

    def score(self, example: Example, completion: str) -> Score:
        parse, verify = _math_verify()
        timeout = 5 if threading.current_thread() is threading.main_thread() else None  # it times out with SIGALRM
        gold = parse(f"${example.answer}$", parsing_timeout=timeout)
        if not gold:
            raise DatasetError(f"math-verify cannot parse the MATH-500 reference answer {example.answer!r}")
        boxed = last_boxed(completion)
        predicted = parse(completion if boxed is None else f"$\\boxed{{{boxed}}}$", parsing_timeout=timeout)
        if not predicted:
            return Score(correct=False, extracted=None, detail="no answer math-verify can parse")
        correct = bool(verify(gold, predicted, timeout_seconds=timeout))
        return Score(correct=correct, extracted=str(predicted[-1]))


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (braces balanced), or None. Only the last box counts:
    math-verify alone would read `\\boxed{3}, ... \\boxed{4}` as the set {3, 4}."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    position = text.index("{", start) + 1
    depth = 1
    for end in range(position, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[position:end]
    return None


def _math_verify():
    try:
        from math_verify import parse, verify
    except ImportError:
        raise ImportError("scoring MATH-500 needs math-verify: pip install 'dlm-bench[tasks]'") from None
    return parse, verify


MATH_TASKS = {task.name: task for task in (GSM8K(), MATH500())}
