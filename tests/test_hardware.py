"""Hardware profiles: each matches its own GPU's name only; a mismatch is refused unless allowed, then recorded."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from harness.cli import CONFIG_DIR
from harness.config import HardwareConfig
from harness.hardware import name_mismatch
from tests.conftest import run_cli

# Names as NVIDIA's driver reports them (nvidia-smi --query-gpu=name).
GPU_NAMES = {
    "a100": ["NVIDIA A100-SXM4-80GB"],
    "h100": ["NVIDIA H100 80GB HBM3"],
    "h200": ["NVIDIA H200"],
    "b200": ["NVIDIA B200"],
    "gb200": ["NVIDIA GB200"],
}
OTHER_GPUS = ["NVIDIA A100-SXM4-40GB", "NVIDIA A100 80GB PCIe", "NVIDIA H100 PCIe", "NVIDIA H100 NVL",
              "NVIDIA GH200 480GB", "NVIDIA H200 NVL", "NVIDIA L40S"]


def profile(name: str) -> HardwareConfig:
    return HardwareConfig(**yaml.safe_load((CONFIG_DIR / "hardware" / f"{name}.yaml").read_text()))


@pytest.mark.parametrize("name", sorted(GPU_NAMES))
def test_each_gpu_profile_matches_its_own_gpu_and_no_other(name):
    hw = profile(name)
    assert hw.device_type == "cuda" and hw.memory_gb and hw.price_per_gpu_hour
    assert hw.slurm_partition and hw.slurm_gpus_per_node
    for gpu in GPU_NAMES[name]:
        assert name_mismatch(hw, gpu) is None
    others = [gpu for other, gpus in GPU_NAMES.items() if other != name for gpu in gpus] + OTHER_GPUS
    for gpu in others:
        assert f"expects a device matching /{hw.device_pattern}/ but detected {gpu!r}" in (name_mismatch(hw, gpu) or ""), \
            f"profile {name} would label {gpu} as {name}"


def test_the_datasheet_figures_are_the_dense_bf16_ones():
    # dense (no 2:4 sparsity) BF16 tensor throughput and HBM bandwidth per GPU
    figures = {n: (profile(n).memory_bandwidth_gbs, profile(n).bf16_tflops) for n in GPU_NAMES}
    assert figures == {"a100": (2039, 312), "h100": (3350, 989), "h200": (4800, 989), "b200": (8000, 2250),
                       "gb200": (8000, 2500)}


def test_h100_on_a_machine_without_it_is_refused_then_allowed_and_recorded(tmp_path, random_checkpoint):
    common = ["sweep=single", "hardware=h100", "runner.device=cpu", "mode=ar", f"model.source={random_checkpoint}",
              f"results_dir={tmp_path}", "task.num_samples=1", "task.max_new_tokens=4"]
    refused = run_cli(*common)
    assert refused.returncode != 0
    message = refused.stderr
    assert "hardware=h100: the profile is a cuda device but the runner uses cpu" in message
    assert "hardware.allow_mismatch=true" in message
    assert not list(tmp_path.glob("single/*.parquet"))  # refused before anything ran

    allowed = run_cli(*common, "hardware.allow_mismatch=true", "hardware.price_per_gpu_hour=1.25")
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "single")
    assert (df["status"] == "ok").all()
    row = df.iloc[0]
    assert row["hardware"] == "h100" and bool(row["hardware_mismatch_allowed"])
    assert "the profile is a cuda device but the runner uses cpu" in row["hardware_mismatch"]
    assert row["hardware_detected"] == row["env_cpu"]
    # the profile's figures travel with the row; the price is the overridden one
    assert (row["hw_memory_bandwidth_gbs"], row["hw_bf16_tflops"], row["hw_price_per_gpu_hour"]) == (3350, 989, 1.25)
    # a CPU run reads no GPU: telemetry null, timing by host clock, everything else recorded
    assert row[[c for c in df.columns if c.startswith("gpu_")]].isna().all()
    assert row["timing_method"] == "perf_counter" and row["forward_timing_method"] == "perf_counter"
    assert row["timing_warmup"] == 1 and row["timing_min_repetitions"] == 1
    # ar: the prefill reads an empty cache, decode i reads the prompt and the i tokens before it
    cache = list(row["forward_cache_tokens"])
    assert cache[0] == 0 and cache[1:] == [row["prompt_tokens"] + i for i in range(len(cache) - 1)]
    assert len(row["forward_seconds"]) == len(cache) and row["model_kv_bytes_per_token"] > 0


def test_a_sweep_on_the_wrong_machine_is_refused_before_its_first_cell(tmp_path):
    result = run_cli("-m", "hardware=h100", "mode=ar", "task=copy", "context=natural", f"results_dir={tmp_path}",
                     "sweep.name=wrong-machine")
    assert result.returncode == 2
    assert "1 problem(s) in a sweep of 1 cells (nothing was run)" in result.stderr
    assert "hardware=h100: the profile needs a CUDA GPU and none is available" in result.stderr
    assert not list(tmp_path.glob("wrong-machine/*.parquet"))
