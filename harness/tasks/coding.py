"""Code generation: HumanEval and MBPP (sanitized), pass@1 by running each program against the
dataset's tests in the sandbox (`harness.sandbox`).

HumanEval (Chen et al. 2021): zero-shot; the prompt is the function signature and docstring as the
dataset gives it. Without a chat template the model continues the function and the completion is
cut at Codex's stop strings (`\\nclass`, `\\ndef`, `\\n#`, `\\nif`, `\\nprint`); with one, the model
answers in its own words and there are no stop strings: the code is the first fenced block of the
answer (or the whole answer), and a completion that defines the entry point replaces the stub.

MBPP sanitized (Austin et al. 2021, the hand-checked 427-problem subset): three exemplars from the
`prompt` split (task ids 2, 3, 4 in the paper), in the paper's format (task, its three asserts,
`[BEGIN]` code `[DONE]`); completions are cut at `[DONE]`. The program is the test imports, the
extracted code and the asserts.

pass@1 with one greedy sample: `correct` = the program ran, then its tests ran to their end (the
two are compiled apart, so code cannot swallow the tests), and it exited 0. A syntax error is
caught before anything runs; every other failure (assertion, exception, timeout, memory, a refused
operation) keeps the sandbox's reason in `score_detail`, and `sandbox_level` says how the code was
isolated. `task.code_time_limit_s` is each program's wall-clock limit; where no kernel sandbox can
be set up the cell fails before the model loads unless `task.allow_unsafe_code=true`.
"""

from __future__ import annotations

import ast
import re

from harness.config import TaskConfig
from harness.sandbox import SandboxLimits, run_python, sandbox_level
from harness.tasks.base import Example, Provenance, Score, Task, take, with_exemplars
from harness.tasks.data import DatasetError, HubDataset, load_rows, require_columns

HUMANEVAL_HUB = HubDataset("openai/openai_humaneval", None, "test", revision="7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544")
MBPP_HUB = HubDataset("google-research-datasets/mbpp", "sanitized", "test", revision="4bb6404fdc6cacfda99d4ac4205087b89d32030c")
FENCED = re.compile(r"```[ \t]*(?:python|py|Python|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def fenced_code(completion: str) -> str | None:
    """The first fenced code block (an unclosed one runs to the end), or None."""
    match = FENCED.search(completion)
    return match.group(1) if match else None


def defines(code: str, function: str) -> bool:
    return re.search(rf"^def {re.escape(function)}\s*\(", code, re.MULTILINE) is not None


def sandbox_settings(cfg: TaskConfig) -> dict:
    """What each example carries for running its code (Task.score sees no config)."""
    return {"limits": SandboxLimits.for_time_limit(cfg.code_time_limit_s), "allow_unsafe": cfg.allow_unsafe_code}


def run_tests(program: str, tests: str, code: str, metadata: dict) -> Score:
    """Score `program` by running it and then `tests`; `code` is what the model wrote (recorded)."""
    for part, source in (("", program), ("the tests: ", tests)):
        try:
            ast.parse(source)
        except SyntaxError as exc:
            return Score(correct=False, extracted=code, detail=f"SyntaxError: {part}{exc.msg} (line {exc.lineno})")
    result = run_python(program, metadata["limits"], tests=tests, allow_unsafe=metadata["allow_unsafe"])
    detail = None if result.passed else f"{result.status}: {result.reason}"
    return Score(correct=result.passed, extracted=code, detail=detail, sandbox_level=result.level)


class CodeTask(Task):
    def preflight(self, cfg: TaskConfig) -> None:
        sandbox_level(cfg.allow_unsafe_code)  # raises SandboxUnavailable, saying why and what to set


class HumanEval(CodeTask):
    name = "humaneval"
    version = "1"
    default_few_shot = 0
    max_few_shot = 0
    stop = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")

    def stop_strings(self, chat: bool) -> tuple[str, ...]:
        return () if chat else self.stop  # a chat answer starts with its own `def`, often inside a fence

    def provenance(self, cfg: TaskConfig) -> Provenance:
        return self._load(cfg)[1]

    def _load(self, cfg: TaskConfig):
        rows, provenance = load_rows(cfg, HUMANEVAL_HUB)
        require_columns(rows, ("task_id", "prompt", "test", "entry_point"), "HumanEval")
        return rows, provenance

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rows, _ = self._load(cfg)
        examples = [
            Example(id=row["task_id"], question=row["prompt"], answer=row.get("canonical_solution"),
                    metadata={"test": row["test"], "entry_point": row["entry_point"], **sandbox_settings(cfg)})
            for row in rows
        ]
        return take(examples, cfg)

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        # Padding as a comment block above the stub keeps the prompt a valid Python file.
        prefix = "".join(f"# {line}\n" for line in _wrap(filler)) + "\n" if filler else ""
        return prefix + example.question

    def score(self, example: Example, completion: str) -> Score:
        entry_point = example.metadata["entry_point"]
        fenced = fenced_code(completion)
        code = completion if fenced is None else fenced
        if defines(code, entry_point):
            program = f"{example.question}\n    pass\n\n{code}"  # the stub stays for its imports; the model's def replaces it
        else:
            program = example.question + code  # a continuation of the stub's body
        tests = f"{example.metadata['test']}\n\ncheck({entry_point})\n"
        return run_tests(program, tests, code, example.metadata)


class MBPP(CodeTask):
    name = "mbpp"
    version = "1"
    default_few_shot = 3
    max_few_shot = None  # as many as the prompt split holds (7 in sanitized)
    stop = ("[DONE]",)

    def provenance(self, cfg: TaskConfig) -> Provenance:
        shots = self._load(cfg, split="prompt")[1] if self.few_shot(cfg) else None
        return with_exemplars(self._load(cfg)[1], shots)

    def _load(self, cfg: TaskConfig, split: str | None = None):
        rows, provenance = load_rows(cfg, MBPP_HUB, split=split)
        require_columns(rows, ("task_id", "prompt", "code", "test_list", "test_imports"), "MBPP sanitized")
        return rows, provenance

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rows, _ = self._load(cfg)
        shots = self.exemplars(cfg)
        examples = [
            Example(id=f"mbpp-{row['task_id']}", question=row["prompt"], answer=row["code"],
                    metadata={"tests": tuple(row["test_list"]), "imports": tuple(row["test_imports"] or ()), "shots": shots,
                              **sandbox_settings(cfg)})
            for row in rows
        ]
        return take(examples, cfg)

    def exemplars(self, cfg: TaskConfig) -> tuple[tuple[str, tuple[str, ...], str], ...]:
        count = self.few_shot(cfg)
        if count == 0:
            return ()
        rows, _ = self._load(cfg, split="prompt")
        if len(rows) < count:
            raise DatasetError(f"task.few_shot={count} but the MBPP prompt split holds {len(rows)} rows")
        return tuple((row["prompt"], tuple(row["test_list"]), row["code"]) for row in rows[:count])

    @staticmethod
    def block(text: str, tests: tuple[str, ...]) -> str:
        joined = "\n".join(tests)
        return f"You are an expert Python programmer, and here is your task: {text} Your code should pass these tests:\n\n{joined}\n"

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        parts = [f"{self.block(text, tests)}[BEGIN]\n{code.strip()}\n[DONE]" for text, tests, code in example.metadata["shots"]]
        parts.append(f"{self.block(example.question, example.metadata['tests'])}[BEGIN]\n")
        prefix = f"{filler}\n\n" if filler else ""
        return prefix + "\n\n".join(parts)

    def score(self, example: Example, completion: str) -> Score:
        code = fenced_code(completion)
        if code is None:
            code = completion.replace("[BEGIN]", "")
        code = code.strip("\n")
        program = "\n".join((*example.metadata["imports"], code, ""))
        return run_tests(program, "\n".join((*example.metadata["tests"], "")), code, example.metadata)


def _wrap(text: str, width: int = 76) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([line] if line else [])


CODING_TASKS = {task.name: task for task in (HumanEval(), MBPP())}
