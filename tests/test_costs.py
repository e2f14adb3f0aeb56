"""Roofline, cost and energy figures from known inputs; the shipped 8B shapes against their model cards."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from transformers import Ministral3ForCausalLM, Qwen3ForCausalLM

from harness.costs import (
    compute_floor_s,
    forward_flops,
    joules_per_token,
    kv_bytes_per_token,
    memory_floor_s,
    model_shape,
    roofline_ratio,
    usd_per_million_tokens,
)
from harness.figures import derive
from harness.models import BUILTIN_MODELS
from reference_decoders.loading import detect_family, read_checkpoint_config, transformers_config


def test_kv_bytes_per_token_of_qwen3_8b():
    # 2 (K, V) x 36 layers x 8 KV heads x 128 x 2 bytes (bf16): 144 KiB per token, 4.5 GiB at 32K
    assert kv_bytes_per_token(36, 8, 128, 2) == 147_456
    assert kv_bytes_per_token(36, 8, 128, 2) * 32_768 == 4.5 * 2**30


def test_memory_floor_reads_weights_and_the_cache_once():
    # 16 GB of weights at 2,000 GB/s: 8 ms; plus 10,000 cached tokens x 100 kB = 1 GB more: 8.5 ms
    assert memory_floor_s(16e9, 100_000, 0, 2000) == pytest.approx(8e-3)
    assert memory_floor_s(16e9, 100_000, 10_000, 2000) == pytest.approx(8.5e-3)


def test_compute_floor_counts_matmuls_and_attention_to_the_cache():
    # 2 x 1e9 params x 100 queries = 2e11; attention 4 x 10 layers x 10 heads x 100 dim x 100 queries x 1,000 cached
    flops = forward_flops(block_parameters=1e9, query_tokens=100, cache_tokens=1_000, batch_rows=1,
                          num_layers=10, num_heads=10, head_dim=100)
    assert flops == pytest.approx(2e11 + 4e9)
    assert compute_floor_s(flops, tflops=100) == pytest.approx(2.04e-3)
    # two rows of 50 queries, each over its own 500 cached tokens: half the attention pairs
    assert forward_flops(1e9, 100, 1_000, 2, 10, 10, 100) == pytest.approx(2e11 + 2e9)


def test_cost_and_energy_per_token():
    # $2.50 per GPU-hour at 100 tokens/s: 360,000 tokens an hour, $6.94 per million
    assert usd_per_million_tokens(2.5, 1, 100) == pytest.approx(2.5 / 0.36)
    assert usd_per_million_tokens(2.5, 4, 100) == pytest.approx(4 * 2.5 / 0.36)
    assert math.isnan(usd_per_million_tokens(2.5, 1, 0))
    assert joules_per_token(500.0, 200) == 2.5
    assert math.isnan(joules_per_token(500.0, 0))
    assert roofline_ratio(0.03, 0.01) == pytest.approx(3.0)


def _row(**overrides) -> dict:
    row = {
        "cell_key": "a", "status": "ok", "batch_size": 1, "new_tokens": 10, "e2e_s": 0.5,
        "forward_seconds": [0.010, 0.020], "forward_query_tokens": [100, 1], "forward_cache_tokens": [0, 100],
        "forward_kinds": ["prefill", "decode"],
        "forwards_prefill": 1, "forwards_decode": 1,
        "model_forward_weight_bytes": 2e9, "model_kv_bytes_per_token": 1e5, "model_block_parameters": 1e9,
        "model_num_layers": 10, "model_num_attention_heads": 10, "model_head_dim": 100,
        "hw_memory_bandwidth_gbs": 1000.0, "hw_bf16_tflops": 100.0, "hw_price_per_gpu_hour": 3.6, "hw_gpus": 1,
        "gpu_energy_j": 40.0, "gpu_energy_region": "timed",
    }
    return {**row, **overrides}


def test_derive_computes_floors_cost_and_energy_from_each_rows_own_columns():
    df = derive(pd.DataFrame([_row(), _row(batch_size=2, new_tokens=30)]))
    first = df.iloc[0]
    # forward 1: memory (2e9 + 0) / 1e12 = 2 ms; compute 2e11 / 1e14 = 2 ms -> 2 ms
    # forward 2: memory (2e9 + 1e7) / 1e12 = 2.01 ms; compute (2e9 + 4e4 x 100) / 1e14 = 0.02004 ms -> 2.01 ms
    assert first["roofline_memory_floor_s"] == pytest.approx(4.01e-3)
    assert first["roofline_compute_floor_s"] == pytest.approx(2e-3 + 2.004e-5)
    assert first["roofline_floor_s"] == pytest.approx(4.01e-3)
    assert first["prefill_floor_s"] == pytest.approx(2e-3) and first["forward_floor_s"] == pytest.approx(2.01e-3)
    assert first["forward_time_s"] == pytest.approx(0.030)
    assert first["roofline_ratio"] == pytest.approx(0.030 / 4.01e-3)
    # $3.60 per hour = $0.001 per second; 10 tokens in 0.5 s: $0.0005, $50 per million tokens
    assert first["usd"] == pytest.approx(0.0005) and first["usd"] / 10 * 1e6 == pytest.approx(50.0)
    # batch 2: the row holds half the GPU for its 0.5 s: 0.25 GPU-s, $0.00025 for 30 tokens -> $8.33 per million
    assert df.iloc[1]["gpu_seconds"] == pytest.approx(0.25)
    assert df.iloc[1]["usd"] / 30 * 1e6 == pytest.approx(1e6 * 0.001 / 120)
    # the cell's 40 J shared by E2E time (equal here): 20 J each, 40 J over the cell's 40 tokens
    assert (df["energy_j"] == 20.0).all() and df["energy_j"].sum() / df["new_tokens"].sum() == 1.0
    timing = derive(pd.DataFrame([_row(new_tokens=None, e2e_s=None)] * 4))
    assert (timing["energy_j"] == 10.0).all()  # no times: equal shares of the cell's 40 J


def test_derive_leaves_figures_null_without_their_inputs():
    df = derive(pd.DataFrame([_row(hw_memory_bandwidth_gbs=None, hw_price_per_gpu_hour=None, gpu_energy_j=None),
                              _row(cell_key="b", gpu_energy_region="cell")]))
    assert df[["roofline_floor_s", "roofline_ratio", "usd", "energy_j"]].iloc[0].isna().all()
    assert math.isnan(df.iloc[1]["energy_j"])  # energy of the whole cell (warm-up too) is not per token
    assert not math.isnan(df.iloc[1]["roofline_ratio"])


@pytest.mark.parametrize(
    "builtin,model_cls,parameters,block_parameters,kv_bytes",
    [
        # Qwen3-8B model card: 8.2B parameters, 6.95B non-embedding
        ("qwen3-8b-shapes", Qwen3ForCausalLM, 8_190_735_360, 6_946_071_552, 147_456),
        # Nemotron-Labs-Diffusion-8B: ~8.49B parameters with its untied head
        ("nemotron-labs-diffusion-8b-shapes", Ministral3ForCausalLM, 8_489_553_920, 7_415_808_000, 139_264),
    ],
)
def test_shipped_8b_shapes_build_the_published_models(builtin, model_cls, parameters, block_parameters, kv_bytes):
    raw = read_checkpoint_config(str(BUILTIN_MODELS[builtin]))
    config = transformers_config(raw, detect_family(raw))
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = model_cls._from_config(config, dtype=torch.bfloat16)
    assert sum(p.numel() for p in model.parameters()) == parameters
    shape = model_shape(model)
    assert shape.block_parameters == block_parameters
    assert shape.kv_bytes_per_token == kv_bytes
    embedding = config.vocab_size * config.hidden_size
    assert shape.forward_weight_bytes == 2 * (parameters - embedding)  # bf16, the input table is not read whole
