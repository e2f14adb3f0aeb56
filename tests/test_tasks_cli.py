"""Every benchmark task through `dlm-bench task=<name>`, offline, on the fixtures: the records carry
per-sample correctness, the extracted answer and how the prompt was made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.records import COLUMN_NAMES
from tests.conftest import CHAT_TEMPLATE, REPO, write_random_checkpoint

FIXTURES = REPO / "tests" / "fixtures"
# run -> (task, task.protocol, task.source, few-shot count the protocol uses, its stop strings)
DATASET_TASKS = {
    "gsm8k": ("gsm8k", "nemo-skills", FIXTURES / "gsm8k", 0, []),
    "gsm8k-lm-eval": ("gsm8k", "lm-eval", FIXTURES / "gsm8k", 5, ["Question:", "</s>", "<|im_end|>"]),
    "math500": ("math500", "nemo-skills", FIXTURES / "math500" / "test.jsonl", 0, []),
    "humaneval": ("humaneval", "nemo-skills", FIXTURES / "openai_humaneval", 0, []),
    "mbpp": ("mbpp", "nemo-skills", FIXTURES / "mbppplus", 0, []),
    "mbpp-lm-eval": ("mbpp", "lm-eval", FIXTURES / "mbpp", 3, ["[DONE]"]),
    "speed-bench-qualitative": ("speed-bench-qualitative", "harness", FIXTURES / "speed-bench" / "qualitative" / "test.parquet", 0, []),
    "speed-bench-throughput-1k": ("speed-bench-throughput-1k", "harness", FIXTURES / "speed-bench" / "throughput_1k" / "test.parquet", 0, []),
}
LONG_CONTEXT_TASKS = ("passkey", "niah-multikey", "variable-tracking")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A random Qwen3 with the tiny model's character tokenizer and 8192 positions: room for the
    few-shot prompts and for SPEED-Bench's 1k prompts, which are about 5K characters."""
    return write_random_checkpoint(tmp_path_factory.mktemp("checkpoint-8k"), max_positions=8192)


@pytest.fixture(scope="module")
def chat_checkpoint(tmp_path_factory) -> Path:
    """The same with a chat template: NeMo-Skills' protocol prompts through one."""
    return write_random_checkpoint(tmp_path_factory.mktemp("checkpoint-8k-chat"), max_positions=8192, chat_template=CHAT_TEMPLATE)


def launch(*args: str, cwd: Path = REPO) -> subprocess.Popen:
    """`dlm-bench` as a user runs it, started without waiting: the runs share the test's time."""
    # one thread each: seven runs share two cores
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_every_task_runs_offline_and_records_its_scoring(tmp_path, checkpoint, chat_checkpoint):
    common = [f"results_dir={tmp_path}", "task.num_samples=2", "task.max_new_tokens=8", "runner.warmup=0"]
    runs = {
        name: launch("sweep=single", f"task={task}", f"task.source={source}", f"sweep.name={name}",
                     f"model.source={chat_checkpoint if protocol == 'nemo-skills' else checkpoint}",
                     *([] if protocol == "harness" else [f"task.protocol={protocol}"]), *common)
        for name, (task, protocol, source, _, _) in DATASET_TASKS.items()
    }
    runs["long-context"] = launch("-m", f"task={','.join(LONG_CONTEXT_TASKS)}", "context=ctx1k", "sweep.name=long-context",
                                  f"model.source={checkpoint}", *common)
    for name, run in runs.items():
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, f"{name}: {stderr[-3000:]}"

    for name, (task, protocol, source, few_shot, stops) in DATASET_TASKS.items():
        df = pd.read_parquet(tmp_path / name)
        assert list(df.columns) == COLUMN_NAMES
        assert len(df) == 2 and (df["status"] == "ok").all(), df[["status", "error"]]
        assert (df["task"] == task).all() and (df["few_shot"] == few_shot).all()
        assert (df["task_protocol"] == protocol).all() and df["task_protocol_version"].notna().all()
        assert df["task_protocol_reference"].notna().all()
        assert [list(s) for s in df["stop_strings"]] == [stops, stops]
        assert (df["chat_template"] == (protocol == "nemo-skills")).all()  # NeMo-Skills prompts through the template
        assert (df["dataset_source"] == str(source)).all() and df["dataset_revision"].str.startswith("sha256:").all()
        assert df["prompt_tokens"].gt(0).all() and df["sample_id"].nunique() == 2
        if name.startswith("speed-bench"):
            assert df["correct"].isna().all() and df["score_detail"].str.startswith("not scored").all()
            assert df["reference_answer"].isna().all() and df["sample_category"].notna().all()
        else:
            # random weights answer wrongly, but every sample is scored and says what was read
            assert df["correct"].notna().all() and df["reference_answer"].notna().all()
            assert (df["score"] == df["correct"].astype(float)).all()
            assert (df["extracted_answer"].notna() | df["score_detail"].notna()).all()
        # code that ran says how it was isolated; nothing else has a level
        assert df["sandbox_level"].dropna().eq("bwrap").all() if task in ("humaneval", "mbpp") else df["sandbox_level"].isna().all()
    gsm8k = pd.read_parquet(tmp_path / "gsm8k-lm-eval")
    assert gsm8k["correct_strict"].notna().all() and gsm8k["reference_answer"].tolist() == ["3750", "-7"]
    assert pd.read_parquet(tmp_path / "gsm8k")["reference_answer"].tolist() == ["3750", "-7"]
    assert pd.read_parquet(tmp_path / "mbpp")["dataset_source"].eq(str(FIXTURES / "mbppplus")).all()

    long_context = pd.read_parquet(tmp_path / "long-context")
    assert sorted(long_context["task"].unique()) == sorted(LONG_CONTEXT_TASKS)
    assert (long_context["status"] == "ok").all() and (long_context["prompt_tokens"] == 1024).all()
    assert long_context["correct"].notna().all() and long_context["dataset_source"].eq("generated:seed=0").all()
    assert long_context["task_protocol"].eq("ruler").all() and long_context["score"].between(0, 1).all()
