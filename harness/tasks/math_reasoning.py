"""Math word problems: GSM8K (numeric answer) and MATH-500 (LaTeX answer), under two protocols.

`nemo-skills` (the default: the vendor's published accuracies come from NeMo-Skills): zero-shot,
through the chat template, NeMo-Skills' math instruction (`prompt/config/generic/math.yaml`:
"Solve the following math problem. Make sure to put the answer (and only answer) inside
\\boxed{}."), no stop string; the answer is the last `\\boxed{}` and `math_equal` grades it
(`harness.tasks.math_grading`). GSM8K's reference is NeMo-Skills' `expected_answer`: the number
after `####`, commas dropped, an integer where it is one.

`lm-eval`: lm-evaluation-harness 0.4.13.
- GSM8K = task `gsm8k` (version 3.0): 5 exemplars drawn at random for each question from the train
  split, by one `random.Random(1234)` (lm-eval's default `fewshot_random_seed`) shared by the
  questions in test-split order, full solutions with their calculator annotations; plain text (no
  chat template); cut at `Question:`, `</s>`, `<|im_end|>`. `correct` is filter `flexible-extract`
  (the last number-like string), `correct_strict` filter `strict-match` (`#### N`); both are
  lm-eval's exact match after its `regexes_to_ignore`.
- MATH-500 = task `minerva_math500` (version 3.1): Minerva's 4 fixed exemplars, `Problem:` /
  `Solution:` format, cut at `Problem:`; `correct` is its `math_verify` metric (math-verify
  parsing the reference solution and the whole completion). Its `exact_match` metric needs
  sympy's ANTLR 4.11 LaTeX parser, which cannot be installed beside hydra-core's ANTLR 4.9 pin:
  it is not recorded (`correct_strict` is null).
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

from harness.config import TaskConfig
from harness.tasks.base import Example, Protocol, Provenance, Score, Task, take, with_exemplars
from harness.tasks.data import DatasetError, HubDataset, load_rows
from harness.tasks.math_grading import (
    GSM8K_FLEXIBLE, GSM8K_STRICT, LM_EVAL_INVALID, exact_match_normalise, last_boxed, math_equal, regex_filter,
)

GSM8K_HUB = HubDataset("openai/gsm8k", "main", "test", revision="e53f048856ff4f594e959d75785d2c2d37b678ee")
MATH500_HUB = HubDataset("HuggingFaceH4/MATH-500", None, "test", revision="6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be")
EXEMPLARS = Path(__file__).resolve().parent / "exemplars"

NEMO_SKILLS_COMMIT = "0b012df8a09cd4730d31b16e90a0d8f13d145fb8"
NEMO_SKILLS_MATH = Protocol(
    "nemo-skills", "1",
    f"NeMo-Skills {NEMO_SKILLS_COMMIT[:8]}: prompt_config=generic/math, eval_type=math "
    "(nemo_skills/evaluation/math_grader.py)",
    few_shot=0, max_few_shot=0, stop=(), chat=True,
)
NEMO_SKILLS_INSTRUCTION = "Solve the following math problem. Make sure to put the answer (and only answer) inside \\boxed{}."
LM_EVAL_FEWSHOT_SEED = 1234  # lm_eval.evaluator.simple_evaluate's default fewshot_random_seed


def nemo_skills_prompt(problem: str, filler: str) -> str:
    prefix = f"{filler}\n\n" if filler else ""
    return f"{prefix}{NEMO_SKILLS_INSTRUCTION}\n\n{problem}"


def nemo_skills_score(reference: str, completion: str) -> Score:
    predicted = last_boxed(completion)
    if predicted is None:
        return Score(correct=False, extracted=None, detail="no closed \\boxed{} answer (NeMo-Skills scores it wrong)")
    return Score(correct=math_equal(reference, predicted), extracted=predicted)


class GSM8K(Task):
    name = "gsm8k"
    version = "2"
    protocols = (
        NEMO_SKILLS_MATH,
        Protocol("lm-eval", "1", "lm-evaluation-harness 0.4.13: lm_eval/tasks/gsm8k/gsm8k.yaml (task gsm8k, version 3.0)",
                 few_shot=5, max_few_shot=None, stop=("Question:", "</s>", "<|im_end|>"), chat=False),
    )

    def provenance(self, cfg: TaskConfig) -> Provenance:
        shots = load_rows(cfg, GSM8K_HUB, split="train")[1] if self.few_shot(cfg) else None
        return with_exemplars(self._load(cfg)[1], shots)

    def _load(self, cfg: TaskConfig, split: str | None = None):
        rows, provenance = load_rows(cfg, GSM8K_HUB, split=split, columns=("question", "answer"), dataset="GSM8K")
        return rows, provenance

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rows, _ = self._load(cfg)
        if cfg.protocol == "lm-eval":
            shots = self.lm_eval_exemplars(cfg, len(rows))
            examples = [
                Example(id=f"gsm8k-{i}", question=row["question"], answer=exact_match_normalise(row["answer"]),
                        metadata={"shots": shots[i]}, protocol=cfg.protocol)
                for i, row in enumerate(rows)
            ]
        else:
            examples = [Example(id=f"gsm8k-{i}", question=row["question"], answer=self.expected_answer(row["answer"]),
                                protocol=cfg.protocol)
                        for i, row in enumerate(rows)]
        return take(examples, cfg)

    def lm_eval_exemplars(self, cfg: TaskConfig, questions: int) -> list[tuple[tuple[str, str], ...]]:
        """lm-eval's draws: its ContextSampler calls rnd.sample(train docs, k) once per test question,
        in test-split order, on one Random(1234); the draw depends on the pool's size alone."""
        count = self.few_shot(cfg)
        if count == 0:
            return [()] * questions
        train, _ = self._load(cfg, split="train")
        if len(train) < count:
            raise DatasetError(f"task.few_shot={count} but the GSM8K train split holds {len(train)} rows")
        rng = random.Random(LM_EVAL_FEWSHOT_SEED)
        draws = [rng.sample(range(len(train)), count) for _ in range(questions)]
        return [tuple((train[j]["question"], train[j]["answer"]) for j in draw) for draw in draws]

    @staticmethod
    def expected_answer(answer: str) -> str:
        """NeMo-Skills' expected_answer (dataset/gsm8k/prepare.py): float of the text after `####`
        without commas, written as an integer when it is one."""
        parts = answer.split("####")
        try:
            if len(parts) != 2:
                raise ValueError
            value = float(parts[1].replace(",", ""))
        except ValueError:
            raise DatasetError(f"GSM8K answer without exactly one number after '####': {answer[-80:]!r}") from None
        return str(int(value)) if value.is_integer() else str(value)

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        if cfg.protocol != "lm-eval":
            return nemo_skills_prompt(example.question, filler)
        # lm-eval's plain-text context: each exemplar "<doc_to_text> <doc_to_target>\n\n", then the question
        blocks = [f"Question: {q}\nAnswer: {a}\n\n" for q, a in example.metadata["shots"]]
        prefix = f"{filler}\n\n" if filler else ""
        return prefix + "".join(blocks) + f"Question: {example.question}\nAnswer:"

    def score(self, example: Example, completion: str) -> Score:
        if example.protocol != "lm-eval":
            return nemo_skills_score(example.answer, completion)
        flexible = regex_filter(completion, GSM8K_FLEXIBLE, -1)
        strict = regex_filter(completion, GSM8K_STRICT, 0)
        return Score(
            correct=exact_match_normalise(flexible) == example.answer,
            extracted=None if flexible == LM_EVAL_INVALID else flexible,
            detail="flexible-extract found no number" if flexible == LM_EVAL_INVALID else None,
            strict_correct=exact_match_normalise(strict) == example.answer,
            strict_extracted=None if strict == LM_EVAL_INVALID else strict,
        )


def minerva_exemplars() -> list[dict]:
    return json.loads((EXEMPLARS / "minerva_math.json").read_text(encoding="utf-8"))["exemplars"]


class MATH500(Task):
    name = "math500"
    version = "2"
    protocols = (
        NEMO_SKILLS_MATH,
        Protocol("lm-eval", "1", "lm-evaluation-harness 0.4.13: lm_eval/tasks/minerva_math/minerva_math500.yaml "
                 "(task minerva_math500, version 3.1), metric math_verify", few_shot=4, max_few_shot=4,
                 stop=("Problem:",), chat=False),
    )

    def provenance(self, cfg: TaskConfig) -> Provenance:
        return self._load(cfg)[1]

    def _load(self, cfg: TaskConfig):
        rows, provenance = load_rows(cfg, MATH500_HUB, columns=("problem", "solution", "answer", "subject", "level", "unique_id"),
                                     dataset="MATH-500")
        return rows, provenance

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rows, _ = self._load(cfg)
        shots = tuple((s["problem"], s["solution"]) for s in minerva_exemplars()[: self.few_shot(cfg)])
        examples = [
            Example(id=row["unique_id"], question=row["problem"], answer=row["answer"],
                    category=f"{row['subject']}, level {row['level']}", protocol=cfg.protocol,
                    metadata={"solution": row["solution"], "shots": shots} if cfg.protocol == "lm-eval" else {})
            for row in rows
        ]
        return take(examples, cfg)

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        if cfg.protocol != "lm-eval":
            return nemo_skills_prompt(example.question, filler)
        blocks = [f"Problem:\n{problem}\n\nSolution: {solution}\n\n" for problem, solution in example.metadata["shots"]]
        prefix = f"{filler}\n\n" if filler else ""
        return prefix + "".join(blocks) + f"Problem:\n{example.question}\n\nSolution:"

    def score(self, example: Example, completion: str) -> Score:
        if example.protocol != "lm-eval":
            return nemo_skills_score(example.answer, completion)
        parse, verify = _math_verify()
        timeout = 5 if threading.current_thread() is threading.main_thread() else None  # it times out with SIGALRM
        # minerva_math/utils.py process_results: verify(gold=parse(doc["solution"]), target=parse(candidates))
        gold = parse(example.metadata["solution"], parsing_timeout=timeout)
        if not gold:
            raise DatasetError(f"math-verify cannot parse the MATH-500 reference solution of {example.id}")
        predicted = parse(completion, parsing_timeout=timeout)
        correct = bool(verify(gold=gold, target=predicted, timeout_seconds=timeout))
        return Score(correct=correct, extracted=str(predicted[-1]) if predicted else None,
                     detail=None if predicted else "no answer math-verify can parse")


def _math_verify():
    try:
        from math_verify import parse, verify
    except ImportError:
        raise ImportError("scoring MATH-500 needs math-verify: pip install 'dlm-bench[tasks]'") from None
    return parse, verify


MATH_TASKS = {task.name: task for task in (GSM8K(), MATH500())}
