"""GSM8K and MATH-500: loading from fixtures in the datasets' own schema, prompting, and scoring
the answers models really write (commas, units, dollars, negatives, LaTeX fractions, boxes), under
both protocols (the equivalence with the references' code: tests/test_protocols_*.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import ConfigError, TaskConfig
from harness.tasks import get_task
from harness.tasks.base import Example, cut_at_stop
from harness.tasks.data import DatasetError
from harness.tasks.math_grading import exact_match_normalise

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GSM8K = get_task("gsm8k")
MATH500 = get_task("math500")


LM_EVAL = TaskConfig(name="gsm8k", protocol="lm-eval", source=str(FIXTURES / "gsm8k"), num_samples=0)


def gsm8k_example(answer: str, protocol: str = "lm-eval") -> Example:
    return Example(id="x", question="?", answer=answer, metadata={"shots": ()}, protocol=protocol)


@pytest.mark.parametrize(
    "completion,gold,flexible,strict",
    [
        ("She has 3 * 1250 = 3,750 plants.\n#### 3,750", "3750", "3,750", "3,750"),  # commas dropped before matching
        ("The answer is 1,000,000.", "1000000", "1,000,000.", None),  # no #### line: strict finds nothing
        ("It drops to 4 - 11 = -7 degrees.\n#### -7", "-7", "-7", "-7"),  # negative
        ("- 18", "18", "18", None),  # a markdown bullet is not a minus sign
        ("She spends 4 * $3.50 = $14.00.\n#### 14", "14", "14", "14"),  # strict and flexible both read the #### line
        ("The cost is $14.00.", "14", "$14.00.", None),  # "14.00" is not "14" for an exact match
        ("They need 25% more, so 75 people.", "75", "75", None),  # the last number wins
        ("#### 12\nbut wait, it is 13", "12", "13", "12"),  # flexible and strict disagree
        ("I am not sure.", "5", None, None),
    ],
)
def test_gsm8k_lm_eval_flexible_and_strict_extraction(completion, gold, flexible, strict):
    score = GSM8K.score(gsm8k_example(gold), completion)
    assert score.extracted == flexible and score.strict_extracted == strict
    assert score.correct == (flexible is not None and exact_match_normalise(flexible) == gold)
    assert score.strict_correct == (strict is not None and exact_match_normalise(strict) == gold)
    if flexible is None:
        assert score.detail == "flexible-extract found no number"


def test_gsm8k_completion_is_cut_at_the_next_question_before_scoring():
    completion = "He has 5 apples.\n#### 5\n\nQuestion: How many pears?\nAnswer: 9 pears.\n#### 9"
    cut, hit = cut_at_stop(completion, GSM8K.stop_strings(LM_EVAL, chat=False))
    assert hit == "Question:" and "9" not in cut
    assert GSM8K.score(gsm8k_example("5"), cut).correct
    assert not GSM8K.score(gsm8k_example("5"), completion).correct  # uncut, the model's next "answer" would count


def test_gsm8k_lm_eval_loads_the_fixture_with_five_seeded_train_exemplars():
    examples = GSM8K.examples(LM_EVAL)
    assert [e.answer for e in examples] == ["3750", "-7", "150", "14"]  # golds after lm-eval's regexes_to_ignore
    prompt = GSM8K.render(examples[0], LM_EVAL)
    assert prompt.count("Question:") == 6 and prompt.endswith("How many plants does he have in all?\nAnswer:")
    assert "<<" in prompt and "#### 625" in prompt  # full solutions, calculator annotations kept
    provenance = GSM8K.provenance(LM_EVAL)  # the exemplars' split is part of what made the prompts
    assert provenance.source == str(FIXTURES / "gsm8k") and provenance.split == "main/test+main/train"
    evaluated, exemplars = provenance.revision.split("+")
    assert evaluated.startswith("sha256:") and exemplars.startswith("sha256:") and evaluated != exemplars
    zero_shot = TaskConfig(name="gsm8k", protocol="lm-eval", source=str(FIXTURES / "gsm8k"), few_shot=0)
    assert GSM8K.render(GSM8K.examples(zero_shot)[0], zero_shot).count("Question:") == 1
    assert GSM8K.provenance(zero_shot).split == "main/test" and GSM8K.provenance(zero_shot).revision == evaluated
    with pytest.raises(DatasetError, match="task.few_shot=8 but the GSM8K train split holds 5 rows"):
        GSM8K.examples(TaskConfig(name="gsm8k", protocol="lm-eval", source=str(FIXTURES / "gsm8k"), few_shot=8))


def test_gsm8k_few_shot_needs_the_train_split_next_to_a_single_file():
    cfg = TaskConfig(name="gsm8k", protocol="lm-eval", source=str(FIXTURES / "gsm8k" / "main" / "test.jsonl"))
    with pytest.raises(DatasetError) as info:
        GSM8K.examples(cfg)
    assert "no file for split 'train'" in str(info.value) or "split" in str(info.value)
    assert len(GSM8K.examples(TaskConfig(name="gsm8k", source=cfg.source))) == 4  # nemo-skills: zero-shot


@pytest.mark.parametrize(
    "gold,completion,correct,extracted",
    [
        ("\\frac{3}{4}", "Adding gives $\\boxed{\\dfrac34}$.", True, "\\dfrac34"),  # LaTeX fraction forms
        ("\\frac{3}{4}", "So the sum is \\boxed{0.75}.", True, "0.75"),
        ("-2", "Then $x = \\boxed{-2}$.", True, "-2"),
        ("-2", "Then $x = \\boxed{2}$.", False, "2"),  # a lost sign is wrong
        ("24", "The LCM is \\boxed{24 \\text{ apples}}.", True, "24 \\text{ apples}"),  # units in the box
        ("1000", "That makes \\boxed{1,000}.", True, "1,000"),  # thousands comma
        ("(1,2]", "In interval notation: \\boxed{(1, 2]}", True, "(1, 2]"),
        ("(1,2]", "In interval notation: \\boxed{[1, 2]}", False, "[1, 2]"),
        ("3\\sqrt{2}", "We get \\boxed{\\sqrt{18}}.", True, "\\sqrt{18}"),
        ("\\frac{1}{2}", "First \\boxed{3}, but correcting it: \\boxed{\\frac{1}{2}}", True, "\\frac{1}{2}"),  # the last box
    ],
)
def test_math500_checks_boxed_answers_symbolically(gold, completion, correct, extracted):
    score = MATH500.score(Example(id="x", question="?", answer=gold, protocol="nemo-skills"), completion)
    assert score.correct is correct and score.extracted == extracted


@pytest.mark.parametrize("completion", ["I could not solve it: 24.", "\\fbox{24}", "\\boxed{24", "\\boxed 24"])
def test_math500_without_a_closed_box_is_wrong_with_a_reason(completion):
    score = MATH500.score(Example(id="x", question="?", answer="24", protocol="nemo-skills"), completion)
    assert score.correct is False and score.extracted is None and score.detail.startswith("no closed \\boxed{} answer")


def test_math500_loads_the_fixture_with_subject_and_level():
    cfg = TaskConfig(name="math500", source=str(FIXTURES / "math500" / "test.jsonl"), num_samples=2)
    examples = MATH500.examples(cfg)
    assert [e.id for e in examples] == ["test/prealgebra/fixture-1.json", "test/algebra/fixture-2.json"]
    assert examples[0].category == "Prealgebra, level 1" and examples[0].answer == "\\frac{3}{4}"
    prompt = MATH500.render(examples[0], cfg)
    assert "\\boxed{}" in prompt and "Compute $\\frac{1}{2} + \\frac{1}{4}$." in prompt


def test_math500_takes_no_exemplars_under_nemo_skills_and_four_under_lm_eval():
    with pytest.raises(ConfigError, match="task.few_shot: task math500 \\(nemo-skills protocol\\) takes at most 0 exemplars, got 4"):
        TaskConfig(name="math500", few_shot=4)
    with pytest.raises(ConfigError, match="task math500 \\(lm-eval protocol\\) takes at most 4 exemplars, got 5"):
        TaskConfig(name="math500", protocol="lm-eval", few_shot=5)


def test_an_unknown_protocol_names_the_valid_ones():
    with pytest.raises(ConfigError, match="task.protocol: 'helm' is not valid; choose one of: nemo-skills, lm-eval"):
        TaskConfig(name="gsm8k", protocol="helm")
    with pytest.raises(ConfigError, match="choose one of: ruler"):
        TaskConfig(name="passkey", protocol="lm-eval")


def test_a_malformed_source_names_the_missing_columns(tmp_path):
    wrong = tmp_path / "test.jsonl"
    wrong.write_text('{"question": "q", "solution": "s"}\n')
    with pytest.raises(DatasetError, match=r"test.jsonl:1: missing column 'answer'; GSM8K rows need: question, answer"):
        GSM8K.examples(TaskConfig(name="gsm8k", source=str(wrong)))
