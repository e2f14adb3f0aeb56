"""Code generation: HumanEval and MBPP, pass@1 by running each program against the dataset's tests
in the sandbox (`harness.sandbox`), under two protocols.

`nemo-skills` (the default: the vendor's code numbers come from NeMo-Skills, which grades with
evalplus): zero-shot through the chat template, NeMo-Skills' `generic/codegen` prompt with the
problem's prompt (four spaces turned into tabs, as its `prepare.py` does), no stop string; the code
is NeMo-Skills' `preprocess_code` reading of the answer (the first ```python fence, else the first
``` fence, else the whole answer, stripped), and the program is the problem's prompt followed by
that code, as evalplus builds it from a `completion`. HumanEval: the 164 problems of
`openai/openai_humaneval`; MBPP: MBPP+ (`evalplus/mbppplus`, 378 problems, prompt written as
evalplus's docstring: three quotes, the text, the first assert, three quotes). Both run the base tests (evalplus's
`base_status`, which NeMo-Skills scores as `is_correct`), here as asserts: evalplus's extra
"plus" inputs are not run.

`lm-eval` (lm-evaluation-harness 0.4.13): HumanEval = task `humaneval` (version 1.0): the stub as
the prompt, plain text, cut at Codex's stop strings (`\\nclass`, `\\ndef`, `\\n#`, `\\nif`,
`\\nprint`), program = stub + completion + the dataset's `check`. MBPP = task `mbpp` (version 1.0):
the **full** config's 500 test problems, 3 fixed exemplars (tasks 2, 3, 4, code with its `\\r\\n`
line ends), `[BEGIN]` / `[DONE]`; program = completion + newline + the first three asserts (the
row's `test_setup_code` is not run, as lm-eval does not).

pass@1 with one greedy sample: `correct` = the program ran, then its tests ran to their end (the
two are compiled apart, so code cannot swallow the tests), and it exited 0. A syntax error is
caught before anything runs; every other failure (assertion, exception, timeout, memory, a refused
operation) keeps the sandbox's reason in `score_detail`, and `sandbox_level` says how the code was
isolated. `task.code_time_limit_s` is each program's wall-clock limit; where no kernel sandbox can
be set up the cell fails before the model loads unless `task.allow_unsafe_code=true`.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from harness.config import TaskConfig
from harness.sandbox import SandboxLimits, run_python, sandbox_level
from harness.tasks.base import Example, Protocol, Provenance, Score, Task, take
from harness.tasks.data import HubDataset, load_rows
from harness.tasks.math_reasoning import NEMO_SKILLS_COMMIT

HUMANEVAL_HUB = HubDataset("openai/openai_humaneval", None, "test", revision="7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544")
MBPP_HUB = HubDataset("google-research-datasets/mbpp", "full", "test", revision="4bb6404fdc6cacfda99d4ac4205087b89d32030c")
# No commit of evalplus/mbppplus was reachable from where this was written: set task.revision to pin one.
MBPP_PLUS_HUB = HubDataset("evalplus/mbppplus", None, "test", revision="main")
EXEMPLARS = Path(__file__).resolve().parent / "exemplars"

NEMO_SKILLS_CODE = Protocol(
    "nemo-skills", "1",
    f"NeMo-Skills {NEMO_SKILLS_COMMIT[:8]}: prompt_config=generic/codegen, eval_type=evalplus "
    "(nemo_skills/evaluation/evaluator/code.py preprocess_code), base tests",
    few_shot=0, max_few_shot=0, stop=(), chat=True,
)
CODEGEN_PROMPT = (
    "Here is a problem for which you need to generate/complete code:\n{question}\n\n"
    "Please continue to complete the function with python programming language. You are not allowed to modify "
    "the given code and do the completion only.\n\nThe solution should be in the following format:\n"
    "```python\n# Your code here\n```"
)


def codegen_prompt(problem_prompt: str, filler: str) -> str:
    prefix = f"{filler}\n\n" if filler else ""
    return prefix + CODEGEN_PROMPT.format(question=problem_prompt.replace("    ", "\t"))


def preprocess_code(completion: str) -> str:
    """The code NeMo-Skills reads from an answer: after a finished <think> trace, the inside of the
    first ```python fence (else of the first ``` fence; an unclosed one runs to the end), stripped."""
    completion = completion.strip().replace("\r", "")
    if "<think>" in completion:
        end = completion.find("</think>")
        if end < 0:
            return ""  # the model never finished thinking: no solution
        completion = completion[end + len("</think>"):].strip()
    for opening in ("```python", "```"):
        if opening in completion:
            completion = completion[completion.index(opening) + len(opening):].strip()
            closing = completion.find("```")
            if closing >= 0:
                completion = completion[:closing].strip()
            break
    return completion


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
    version = "2"
    protocols = (
        NEMO_SKILLS_CODE,
        Protocol("lm-eval", "1", "lm-evaluation-harness 0.4.13: lm_eval/tasks/humaneval/humaneval.yaml (task humaneval, version 1.0)",
                 few_shot=0, max_few_shot=0, stop=("\nclass", "\ndef", "\n#", "\nif", "\nprint"), chat=False),
    )

    def provenance(self, cfg: TaskConfig) -> Provenance:
        return self._load(cfg)[1]

    def _load(self, cfg: TaskConfig):
        rows, provenance = load_rows(cfg, HUMANEVAL_HUB, columns=("task_id", "prompt", "test", "entry_point"), dataset="HumanEval")
        return rows, provenance

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rows, _ = self._load(cfg)
        examples = [
            Example(id=row["task_id"], question=row["prompt"], answer=row.get("canonical_solution"),
                    metadata={"test": row["test"], "entry_point": row["entry_point"], **sandbox_settings(cfg)},
                    protocol=cfg.protocol)
            for row in rows
        ]
        return take(examples, cfg)

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        if cfg.protocol != "lm-eval":
            return codegen_prompt(example.question, filler)
        # Padding as a comment block above the stub keeps the prompt a valid Python file.
        prefix = "".join(f"# {line}\n" for line in _wrap(filler)) + "\n" if filler else ""
        return prefix + example.question

    def score(self, example: Example, completion: str) -> Score:
        code = completion if example.protocol == "lm-eval" else preprocess_code(completion)
        # lm-eval's build_predictions and evalplus's `prompt + completion` alike: the stub, then the code
        program = example.question + code
        tests = f"{example.metadata['test']}\n\ncheck({example.metadata['entry_point']})\n"
        return run_tests(program, tests, code, example.metadata)


def mbpp_lm_eval_exemplars() -> list[dict]:
    return json.loads((EXEMPLARS / "mbpp_lm_eval.json").read_text(encoding="utf-8"))["exemplars"]


class MBPP(CodeTask):
    name = "mbpp"
    version = "2"
    protocols = (
        NEMO_SKILLS_CODE,
        Protocol("lm-eval", "1", "lm-evaluation-harness 0.4.13: lm_eval/tasks/mbpp/mbpp.yaml (task mbpp, version 1.0)",
                 few_shot=3, max_few_shot=3, stop=("[DONE]",), chat=False),
    )

    def hub(self, cfg: TaskConfig) -> HubDataset:
        return MBPP_HUB if cfg.protocol == "lm-eval" else MBPP_PLUS_HUB

    def provenance(self, cfg: TaskConfig) -> Provenance:
        return self._load(cfg)[1]

    def _load(self, cfg: TaskConfig):
        if cfg.protocol == "lm-eval":
            columns, dataset = ("task_id", "text", "code", "test_list"), "MBPP (full)"
        else:
            columns, dataset = ("task_id", "prompt", "code", "test_list", "test_imports"), "MBPP+ (evalplus/mbppplus)"
        rows, provenance = load_rows(cfg, self.hub(cfg), columns=columns, dataset=dataset)
        return rows, provenance

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rows, _ = self._load(cfg)
        if cfg.protocol == "lm-eval":
            shots = tuple(mbpp_lm_eval_exemplars()[: self.few_shot(cfg)])
            examples = [
                Example(id=f"mbpp-{row['task_id']}", question=row["text"], answer=row["code"], protocol=cfg.protocol,
                        metadata={"tests": tuple(row["test_list"][:3]), "shots": shots, **sandbox_settings(cfg)})
                for row in rows
            ]
        else:
            examples = [
                Example(id=f"mbpp-{row['task_id']}", question=f'"""\n{row["prompt"]}\n{row["test_list"][0]}\n"""\n',
                        answer=row["code"], protocol=cfg.protocol,
                        metadata={"tests": tuple(row["test_list"]), "imports": tuple(row["test_imports"] or ()),
                                  **sandbox_settings(cfg)})
                for row in rows
            ]
        return take(examples, cfg)

    @staticmethod
    def lm_eval_text(text: str, tests) -> str:
        """mbpp.yaml's doc_to_text."""
        return (f"You are an expert Python programmer, and here is your task: {text} Your code should pass these tests:"
                f"\n\n{tests[0]}\n{tests[1]}\n{tests[2]}\n[BEGIN]\n")

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        if cfg.protocol != "lm-eval":
            return codegen_prompt(example.question, filler)
        # each exemplar: doc_to_text, target_delimiter "", "<code>\n[DONE]", fewshot_delimiter "\n\n"
        parts = [f"{self.lm_eval_text(s['text'], s['test_list'])}{s['code']}\n[DONE]\n\n" for s in example.metadata["shots"]]
        prefix = f"{filler}\n\n" if filler else ""
        return prefix + "".join(parts) + self.lm_eval_text(example.question, example.metadata["tests"])

    def score(self, example: Example, completion: str) -> Score:
        tests = example.metadata["tests"]
        if example.protocol == "lm-eval":
            # HF evaluate's code_eval, as lm-eval's pass_at_1 calls it: the completion, a newline, the asserts
            return run_tests(completion + "\n", "\n".join((*tests, "")), completion, example.metadata)
        code = preprocess_code(completion)
        program = "\n".join((*example.metadata["imports"], example.question + code, ""))
        return run_tests(program, "\n".join((*tests, "")), code, example.metadata)


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
