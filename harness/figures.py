"""Every per-row figure, derived once from the raw record columns (nothing here is stored).

`derive(records)` returns the records with the columns of `ROW_FIGURES` added; the per-cell
aggregator (`harness.report.aggregate`) sums, medians and bootstraps them, and the end-of-sweep
table, summary.csv, the report and the notebook all read that aggregate. Pure pandas / numpy: no
torch, so a report runs anywhere.

Cells. Rows belong to the cell of their `cell_key`. A runner that measures several load levels
in one cell by design (the timing runner's `runner.batch_sizes`, `LOAD_PER_SAMPLE_RUNNERS`) has one
unit per batch size (`cell_id` = `<cell_key>@b<batch>`); every other cell is one unit
(`cell_id` = `cell_key`).

Batches. A reference row decoded in a batch of B sequences (`batch_size`) shared each forward with
B - 1 others: it holds 1/B of the GPUs for its E2E time (`gpu_seconds`), so 4 sequences of 10
tokens finishing together in 1.2 s give 40 tokens / (4 x 1.2 s / 4) = 33 tok/s of system throughput.
When the sequences of a batch finish at different times the batch holds the GPUs until its last
one, so this share is a lower bound of the GPU time and the throughput an upper bound.
An engine row's share of the GPUs is its share of the cell's measured duration, in proportion to
its E2E time: the shares of a cell add up to `cell_duration_s`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.contracts import ENGINE_RUNNERS, FORWARD_KINDS, LOAD_PER_SAMPLE_RUNNERS
from harness.costs import compute_floor_s, forward_flops, memory_floor_s

# name -> definition; every column `derive` adds, in the order it adds them.
ROW_FIGURES = {
    "forwards_total": "sum of forwards_<kind> over every kind: all model forwards of the row, prefill included",
    "forwards_after_prefill": "forwards_total - forwards_prefill",
    "query_tokens_total": "sum of query_tokens_<kind>: tokens the row's forwards processed",
    "tpf": "new_tokens / forwards_total (TPF, prefill included)",
    "tpf_excl_prefill": "new_tokens / forwards_after_prefill",
    "tokens_vendor": "tokens_untrimmed (what the vendor's code returns), else new_tokens",
    "vendor_tpf": "new_tokens / vendor_nfe (the vendor's nfe rule for the mode)",
    "vendor_tpf_untrimmed": "tokens_vendor / vendor_nfe (the vendor's printed TPF)",
    "query_tokens_per_forward": "query_tokens_total / forwards_total",
    "accept_sum": "sum of accept_lengths: tokens emitted by verify steps",
    "accept_steps": "number of verify steps (entries of accept_lengths)",
    "tpot_s": "(e2e_s - ttft_s) / (new_tokens - 1), rows with more than one token",
    "output_tokens_per_s": "new_tokens / e2e_s (the request's own output rate)",
    "gpu_seconds": ("GPU time the row holds: e2e_s / batch_size (a batch of B shares the GPUs); engines: "
                    "cell_duration_s x e2e_s / the cell's sum of e2e_s"),
    "seconds_per_forward": ("mean of forward_seconds over the forwards after the prefill; without per-forward "
                            "times, (e2e_s - ttft_s) / forwards_after_prefill"),
    "forward_time_s": "sum of forward_seconds",
    "roofline_memory_floor_s": ("sum over the row's forwards of (model_forward_weight_bytes + forward_cache_tokens x "
                                "model_kv_bytes_per_token) / hw_memory_bandwidth_gbs"),
    "roofline_compute_floor_s": ("sum over the row's forwards of (2 x model_block_parameters x query tokens + 4 x layers "
                                 "x heads x head_dim x query tokens x cached tokens per row) / hw_bf16_tflops"),
    "roofline_floor_s": "sum over the row's forwards of max(memory floor, compute floor): the E2E floor",
    "prefill_floor_s": "the same over the prefill forwards only: the TTFT floor",
    "forward_floor_s": "mean floor of the forwards after the prefill: the floor of seconds_per_forward",
    "tpot_floor_s": "(roofline_floor_s - prefill_floor_s) / (new_tokens - 1)",
    "roofline_ratio": "forward_time_s / roofline_floor_s (1 = at the hardware's limit)",
    "usd": "hw_price_per_gpu_hour x hw_gpus x gpu_seconds / 3600: what the row's share of the GPUs cost",
    "energy_j": ("the row's share of its cell's gpu_energy_j (in proportion to e2e_s; equal shares without it), "
                 "only when gpu_energy_region = timed"),
    "correct_pct": ("100 x score, the protocol's per-sample credit (RULER's partial credit); rows without one: "
                    "100 x correct (null when not scored)"),
    "mode_label": "mode with its decoding parameters (linear_spec+lora L=32, diffusion L=8 thr=0.9, ...)",
    "load": ("requests in flight: an engine's concurrency; the timing runner's per-row batch size; otherwise "
             "the cell's batch size (mode.batch_size)"),
    "cell_id": "the unit the report aggregates: cell_key, with @b<batch> for the timing runner's batch sizes",
}


def derive(records: pd.DataFrame) -> pd.DataFrame:
    """The records with every `ROW_FIGURES` column; a figure whose inputs are absent is NaN."""
    df = records.copy()
    for column in ("concurrency", "cell_duration_s", "gpu_energy_j", "gpu_energy_region", "hw_price_per_gpu_hour",
                   "hw_gpus", "forward_cache_tokens", "tokens_untrimmed", "accept_lengths", "itl_s", "draft_lora",
                   "block_length", "threshold", "steps", "vendor_nfe", "forwards_prefill", "correct", "timing_only",
                   "new_tokens", "ttft_s", "e2e_s", "runner", "mode", "score", *_FORWARD_INPUTS):
        if column not in df:
            df[column] = None
    num = lambda column: pd.to_numeric(df[column], errors="coerce").astype(float)  # noqa: E731
    kinds = [f"forwards_{k}" for k in FORWARD_KINDS if f"forwards_{k}" in df]
    queries = [f"query_tokens_{k}" for k in FORWARD_KINDS if f"query_tokens_{k}" in df]
    new_tokens = num("new_tokens")
    df["forwards_total"] = df[kinds].apply(pd.to_numeric, errors="coerce").sum(axis=1, min_count=1).where(lambda s: s > 0)
    df["forwards_after_prefill"] = (df["forwards_total"] - num("forwards_prefill").fillna(0)).where(lambda s: s > 0)
    df["query_tokens_total"] = df[queries].apply(pd.to_numeric, errors="coerce").sum(axis=1, min_count=1)
    vendor_nfe = num("vendor_nfe").where(lambda s: s > 0)
    df["tpf"] = new_tokens / df["forwards_total"]
    df["tpf_excl_prefill"] = new_tokens / df["forwards_after_prefill"]
    df["tokens_vendor"] = num("tokens_untrimmed").fillna(new_tokens)
    df["vendor_tpf"] = new_tokens / vendor_nfe
    df["vendor_tpf_untrimmed"] = df["tokens_vendor"] / vendor_nfe
    df["query_tokens_per_forward"] = df["query_tokens_total"] / df["forwards_total"]
    df["accept_sum"] = [float(np.sum(v)) if _has_items(v) else np.nan for v in df["accept_lengths"]]
    df["accept_steps"] = [float(len(v)) if _has_items(v) else np.nan for v in df["accept_lengths"]]
    e2e, ttft = num("e2e_s"), num("ttft_s")
    df["tpot_s"] = (e2e - ttft) / (new_tokens - 1).where(new_tokens > 1)
    df["output_tokens_per_s"] = new_tokens / e2e.where(e2e > 0)
    df["gpu_seconds"] = gpu_seconds(df, e2e)

    per_forward = [_forward_figures(r) for r in df[
        ["forward_kinds", "forward_seconds", "forward_query_tokens", "forward_cache_tokens", "batch_size",
         "model_forward_weight_bytes", "model_kv_bytes_per_token", "hw_memory_bandwidth_gbs",
         "model_block_parameters", "model_num_layers", "model_num_attention_heads", "model_head_dim",
         "hw_bf16_tflops"]].itertuples(index=False)]
    names = ["seconds_per_forward", "forward_time_s", "roofline_memory_floor_s", "roofline_compute_floor_s",
             "roofline_floor_s", "prefill_floor_s", "forward_floor_s"]
    for i, name in enumerate(names):
        df[name] = [f[i] for f in per_forward] if per_forward else np.nan
    fallback = (e2e - ttft) / df["forwards_after_prefill"]
    df["seconds_per_forward"] = df["seconds_per_forward"].astype(float).fillna(fallback)
    df["tpot_floor_s"] = (df["roofline_floor_s"] - df["prefill_floor_s"]) / (new_tokens - 1).where(new_tokens > 1)
    df["roofline_ratio"] = df["forward_time_s"] / df["roofline_floor_s"].where(df["roofline_floor_s"] > 0)
    df["usd"] = num("hw_price_per_gpu_hour") * num("hw_gpus").fillna(1) * df["gpu_seconds"] / 3600.0
    verdict = pd.Series([np.nan if v is None or pd.isna(v) else 100.0 * bool(v) for v in df["correct"]], index=df.index)
    df["correct_pct"] = (100.0 * num("score")).fillna(verdict)
    df["mode_label"] = [mode_label(*r) for r in df[["mode", "draft_lora", "block_length", "threshold", "steps"]]
                        .itertuples(index=False)]
    df["load"], df["cell_id"] = load_and_unit(df)
    df["energy_j"] = energy_shares(df, e2e)
    return df


_FORWARD_INPUTS = ("forward_kinds", "forward_seconds", "forward_query_tokens", "batch_size",
                   "model_forward_weight_bytes", "model_kv_bytes_per_token", "hw_memory_bandwidth_gbs",
                   "model_block_parameters", "model_num_layers", "model_num_attention_heads", "model_head_dim",
                   "hw_bf16_tflops")


def gpu_seconds(df: pd.DataFrame, e2e: pd.Series) -> pd.Series:
    batch = pd.to_numeric(df["batch_size"], errors="coerce").fillna(1).clip(lower=1)
    out = e2e / batch
    duration = pd.to_numeric(df["cell_duration_s"], errors="coerce")
    engine = duration.notna() & df["runner"].isin(ENGINE_RUNNERS) & e2e.notna()
    if engine.any():
        total = e2e[engine].groupby(df.loc[engine, "cell_key"]).transform("sum")
        out[engine] = duration[engine] * e2e[engine] / total.where(total > 0)
    return out


def load_and_unit(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    batch = pd.to_numeric(df["batch_size"], errors="coerce").fillna(1)
    per_sample = df["runner"].isin(LOAD_PER_SAMPLE_RUNNERS)
    cell_batch = batch.groupby(df["cell_key"]).transform("max")
    load = pd.to_numeric(df["concurrency"], errors="coerce").fillna(batch.where(per_sample, cell_batch)).astype(float)
    unit = df["cell_key"].astype(str).where(~per_sample, df["cell_key"].astype(str) + "@b" + batch.astype(int).astype(str))
    return load, unit


def energy_shares(df: pd.DataFrame, e2e: pd.Series) -> pd.Series:
    """Each ok row's share of its cell's NVML energy (the counter is read once per cell), so that
    J/token is a ratio of sums over samples. Energy over a whole cell (warm-up included,
    gpu_energy_region = cell) is not attributed: J/token stays null rather than overstated."""
    energy = pd.Series(np.nan, index=df.index)
    measured = (pd.to_numeric(df["gpu_energy_j"], errors="coerce").notna() & (df["gpu_energy_region"] == "timed")
                & (df["status"] == "ok"))
    # the counter is read once per job: each shard of a sharded cell has its own reading
    job = df["shard"].fillna("") if "shard" in df else pd.Series("", index=df.index)
    for _, cell in df[measured].groupby([df.loc[measured, "cell_key"], job[measured]], sort=False):
        weights = e2e[cell.index]
        if weights.isna().any() or weights.sum() <= 0:
            weights = pd.Series(1.0, index=cell.index)
        energy[cell.index] = float(cell["gpu_energy_j"].iloc[0]) * weights / weights.sum()
    return energy


def mode_label(mode, draft_lora, block_length, threshold, steps) -> str:
    """ar / diffusion L=32 thr=0.9 / linear_spec+lora L=32: the decoding configuration in one word."""
    label = str(mode) + ("+lora" if isinstance(draft_lora, str) and draft_lora else "")
    if pd.notna(block_length):
        label += f" L={int(block_length)}"
    if pd.notna(threshold):
        label += f" thr={threshold:g}"
    if pd.notna(steps):
        label += f" steps={int(steps)}"
    return label


def _forward_figures(row) -> tuple[float, ...]:
    """(seconds per forward after the prefill, forward time, memory floor, compute floor, floor,
    prefill floor, mean floor after the prefill) of one row's per-forward lists."""
    (kinds, seconds, queries, caches, batch, weight_bytes, kv_bytes, bandwidth, block_params, layers, heads,
     head_dim, tflops) = row
    nan = math.nan
    decode_seconds = nan
    time_total = nan
    if _has_items(seconds):
        time_total = float(np.sum(seconds))
        if _has_items(kinds) and len(kinds) == len(seconds):
            after = [s for k, s in zip(kinds, seconds) if k != "prefill"]
            decode_seconds = float(np.mean(after)) if after else nan
    if not (_has_items(queries) and _has_items(caches)) or any(_missing(v) for v in (weight_bytes, kv_bytes, bandwidth)):
        return decode_seconds, time_total, nan, nan, nan, nan, nan
    memory = np.array([memory_floor_s(weight_bytes, kv_bytes, c, bandwidth) for c in caches])
    if any(_missing(v) for v in (block_params, layers, heads, head_dim, tflops)):
        compute = np.full(memory.shape, nan)
        floor = memory
    else:
        rows = int(batch) if not _missing(batch) else 1
        compute = np.array([compute_floor_s(forward_flops(block_params, q, c, rows, layers, heads, head_dim), tflops)
                            for q, c in zip(queries, caches)])
        floor = np.maximum(memory, compute)
    prefill = np.array([k == "prefill" for k in kinds]) if _has_items(kinds) and len(kinds) == len(floor) else np.zeros(len(floor), bool)
    after = floor[~prefill]
    return (decode_seconds, time_total, float(memory.sum()), float(np.sum(compute)), float(floor.sum()),
            float(floor[prefill].sum()), float(after.mean()) if after.size else nan)


def _has_items(values) -> bool:
    return values is not None and not (isinstance(values, float) and np.isnan(values)) and len(values) > 0


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
