"""Timing-only cells: each mode's forward shapes over a real KV cache, one record per timed forward."""

from __future__ import annotations

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from harness.cli import CONFIG_DIR
from harness.config import ConfigError, register_configs, to_bench_config
from harness.execute import run_cell
from harness.figures import derive
from runners.timing import step_shapes

register_configs()


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return to_bench_config(compose(config_name="config", overrides=list(overrides)))


def test_each_mode_times_the_forwards_of_one_of_its_steps():
    shape = lambda s: (s.kind, s.query_length, s.batch_size)  # noqa: E731
    assert [shape(s) for s in step_shapes("ar", None, [1, 4], 0)] == [("decode", 1, 1), ("decode", 1, 4)]
    assert [shape(s) for s in step_shapes("diffusion", 8, [1], 0)] == [("denoise", 8, 1), ("commit", 8, 1)]
    assert [shape(s) for s in step_shapes("linear_spec", 32, [1], 0)] == [("draft", 32, 1), ("verify", 32, 1)]
    assert [shape(s) for s in step_shapes("quadratic_spec", 4, [2], 0)] == [("quadratic", 20, 2)]


def test_a_timing_cell_records_every_timed_forward_with_its_shape(tmp_path, random_checkpoint):
    bench = composed("sweep=single", "runner=timing", "mode=linear_spec", "mode.block_length=4",
                     f"model.source={random_checkpoint}", "model.random_weights=true", "context.input_tokens=16",
                     "runner.batch_sizes=[1,2]", "runner.warmup=1", "runner.min_repetitions=3", "runner.min_duration_s=0",
                     "hardware.memory_bandwidth_gbs=10", "hardware.bf16_tflops=0.5", f"results_dir={tmp_path}")
    summary = run_cell(bench)
    assert summary["status"] == "ok", summary
    df = pd.read_parquet(tmp_path / "single")
    assert (df["status"] == "ok").all() and df["timing_only"].all()
    assert df.groupby("sample_id").size().to_dict() == {"draft-q4-b1": 3, "verify-q4-b1": 3, "draft-q4-b2": 3, "verify-q4-b2": 3}
    b2 = df[df["sample_id"] == "verify-q4-b2"].iloc[0]
    assert list(b2["forward_kinds"]) == ["verify"] and b2["batch_size"] == 2
    assert list(b2["forward_query_tokens"]) == [8] and list(b2["forward_cache_tokens"]) == [32]  # 2 rows x 16 cached
    assert b2["forwards_verify"] == 1 and b2["query_tokens_verify"] == 8 and b2["prompt_tokens"] == 16
    assert (df["forward_seconds"].map(len) == 1).all() and (df["forward_seconds"].map(lambda s: s[0]) > 0).all()
    assert (df["forward_timing_method"] == "perf_counter").all()
    assert df["new_tokens"].isna().all() and df["correct"].isna().all()
    # no tokens: TPF and accuracy are null; the forward's cost is what the cell measures
    derived = derive(df)
    assert derived["tpf"].isna().all()
    assert (derived["roofline_ratio"] > 0).all() and derived["roofline_floor_s"].notna().all()
    # a wider batch reads more cache: its memory floor is higher
    floors = derived.groupby("sample_id")["roofline_memory_floor_s"].first()
    assert floors["verify-q4-b2"] > floors["verify-q4-b1"]


def test_quadratic_forwards_and_an_empty_cache(tmp_path, random_checkpoint):
    bench = composed("sweep=single", "runner=timing", "mode=quadratic_spec", "mode.block_length=3",
                     f"model.source={random_checkpoint}", "model.random_weights=true", "context=natural",
                     "runner.warmup=0", "runner.min_repetitions=2", "runner.min_duration_s=0", f"results_dir={tmp_path}")
    assert run_cell(bench)["status"] == "ok"
    df = pd.read_parquet(tmp_path / "single")
    assert df["sample_id"].tolist() == ["quadratic-q12-b1"] * 2
    assert df["forward_query_tokens"].map(list).tolist() == [[12], [12]]
    assert df["forward_cache_tokens"].map(list).tolist() == [[0], [0]]


def test_bad_timing_settings_are_named():
    with pytest.raises(ConfigError, match=r"runner.batch_sizes: list one or more batch sizes >= 1"):
        composed("runner=timing", "runner.batch_sizes=[0]")
    with pytest.raises(ConfigError, match=r"runner.max_repetitions: must be >= min_repetitions"):
        composed("runner=timing", "runner.min_repetitions=5", "runner.max_repetitions=2")
