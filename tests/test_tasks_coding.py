"""HumanEval and MBPP: fixtures in the datasets' schema, the prompts, and pass@1 through the sandbox
for the shapes completions really take (continuations, chat answers in fences, syntax errors),
under both protocols (NeMo-Skills' prompt and code reading: tests/test_protocols_nemo_skills.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import ConfigError, TaskConfig
from harness.tasks import get_task
from harness.tasks.base import cut_at_stop

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HUMANEVAL = get_task("humaneval")
MBPP = get_task("mbpp")
HUMANEVAL_CFG = TaskConfig(name="humaneval", protocol="lm-eval", source=str(FIXTURES / "openai_humaneval"), num_samples=0)
MBPP_CFG = TaskConfig(name="mbpp", protocol="lm-eval", source=str(FIXTURES / "mbpp"), num_samples=0)


def humaneval_rows() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "openai_humaneval" / "test.jsonl").read_text().splitlines()]


def test_humaneval_canonical_solutions_pass_as_continuations():
    examples = HUMANEVAL.examples(HUMANEVAL_CFG)
    assert [e.id for e in examples] == ["Fixture/0", "Fixture/1", "Fixture/2"]
    for example, row in zip(examples, humaneval_rows()):
        assert HUMANEVAL.render(example, HUMANEVAL_CFG) == row["prompt"]  # zero-shot: the stub itself
        score = HUMANEVAL.score(example, row["canonical_solution"])
        assert score.correct, (example.id, score.detail)


def test_humaneval_continuation_is_cut_at_codex_stop_strings():
    example = HUMANEVAL.examples(HUMANEVAL_CFG)[0]
    completion = "    return a + b\n\n\ndef unrelated():\n    raise SystemExit(1)\n"
    cut, hit = cut_at_stop(completion, HUMANEVAL.stop_strings(HUMANEVAL_CFG, chat=False))
    assert hit == "\ndef" and HUMANEVAL.score(example, cut).correct


def test_humaneval_chat_answers_with_a_full_function_in_a_fence_under_nemo_skills():
    cfg = TaskConfig(name="humaneval", source=str(FIXTURES / "openai_humaneval"), num_samples=0)
    example = HUMANEVAL.examples(cfg)[2]  # running_max, whose stub imports List
    answer = ("Here is the function:\n\n```python\ndef running_max(numbers: List[int]) -> List[int]:\n"
              "    out = []\n    for n in numbers:\n        out.append(n if not out else max(out[-1], n))\n"
              "    return out\n```\n\nIt keeps the best value so far.")
    assert HUMANEVAL.stop_strings(cfg, chat=True) == ()  # a chat answer starts with its own def
    score = HUMANEVAL.score(example, answer)
    assert score.correct, score.detail
    assert score.extracted.startswith("def running_max")
    # lm-eval's humaneval takes the completion as the stub's continuation: a chat answer fails there
    assert HUMANEVAL.score(HUMANEVAL.examples(HUMANEVAL_CFG)[2], answer).correct is False


def test_humaneval_failures_say_why():
    example = HUMANEVAL.examples(HUMANEVAL_CFG)[0]
    wrong = HUMANEVAL.score(example, "    return a - b\n")
    assert wrong.correct is False and wrong.detail == "failed: AssertionError"
    broken = HUMANEVAL.score(example, "    return a +* b\n")
    assert broken.correct is False and broken.detail.startswith("SyntaxError: invalid syntax (line")
    unclosed = HUMANEVAL.score(example, "    return (a + b\n")
    assert unclosed.correct is False and unclosed.detail.startswith("SyntaxError")
    early_exit = HUMANEVAL.score(example, "    return a + b\nexit()\n")
    assert early_exit.correct is False and "exited before its last line ran" in early_exit.detail
    hostile = HUMANEVAL.score(example, "    import os\n    os.system('rm -rf ~')\n    return a + b\n")
    assert hostile.correct is False and hostile.detail.startswith("refused: PermissionError: sandbox: os.system")


def test_humaneval_takes_no_exemplars():
    for protocol in ("lm-eval", "nemo-skills"):
        with pytest.raises(ConfigError, match=f"task humaneval \\({protocol} protocol\\) takes at most 0 exemplars"):
            TaskConfig(name="humaneval", protocol=protocol, few_shot=1)


def test_mbpp_lm_eval_prompt_has_lm_evals_three_exemplars():
    examples = MBPP.examples(MBPP_CFG)
    assert [e.id for e in examples] == ["mbpp-11", "mbpp-12", "mbpp-13"]
    prompt = MBPP.render(examples[0], MBPP_CFG)
    assert prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3
    assert prompt.endswith('assert count_char("xyz", "q") == 0\n[BEGIN]\n')
    assert "def similar_elements(test_tup1, test_tup2):\r\n" in prompt and "heap_queue_largest" in prompt
    assert MBPP.provenance(MBPP_CFG).split == "full/test"


def test_mbpp_reads_code_from_a_fence_under_nemo_skills_and_fails_wrong_code():
    cfg = TaskConfig(name="mbpp", source=str(FIXTURES / "mbppplus"), num_samples=0)
    example = MBPP.examples(cfg)[2]  # squares
    fenced = "```python\ndef squares(numbers):\n    return [n ** 2 for n in numbers]\n```"
    assert MBPP.score(example, fenced).correct
    assert "import math" in MBPP.examples(cfg)[1].metadata["imports"]  # factorial's asserts use math
    example = MBPP.examples(MBPP_CFG)[2]
    wrong = MBPP.score(example, "def squares(numbers):\n    return numbers\n")
    assert wrong.correct is False and wrong.detail == "failed: AssertionError"
    missing = MBPP.score(example, "def square(numbers):\n    return [n * n for n in numbers]\n")
    assert missing.correct is False and "NameError" in missing.detail
    syntax = MBPP.score(example, "def squares(numbers)\n    return [n * n for n in numbers]\n")
    assert syntax.correct is False and syntax.detail.startswith("SyntaxError")


def test_mbpp_few_shot_beyond_lm_evals_three_exemplars_is_an_error():
    with pytest.raises(ConfigError, match="task mbpp \\(lm-eval protocol\\) takes at most 3 exemplars, got 5"):
        TaskConfig(name="mbpp", protocol="lm-eval", few_shot=5)
