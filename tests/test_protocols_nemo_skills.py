"""The `nemo-skills` protocol. NeMo-Skills is not on the package index, so its rules are pinned by
tables of cases taken from its code at NVIDIA/NeMo-Skills@0b012df8 (2025-11-15):
- tests/fixtures/protocols/nemo_skills_math.json: 300+ completions with the answer NeMo-Skills'
  `math_grader.extract_answer` reads and the verdict its `math_equal` gives, computed by running
  that file on them;
- the tables below, each row citing the function whose rule it states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import ConfigError, TaskConfig
from harness.prompts import uses_chat_template
from harness.tasks import get_task
from harness.tasks.base import Example
from harness.tasks.coding import preprocess_code
from harness.tasks.math_grading import last_boxed, math_equal

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TABLE = json.loads((FIXTURES / "protocols" / "nemo_skills_math.json").read_text(encoding="utf-8"))
GSM8K, MATH500, HUMANEVAL, MBPP = (get_task(n) for n in ("gsm8k", "math500", "humaneval", "mbpp"))


def test_the_table_names_the_pinned_commit_and_covers_the_tricky_completions():
    assert "0b012df8a09cd4730d31b16e90a0d8f13d145fb8" in TABLE["source"]
    cases = TABLE["cases"]
    assert len(cases) >= 300
    completions = [c["completion"] for c in cases]
    for tricky in ("\\fbox", "- 18", "\\boxed {", "$"):
        assert any(tricky in c for c in completions), tricky
    assert any("\\boxed" not in c for c in completions) and any(c.count("\\boxed") > 1 for c in completions)
    verdicts = {c["symbolic_correct"] for c in cases}
    assert verdicts == {True, False}


def test_extraction_and_verdicts_are_nemo_skills_on_every_case():
    disagreements = []
    for case in TABLE["cases"]:
        predicted = last_boxed(case["completion"])
        verdict = math_equal(case["reference"], predicted)
        if predicted != case["predicted_answer"] or verdict != case["symbolic_correct"]:
            disagreements.append((case, predicted, verdict))
    assert not disagreements, disagreements[:5]


def test_the_task_scorers_give_the_same_verdicts():
    for case in TABLE["cases"][:60]:
        example = Example(id="x", question="?", answer=case["reference"], protocol="nemo-skills")
        for task in (MATH500, GSM8K):
            score = task.score(example, case["completion"])
            assert score.correct == case["symbolic_correct"] and score.extracted == case["predicted_answer"]
            assert (score.detail is None) == (case["predicted_answer"] is not None)


# math_grader.py search_boxed: the last "\boxed", braces counted from it; its content only when
# the brace follows directly; "\fbox" is looked for only when there is no "\boxed" at all, which
# the guard at its top has already ruled out.
@pytest.mark.parametrize("completion,answer", [
    ("so $\\boxed{18}$.", "18"),
    ("\\boxed{3} first, then \\boxed{4}", "4"),
    ("\\boxed{\\frac{1}{2}} is it", "\\frac{1}{2}"),
    ("\\boxed{5", None),  # unclosed
    ("\\fbox{5}", None),  # \fbox alone
    ("\\boxed 5", None),
    ("\\boxed {5}", None),  # a space before the brace
    ("The answer is 5.", None),  # no box
    ("\\boxed{}", ""),
    ("\\boxed{\\boxed{7}}", "7"),  # the last "\\boxed" is the inner one
])
def test_search_boxed_rules(completion, answer):
    assert last_boxed(completion) == answer


# math_grader.py math_equal: "%" / "\%" after a number and a trailing "." or "\" are dropped;
# words or digits alone compare literally after normalize_latex; letters A-J compare as options;
# everything else goes to math-verify's symbolic check with numeric_precision=15.
@pytest.mark.parametrize("reference,predicted,verdict", [
    ("50", "50\\%", True),
    ("5", "5.", True),
    ("18", None, False),
    ("Monday", "monday", False),  # literal: case counts
    ("\\text{Monday}", "Monday", True),
    ("A", "A", True),
    ("A", "B", False),
    ("\\frac{3}{4}", "0.75", True),
    ("(1,2]", "[1, 2]", False),
    ("3\\sqrt{2}", "\\sqrt{18}", True),
    ("1000", "1,000", True),
])
def test_math_equal_rules(reference, predicted, verdict):
    assert math_equal(reference, predicted) is verdict


def test_gsm8k_reference_is_nemo_skills_expected_answer():
    # dataset/gsm8k/prepare.py: float of the text after "####" without commas, an int when it is one
    assert GSM8K.expected_answer("... #### 3,750") == "3750"
    assert GSM8K.expected_answer("... #### -7") == "-7"
    assert GSM8K.expected_answer("... #### 2.50") == "2.5"
    cfg = TaskConfig(name="gsm8k", source=str(FIXTURES / "gsm8k"), num_samples=0)
    assert cfg.protocol == "nemo-skills"  # the default: the vendor's published numbers
    assert [e.answer for e in GSM8K.examples(cfg)] == ["3750", "-7", "150", "14"]


@pytest.mark.parametrize("name,source", [("gsm8k", FIXTURES / "gsm8k"), ("math500", FIXTURES / "math500" / "test.jsonl")])
def test_math_prompt_is_generic_math_zero_shot_and_needs_a_chat_template(name, source):
    task = get_task(name)
    cfg = TaskConfig(name=name, source=str(source), num_samples=1)
    example = task.examples(cfg)[0]
    # prompt/config/generic/math.yaml, {examples} empty
    assert task.render(example, cfg) == (
        "Solve the following math problem. Make sure to put the answer (and only answer) inside \\boxed{}.\n\n" + example.question)
    assert task.few_shot(cfg) == 0 and task.stop_strings(cfg, chat=True) == ()
    with pytest.raises(ConfigError, match="takes at most 0 exemplars"):
        TaskConfig(name=name, few_shot=1)
    chat = type("Chat", (), {"chat_template": "{{ messages }}"})()  # uses_chat_template reads only this
    plain = type("Plain", (), {"chat_template": None})()
    assert uses_chat_template(chat, cfg, task) is True
    with pytest.raises(ValueError, match="prompts .* through the chat template, but the tokenizer has none"):
        uses_chat_template(plain, cfg, task)
    assert uses_chat_template(plain, TaskConfig(name=name, use_chat_template=False), task) is False


# evaluator/code.py preprocess_code: strip, drop "\r", after a finished <think> only, the first
# ```python fence (else the first ``` fence), an unclosed fence running to the end.
@pytest.mark.parametrize("completion,code", [
    ("```python\ndef f():\n    return 1\n```\nThat is it.", "def f():\n    return 1"),
    ("Intro\n```\nx = 1\n```\n```python\ny = 2\n```", "y = 2"),  # a python fence wins over an earlier bare one
    ("```\nx = 1\n```", "x = 1"),
    ("```python\nx = 1\n", "x = 1"),  # unclosed
    ("  def f(): return 1  ", "def f(): return 1"),  # no fence: the whole answer, stripped
    ("<think>plan</think>\n```python\nx = 3\n```", "x = 3"),
    ("<think>still planning", ""),
    ("```python\r\nx = 1\r\n```", "x = 1"),
])
def test_preprocess_code_rules(completion, code):
    assert preprocess_code(completion) == code


def humaneval_rows() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "openai_humaneval" / "test.jsonl").read_text().splitlines()]


def test_humaneval_prompt_and_program_are_nemo_skills_codegen():
    cfg = TaskConfig(name="humaneval", source=str(FIXTURES / "openai_humaneval"), num_samples=0)
    for example, row in zip(HUMANEVAL.examples(cfg), humaneval_rows()):
        prompt = HUMANEVAL.render(example, cfg)
        assert prompt.startswith("Here is a problem for which you need to generate/complete code:\n")
        assert row["prompt"].replace("    ", "\t") in prompt and prompt.endswith("```python\n# Your code here\n```")
        # the model answers with the whole function in a fence; evalplus runs prompt + that code
        answer = f"Sure.\n```python\n{row['prompt']}{row['canonical_solution']}```\nDone."
        score = HUMANEVAL.score(example, answer)
        assert score.correct, (example.id, score.detail)
        body_only = HUMANEVAL.score(example, f"```python\n{row['canonical_solution']}```")
        assert body_only.correct is False  # stripped, a body alone no longer indents: as under NeMo-Skills


def test_mbpp_is_mbpp_plus_with_the_evalplus_docstring_prompt():
    cfg = TaskConfig(name="mbpp", source=str(FIXTURES / "mbppplus"), num_samples=0)
    assert MBPP.hub(cfg).path == "evalplus/mbppplus"
    rows = [json.loads(line) for line in (FIXTURES / "mbppplus" / "test.jsonl").read_text().splitlines()]
    for example, row in zip(MBPP.examples(cfg), rows):
        assert example.question == f'"""\n{row["prompt"]}\n{row["test_list"][0]}\n"""\n'
        assert example.question in MBPP.render(example, cfg)
        assert MBPP.score(example, f"```python\n{row['code']}\n```").correct, example.id
    wrong = MBPP.score(MBPP.examples(cfg)[2], "```python\ndef squares(numbers):\n    return numbers\n```")
    assert wrong.correct is False and wrong.detail == "failed: AssertionError"
