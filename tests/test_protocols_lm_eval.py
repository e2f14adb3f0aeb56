"""The `lm-eval` and `ruler` protocols against lm-evaluation-harness's own code (the test extra
installs lm-eval 0.4.13 from the package index): the same completions go through lm-eval's filter,
metric and prompt classes, configured from lm-eval's own task YAML files, and through ours; every
verdict and every prompt must be identical."""

from __future__ import annotations

import ast
import json
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from harness.config import TaskConfig
from harness.tasks import get_task
from harness.tasks.base import Example, cut_at_stop
from harness.tasks.math_grading import exact_match_normalise
from tests.protocol_cases import gsm8k_cases, math_cases, ruler_cases

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LM_EVAL_TASKS = Path(str(resources.files("lm_eval") / "tasks"))
GSM8K, MATH500, MBPP, HUMANEVAL = (get_task(n) for n in ("gsm8k", "math500", "mbpp", "humaneval"))


def test_the_pinned_lm_eval_is_the_one_installed():
    assert version("lm_eval") == "0.4.13"
    for task in (GSM8K, MATH500, MBPP, HUMANEVAL):
        assert "lm-evaluation-harness 0.4.13" in task.protocol("lm-eval").reference


def gsm8k_yaml() -> dict:
    return yaml.safe_load((LM_EVAL_TASKS / "gsm8k" / "gsm8k.yaml").read_text())


def lm_eval_gsm8k_verdicts(completion: str, answer: str) -> dict[str, tuple[str, bool]]:
    """lm-eval's pipeline for one gsm8k response: each filter_list entry of the YAML built from
    lm-eval's filter registry, then exact_match with the YAML's metric arguments."""
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters import get_filter

    config = gsm8k_yaml()
    metric = {k: v for k, v in config["metric_list"][0].items() if k not in ("metric", "aggregation", "higher_is_better")}
    verdicts = {}
    for pipeline in config["filter_list"]:
        responses = [[completion]]
        for step in pipeline["filter"]:
            kwargs = {k: v for k, v in step.items() if k != "function"}
            responses = list(get_filter(step["function"])(**kwargs).apply(responses, [{}]))
        filtered = responses[0] if isinstance(responses[0], str) else responses[0][0]
        score = exact_match_hf_evaluate(predictions=[filtered], references=[answer], **metric)["exact_match"]
        verdicts[pipeline["name"]] = (filtered, bool(score == 1.0))
    return verdicts


def test_gsm8k_verdicts_are_lm_evals_on_every_completion():
    cases = gsm8k_cases()
    assert len(cases) >= 100
    stops = GSM8K.protocol("lm-eval").stop
    assert list(stops) == gsm8k_yaml()["generation_kwargs"]["until"]
    disagreements = []
    for completion, answer in cases:
        cut, _ = cut_at_stop(completion, stops)  # lm-eval stops generation at `until` the same way
        reference = lm_eval_gsm8k_verdicts(cut, answer)
        ours = GSM8K.score(Example(id="x", question="?", answer=exact_match_normalise(answer), protocol="lm-eval"), cut)
        mine = {"flexible-extract": (ours.extracted, ours.correct), "strict-match": (ours.strict_extracted, ours.strict_correct)}
        for name, (filtered, verdict) in reference.items():
            read, our_verdict = mine[name]
            if verdict != our_verdict or (read or "[invalid]") != filtered:
                disagreements.append((name, completion, answer, filtered, verdict, read, our_verdict))
    assert not disagreements, disagreements[:5]
    # the tricky ones really are in there, and lm-eval reads them as stated
    assert lm_eval_gsm8k_verdicts("- 18", "#### 18")["flexible-extract"] == ("18", True)
    assert lm_eval_gsm8k_verdicts("#### 18.", "#### 18")["strict-match"] == ("18.", True)
    assert lm_eval_gsm8k_verdicts("The answer is 18.", "#### 18")["strict-match"] == ("[invalid]", False)


def lm_eval_task(config: dict, data_files: dict[str, str]):
    from lm_eval.api.task import ConfigurableTask

    config = {k: v for k, v in config.items() if k != "tag"}
    config.update(dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": data_files})
    return ConfigurableTask(config=config)


@pytest.mark.parametrize("few_shot", [5, 3, 0])
def test_gsm8k_prompts_are_lm_evals_with_its_seeded_exemplars(few_shot):
    folder = FIXTURES / "gsm8k" / "main"
    task = lm_eval_task(gsm8k_yaml(), {"train": str(folder / "train.jsonl"), "test": str(folder / "test.jsonl")})
    task.set_fewshot_seed(1234)  # lm_eval.evaluator.simple_evaluate's default fewshot_random_seed
    theirs = [task.fewshot_context(doc, few_shot) for doc in task.eval_docs]  # in test-split order, as lm-eval builds them
    cfg = TaskConfig(name="gsm8k", protocol="lm-eval", source=str(FIXTURES / "gsm8k"), num_samples=0, few_shot=few_shot)
    ours = [GSM8K.render(example, cfg) for example in GSM8K.examples(cfg)]
    assert ours == theirs
    if few_shot == 5:
        assert len({prompt.split("Question: ")[1] for prompt in ours}) > 1  # drawn per question, not fixed
        assert "<<" in ours[0]  # calculator annotations kept, as lm-eval's doc_to_target does


def lm_eval_fewshot_samples(path: Path) -> list[dict]:
    """The exemplar list a task's utils.py returns (read as data: importing mbpp's utils would
    download HF evaluate's code_eval)."""
    tree = ast.parse(path.read_text())
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "list_fewshot_samples")
    return ast.literal_eval(function.body[0].value)


def test_mbpp_prompts_are_lm_evals_on_the_full_config():
    config = yaml.load((LM_EVAL_TASKS / "mbpp" / "mbpp.yaml").read_text(), Loader=_FunctionTagLoader)
    assert config["dataset_name"] == "full" and MBPP.hub(TaskConfig(name="mbpp", protocol="lm-eval")).config == "full"
    samples = lm_eval_fewshot_samples(LM_EVAL_TASKS / "mbpp" / "utils.py")
    config["fewshot_config"]["samples"] = samples  # what its !function utils.list_fewshot_samples returns
    config["metric_list"] = [{"metric": "exact_match"}]  # pass_at_1 would download code_eval; prompts only here
    task = lm_eval_task(config, {"test": str(FIXTURES / "mbpp" / "full" / "test.jsonl")})
    task.set_fewshot_seed(1234)
    theirs = [task.fewshot_context(doc, 3) for doc in task.eval_docs]
    cfg = TaskConfig(name="mbpp", protocol="lm-eval", source=str(FIXTURES / "mbpp"), num_samples=0)
    assert [MBPP.render(e, cfg) for e in MBPP.examples(cfg)] == theirs
    assert [s["task_id"] for s in samples] == [2, 3, 4] and "\r\n" in theirs[0]
    assert list(MBPP.protocol("lm-eval").stop) == config["generation_kwargs"]["until"]


class _FunctionTagLoader(yaml.SafeLoader):
    """Reads lm-eval's `!function module.name` tags as their text (the functions are not imported)."""


_FunctionTagLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def test_mbpp_programs_are_completion_newline_asserts_and_reference_code_passes():
    cfg = TaskConfig(name="mbpp", protocol="lm-eval", source=str(FIXTURES / "mbpp"), num_samples=0)
    rows = [json.loads(line) for line in (FIXTURES / "mbpp" / "full" / "test.jsonl").read_text().splitlines()]
    for example, row in zip(MBPP.examples(cfg), rows):
        cut, hit = cut_at_stop(f"{row['code']}\n[DONE]\nmore text", MBPP.stop_strings(cfg, chat=False))
        assert hit == "[DONE]"
        assert MBPP.score(example, cut).correct, example.id
    wrong = MBPP.score(MBPP.examples(cfg)[2], "def squares(numbers):\n    return numbers")
    assert wrong.correct is False and wrong.detail == "failed: AssertionError"
    fenced = MBPP.score(MBPP.examples(cfg)[2], "```python\ndef squares(n):\n    return [x * x for x in n]\n```")
    assert fenced.correct is False and "SyntaxError" in fenced.detail  # lm-eval's mbpp reads no fences


def test_math500_exemplars_and_prompt_are_minerva_math500s():
    config = yaml.load((LM_EVAL_TASKS / "minerva_math" / "minerva_math500.yaml").read_text(), Loader=_FunctionTagLoader)
    assert config["task"] == "minerva_math500" and config["dataset_path"] == "HuggingFaceH4/MATH-500"
    algebra = yaml.load((LM_EVAL_TASKS / "minerva_math" / "minerva_math_algebra.yaml").read_text(), Loader=_FunctionTagLoader)
    assert algebra["metadata"]["version"] == 3.1 and algebra["num_fewshot"] == MATH500.protocol("lm-eval").few_shot
    assert list(MATH500.protocol("lm-eval").stop) == algebra["generation_kwargs"]["until"]
    samples = lm_eval_fewshot_samples(LM_EVAL_TASKS / "minerva_math" / "utils.py")
    cfg = TaskConfig(name="math500", protocol="lm-eval", source=str(FIXTURES / "math500" / "test.jsonl"), num_samples=1)
    example = MATH500.examples(cfg)[0]
    # utils.doc_to_text is "Problem:\n" + problem + "\n\nSolution:"; exemplars add " " + solution + "\n\n"
    expected = "".join(f"Problem:\n{s['problem']}\n\nSolution: {s['solution']}\n\n" for s in samples)
    assert MATH500.render(example, cfg) == expected + f"Problem:\n{example.question}\n\nSolution:"


def test_math500_verdict_is_lm_evals_math_verify_metric():
    from math_verify import parse, verify

    disagreements = []
    for gold, completion in math_cases():
        solution = f"Working it out gives $\\boxed{{{gold}}}$."
        example = Example(id="x", question="?", answer=gold, metadata={"solution": solution}, protocol="lm-eval")
        # minerva_math/utils.py process_results: verify(gold=parse(doc["solution"]), target=parse(candidates))
        theirs = bool(verify(gold=parse(solution), target=parse(completion)))
        if MATH500.score(example, completion).correct != theirs:
            disagreements.append((gold, completion, theirs))
    assert not disagreements, disagreements[:5]


def test_ruler_scores_are_lm_evals_string_match_all():
    from lm_eval.tasks.ruler.common_utils import postprocess_pred, string_match_all

    cases = ruler_cases()
    assert len(cases) >= 50
    for task_name, completion, references in cases:
        theirs = string_match_all(postprocess_pred([completion]), [references])
        example = Example(id="x", question="?", answer=" ".join(references), protocol="ruler")
        score = get_task(task_name).score(example, completion)
        assert score.score == theirs, (task_name, completion, references)
        assert score.correct == (theirs == 1.0)
    partial = get_task("variable-tracking").score(Example(id="x", question="?", answer="AAAAA BBBBB CCCCC DDDDD"), " aaaaa, bbbbb")
    assert partial.score == 0.5 and partial.correct is False and partial.detail == "2 of 4 reference strings found"
