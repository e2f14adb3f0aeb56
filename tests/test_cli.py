"""`dlm-bench` end to end, in a fresh process, as a user runs it."""

from __future__ import annotations

import pandas as pd

from harness.records import COLUMN_NAMES, SCHEMA_VERSION
from tests.conftest import run_cli


def test_sweep_writes_one_record_set_per_cell(tmp_path, random_checkpoint):
    result = run_cli("-m", "mode=ar,diffusion", "context=natural,ctx128", "task=copy", "sweep.name=product",
                     f"model.source={random_checkpoint}", f"results_dir={tmp_path}", "task.num_samples=3")
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "product"
    assert len(list(folder.glob("*.parquet"))) == 4
    df = pd.read_parquet(folder)
    assert list(df.columns) == COLUMN_NAMES
    assert set(df["schema_version"]) == {SCHEMA_VERSION}
    cells = df.groupby(["mode", "context"]).size()
    assert cells.to_dict() == {("ar", "ctx128"): 3, ("ar", "natural"): 3, ("diffusion", "ctx128"): 3, ("diffusion", "natural"): 3}
    assert (df.loc[df["context"] == "ctx128", "prompt_tokens"] == 128).all()
    assert (df["status"] == "ok").all() and df["env_python"].notna().all() and df["env_torch"].notna().all()
    assert (df["forwards_prefill"] == 1).all()
    assert (df.loc[df["mode"] == "diffusion", "block_length"] == 4).all()  # resolved from the checkpoint's block_size
    assert "dlm-bench summary" in result.stdout and "How each column is counted" in result.stdout
    assert (folder / "_report" / "report.md").exists()


def test_a_combination_that_cannot_run_is_skipped_with_its_reason(tmp_path):
    # Qwen3-8B in diffusion mode: recorded as skipped before anything is loaded or downloaded.
    result = run_cli("sweep=single", "model=qwen3-8b", "mode=diffusion", f"results_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "single")
    assert df["status"].tolist() == ["skipped"]
    assert "was trained for modes ['ar']" in df["error"].iloc[0]


def test_the_embedded_default_runs_every_mode_of_the_shipped_model(tmp_path):
    """`dlm-bench` with no arguments (results redirected): the README's first command."""
    result = run_cli(f"results_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "embedded")
    assert (df["status"] == "ok").all() and (df["model"] == "tiny-dlm").all()
    cells = df.groupby(["mode", "context", "task"]).size()
    assert len(cells) == 4 * 2 * 2
    assert set(df["mode"]) == {"ar", "diffusion", "linear_spec", "quadratic_spec"}
    assert set(df["context"]) == {"natural", "ctx128"}
    # The trained model shows the phenomenon: several tokens per forward, lossless speculation.
    copy = df[(df["task"] == "copy") & (df["context"] == "natural") & (df["repetition"] == 0)]
    forwards = copy.filter(like="forwards_").sum(axis=1)
    tpf = copy.assign(f=forwards).groupby("mode").apply(lambda g: g["new_tokens"].sum() / g["f"].sum(), include_groups=False)
    assert tpf["ar"] == 1.0 and tpf["diffusion"] > 2 and tpf["quadratic_spec"] > 2
    by_sample = copy.set_index(["mode", "sample_id"])["output_token_ids"].map(tuple)
    assert (by_sample["linear_spec"] == by_sample["ar"]).all() and (by_sample["quadratic_spec"] == by_sample["ar"]).all()
    assert "dlm-bench summary" in result.stdout and (tmp_path / "embedded" / "_report" / "report.html").exists()
