"""SPEED-Bench: prepared parquet files load, the public placeholder rows are refused with the way
out, and both token counts (the model's and o200k_base's) are accounted for."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harness.config import TaskConfig
from harness.tasks import REGISTRY, get_task
from harness.tasks import columns
from harness.tasks.data import DatasetError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "speed-bench"


def test_every_speed_bench_config_is_a_task():
    assert {n for n in REGISTRY if n.startswith("speed-bench-")} == {
        "speed-bench-qualitative", "speed-bench-throughput-1k", "speed-bench-throughput-2k",
        "speed-bench-throughput-8k", "speed-bench-throughput-16k", "speed-bench-throughput-32k",
    }


def test_a_prepared_parquet_loads_with_categories_and_is_not_scored():
    task = get_task("speed-bench-qualitative")
    cfg = TaskConfig(name="speed-bench-qualitative", source=str(FIXTURES / "qualitative" / "test.parquet"), num_samples=0)
    examples = task.examples(cfg)
    assert [(e.id, e.category) for e in examples] == [("q-coding-0", "coding"), ("q-math-0", "math"), ("q-writing-0", "writing")]
    assert task.render(examples[0], cfg) == "Write a Python function that returns the n-th Fibonacci number."
    single, multi = task.score(examples[0], "def fib(n): ..."), task.score(examples[2], "Leaves fall")
    assert single.correct is None and single.detail == "not scored: SPEED-Bench has no reference answers"
    assert multi.detail == "not scored: SPEED-Bench has no reference answers; first of 2 turns sent"
    provenance = task.provenance(cfg)
    assert provenance.split == "qualitative/test" and provenance.revision.startswith("sha256:")


def test_public_placeholder_rows_fail_with_the_preparation_step():
    task = get_task("speed-bench-throughput-1k")
    cfg = TaskConfig(name="speed-bench-throughput-1k", source=str(FIXTURES / "hub"))
    with pytest.raises(DatasetError) as info:
        task.examples(cfg)
    message = str(info.value)
    assert "1 of 2 SPEED-Bench throughput_1k rows (e.g. question_id t1k-low-0) still hold NVIDIA's placeholder" in message
    assert "python prepare_data.py --config throughput_1k" in message and "task.source" in message
    prepared = TaskConfig(name="speed-bench-throughput-1k", source=str(FIXTURES / "throughput_1k" / "test.parquet"))
    assert [e.category for e in task.examples(prepared)] == ["low_entropy", "high_entropy"]


def test_o200k_count_is_counted_when_loadable_and_null_with_a_reason_when_not(caplog):
    columns.o200k_encoding.cache_clear()
    with caplog.at_level(logging.WARNING, logger="harness.tasks.columns"):
        encoding = columns.o200k_encoding()
    text = "Answer now please.\n" * 3
    if encoding is None:  # offline without a cached BPE file, as on the test machines
        assert columns.o200k_count(text) is None
        assert "prompt_tokens_o200k is null" in caplog.text
        assert "TIKTOKEN_CACHE_DIR" in caplog.text or "tiktoken is not installed" in caplog.text  # the way out
    else:
        assert columns.o200k_count(text) == len(encoding.encode(text)) > 0
    assert columns.o200k_count(None) is None
