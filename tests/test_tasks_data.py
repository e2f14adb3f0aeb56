"""Dataset loading: every local form an offline cluster may hold, the pinned hub path, provenance
that changes with the data, and errors that say what to set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.config import TaskConfig
from harness.tasks.base import cut_at_stop
from harness.tasks.data import DatasetError, HubDataset, load_rows
from harness.tasks.math_reasoning import GSM8K_HUB, MATH500_HUB
from harness.tasks.coding import HUMANEVAL_HUB, MBPP_HUB, MBPP_PLUS_HUB
from harness.tasks.speed_bench import REVISION as SPEED_BENCH_REVISION

ROWS = [{"question": "one?", "answer": "#### 1"}, {"question": "two?", "answer": "#### 2"}]
HUB = HubDataset("someone/dataset", "main", "test", revision="0" * 40)


def cfg(source) -> TaskConfig:
    return TaskConfig(name="gsm8k", source=str(source))


def test_every_hub_dataset_is_pinned_to_a_commit():
    from harness.tasks import REGISTRY

    hubs = [GSM8K_HUB, MATH500_HUB, HUMANEVAL_HUB, MBPP_HUB] + [REGISTRY[n].hub for n in REGISTRY if n.startswith("speed-bench")]
    for hub in hubs:
        assert len(hub.revision) == 40 and int(hub.revision, 16) >= 0, hub
    assert {h.path for h in hubs} == {"openai/gsm8k", "HuggingFaceH4/MATH-500", "openai/openai_humaneval",
                                      "google-research-datasets/mbpp", "nvidia/SPEED-Bench"}
    assert MBPP_HUB.config == "full" and GSM8K_HUB.config == "main"
    # The one exception, stated where it is defined: no commit of MBPP+ could be looked up offline.
    assert MBPP_PLUS_HUB.path == "evalplus/mbppplus" and MBPP_PLUS_HUB.revision == "main"
    assert SPEED_BENCH_REVISION == REGISTRY["speed-bench-qualitative"].hub.revision


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_a_local_file_is_read_as_the_split(tmp_path, suffix):
    path = tmp_path / f"anything{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    elif suffix == ".json":
        path.write_text(json.dumps({"data": ROWS}))
    else:
        pq.write_table(pa.Table.from_pylist(ROWS), path)
    rows, provenance = load_rows(cfg(path), HUB)
    assert rows == ROWS and provenance.source == str(path) and provenance.revision.startswith("sha256:")


def test_a_hub_snapshot_folder_is_read_by_config_and_split(tmp_path):
    for config in ("main", "socratic"):
        (tmp_path / config).mkdir()
        for split, rows in (("test", ROWS), ("train", ROWS[:1])):
            tagged = [{**r, "question": f"{config}:{r['question']}"} for r in rows]
            pq.write_table(pa.Table.from_pylist(tagged), tmp_path / config / f"{split}-00000-of-00001.parquet")
    rows, provenance = load_rows(cfg(tmp_path), HUB)
    assert [r["question"] for r in rows] == ["main:one?", "main:two?"] and provenance.split == "main/test"
    train, _ = load_rows(cfg(tmp_path), HUB, split="train")
    assert [r["question"] for r in train] == ["main:one?"]


def test_a_save_to_disk_folder_is_read_through_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    rows, _ = load_rows(cfg(tmp_path / "saved"), HUB)
    assert rows == ROWS


def test_provenance_follows_the_data(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n")
    first = load_rows(cfg(path), HUB)[1].revision
    path.write_text(json.dumps(ROWS[1]) + "\n")
    rows, provenance = load_rows(cfg(path), HUB)
    assert rows == [ROWS[1]] and provenance.revision != first  # a changed file is read again and hashed anew


def test_bad_sources_say_what_was_wrong_and_what_to_set(tmp_path):
    with pytest.raises(DatasetError, match="task.source: .*missing.jsonl does not exist"):
        load_rows(cfg(tmp_path / "missing.jsonl"), HUB)
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "validation.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    with pytest.raises(DatasetError) as info:
        load_rows(cfg(tmp_path), HUB)
    assert "no file for split 'test'" in str(info.value) and "main/validation.jsonl" in str(info.value)
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(DatasetError, match="not a data file; valid suffixes: .jsonl, .json, .parquet"):
        load_rows(cfg(notes), HUB)


def test_the_hub_path_asks_for_the_pinned_revision_and_explains_offline_failures(tmp_path):
    pytest.importorskip("datasets")
    script = textwrap.dedent("""
        from harness.config import TaskConfig
        from harness.tasks.data import DatasetError, load_rows
        from harness.tasks.math_reasoning import GSM8K_HUB
        try:
            load_rows(TaskConfig(name="gsm8k"), GSM8K_HUB)
        except DatasetError as error:
            print(error)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    message = done.stdout
    assert "could not load openai/gsm8k (config main, split test, revision e53f048856ff4f594e959d75785d2c2d37b678ee)" in message
    assert "set task.source to the local file or folder" in message


def test_cut_at_stop_takes_the_earliest_stop_string():
    assert cut_at_stop("a [DONE] b Question: c", ("Question:", "[DONE]")) == ("a ", "[DONE]")
    assert cut_at_stop("no stops here", ("Question:",)) == ("no stops here", None)
    assert cut_at_stop("anything", ()) == ("anything", None)


def test_data_errors_name_file_and_line_for_every_row_not_only_the_first(tmp_path):
    from harness.tasks import get_task

    path = tmp_path / "test.jsonl"
    lines = [json.dumps({"question": f"q{n}?", "answer": f"#### {n}"}) for n in range(1, 9)]
    lines[2] = '{"question": "three?", "answer": "#### 3"'  # line 3: the closing brace is missing
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=rf"^{path}:3: not valid JSON: Expecting ',' delimiter"):
        get_task("gsm8k").examples(cfg(path))
    lines[2] = json.dumps({"question": "three?", "answer": "#### 3"})
    lines[6] = json.dumps({"question": "seven?"})  # line 7 lacks the answer; line 1 is sound
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=rf"^{path}:7: missing column 'answer'; GSM8K rows need: question, answer"):
        get_task("gsm8k").examples(cfg(path))
    whole = tmp_path / "test.json"
    whole.write_text('[\n{"question": "a", "answer": "#### 1"},\n{"question": "b" "answer": 2}\n]')
    with pytest.raises(DatasetError, match=rf"^{whole}:3: not valid JSON"):
        load_rows(cfg(whole), HUB, columns=("question", "answer"))
    table = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "a", "answer": "1"}, {"question": "b", "answer": None}]), table)
    assert len(load_rows(cfg(table), HUB, columns=("question", "answer"))[0]) == 2  # a null is a value, not a missing column


def test_bad_rows_are_skipped_and_counted_with_on_bad_row_skip(tmp_path):
    from harness.config import ConfigError
    from harness.tasks import get_task
    from harness.tasks.columns import cell_columns

    path = tmp_path / "test.jsonl"
    path.write_text("\n".join([json.dumps(ROWS[0]), "not json", json.dumps({"question": "x"}), "[1, 2]",
                               json.dumps(ROWS[1])]) + "\n")
    skipping = TaskConfig(name="gsm8k", source=str(path), on_bad_row="skip", protocol="lm-eval", few_shot=0)
    rows, provenance = load_rows(skipping, HUB, columns=("question", "answer"))
    assert rows == ROWS and provenance.rows_skipped == 3
    task = get_task("gsm8k")
    assert [e.question for e in task.examples(skipping)] == ["one?", "two?"]
    assert cell_columns(task, skipping, None)["task_rows_skipped"] == 3  # the cell-level column every row carries
    path.write_text("not json\n")
    with pytest.raises(DatasetError, match="holds no usable rows for split 'test' \\(1 bad rows skipped\\)"):
        load_rows(skipping, HUB, columns=("question", "answer"))
    with pytest.raises(ConfigError, match="task.on_bad_row: 'ignore' is not valid; choose one of: fail, skip"):
        TaskConfig(name="gsm8k", on_bad_row="ignore")
