"""One derivation of every figure: cells by cell_key, batched throughput and cost, floors, pairing,
and the torch-free report. Each expected value is worked out by hand in the test."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from harness.figures import derive
from harness.records import BASELINE_MAY_DIFFER, CELL_IDENTITY, PAIRING_KEYS
from harness.report.aggregate import Bootstrap, aggregate
from harness.store import read_results
from harness.summary import format_summary, summary_table
from tests.conftest import REPO
from tests.synthetic_records import base_row, sample_row, write_cell

BOOT = Bootstrap(resamples=500, seed=0)


def ar_rows(n: int, e2e=lambda i: 1.0, correct=lambda i: True, tokens: int = 10, **cell):
    row = base_row(mode="ar", **cell)
    return [sample_row(row, i, new_tokens=tokens, forwards={"prefill": 1, "decode": tokens - 1}, e2e_s=e2e(i),
                       ttft_s=0.1, correct=correct(i)) for i in range(n)]


def test_cells_differing_only_in_batch_size_stay_apart(tmp_path):
    # Before: one row with n = 6 and an E2E neither cell had.
    write_cell(tmp_path, "b1", ar_rows(3, e2e=lambda i: 1.0, batch_size=1))
    write_cell(tmp_path, "b4", ar_rows(3, e2e=lambda i: 3.0, batch_size=4))
    cells = aggregate(read_results(tmp_path), BOOT).cells.set_index("batch_size")
    assert len(cells) == 2 and (cells["samples"] == 3).all()
    assert cells.loc[1, "e2e_p50"] == pytest.approx(1000.0) and cells.loc[4, "e2e_p50"] == pytest.approx(3000.0)
    # A batch of 4 is 4 requests in flight; each row holds a quarter of the GPU for its 3 s.
    assert cells.loc[4, "concurrency"] == 4 and cells.loc[4, "tok_s_system"] == pytest.approx(30 / (3 * 3.0 / 4))


def test_generation_length_seed_and_sample_count_in_one_folder_are_four_cells(tmp_path):
    # Before: one row, n = 9, accuracy 0.778, and dlm-bench-validate called the folder sound.
    write_cell(tmp_path, "a", ar_rows(2, correct=lambda i: True, max_new_tokens=24, seed=0))
    write_cell(tmp_path, "b", ar_rows(2, correct=lambda i: i == 0, max_new_tokens=64, seed=0))
    write_cell(tmp_path, "c", ar_rows(2, correct=lambda i: False, max_new_tokens=24, seed=1))
    write_cell(tmp_path, "d", ar_rows(3, correct=lambda i: i < 2, max_new_tokens=24, seed=0))  # task.num_samples=3
    ag = aggregate(read_results(tmp_path), BOOT)
    cells = ag.cells.set_index("cell_key")
    assert len(cells) == 4
    assert cells["samples"].to_dict() == {"a": 2, "b": 2, "c": 2, "d": 3}
    assert cells["acc"].to_dict() == pytest.approx({"a": 100.0, "b": 50.0, "c": 0.0, "d": 200 / 3})
    summary = summary_table(ag.cells)
    assert len(summary) == 4 and {"max_new_tokens", "seed"} <= set(summary.columns)  # what tells them apart
    text = format_summary(summary)
    assert "max_new_tokens" in text and "seed" in text
    # The report's tables name the setting that tells them apart, too.
    from harness.report import headline_table

    # (a and d differ in task.num_samples, which no column records: their n tells them apart.)
    assert sorted(headline_table(ag)["setting"]) == ["seed=0 max_new_tokens=24", "seed=0 max_new_tokens=24",
                                                     "seed=0 max_new_tokens=64", "seed=1 max_new_tokens=24"]


def test_batched_reference_rows_hold_a_share_of_the_gpu_for_throughput_and_cost(tmp_path):
    # 4 sequences of 10 tokens decoded together, all finishing at 1.2 s, on a $2/GPU-hour GPU:
    # 40 tokens / (4 x 1.2 s / 4) = 33.3 tok/s; $2 / (33.3 x 3600) x 1e6 = 16.7 $ per 1M tokens
    # (the report used to say 8.33 tok/s and 66.7 $).
    write_cell(tmp_path, "batch", ar_rows(4, e2e=lambda i: 1.2, batch_size=4, hw_price_per_gpu_hour=2.0, hw_gpus=1))
    cell = aggregate(read_results(tmp_path), BOOT).cells.iloc[0]
    assert cell["tok_s_system"] == pytest.approx(40 / 1.2)
    assert cell["usd_per_mtok"] == pytest.approx(2.0 / (40 / 1.2 * 3600) * 1e6)
    assert cell["usd_per_mtok"] == pytest.approx(16.667, abs=1e-3)
    # Per request, each sequence still produced 10 tokens in 1.2 s.
    assert cell["tok_s_request"] == pytest.approx(10 / 1.2)


def test_every_time_has_its_roofline_floor_beside_it(tmp_path):
    # A 1 GB model on a 1000 GB/s profile: every forward moves at least 1 GB, 1 ms (no KV, no compute
    # figures: the memory floor alone). 10 forwards: E2E floor 10 ms; prefill (TTFT) floor 1 ms;
    # a forward after the prefill 1 ms; TPOT floor (10 - 1) / 9 = 1 ms.
    row = base_row(mode="ar", model_forward_weight_bytes=1_000_000_000, model_kv_bytes_per_token=0,
                   hw_memory_bandwidth_gbs=1000.0)
    kinds = ["prefill"] + ["decode"] * 9
    rows = [sample_row(row, i, new_tokens=10, forwards={"prefill": 1, "decode": 9}, e2e_s=0.040, ttft_s=0.004,
                       correct=True, forward_kinds=kinds, forward_query_tokens=[20] + [1] * 9,
                       forward_cache_tokens=[0] + list(range(20, 29)), forward_seconds=[0.004] + [0.004] * 9)
            for i in range(3)]
    write_cell(tmp_path, "floor", rows)
    cell = aggregate(read_results(tmp_path), BOOT).cells.iloc[0]
    assert cell["e2e_floor"] == pytest.approx(10.0) and cell["e2e_x_floor"] == pytest.approx(4.0)
    assert cell["ttft_floor"] == pytest.approx(1.0) and cell["ttft_x_floor"] == pytest.approx(4.0)
    assert cell["ms_per_forward_floor"] == pytest.approx(1.0) and cell["ms_per_forward_x_floor"] == pytest.approx(4.0)
    assert cell["tpot_floor"] == pytest.approx(1.0) and cell["tpot_x_floor"] == pytest.approx((40 - 4) / 9 / 1.0)
    assert cell["roofline_ratio"] == pytest.approx(4.0)


def test_a_baseline_pairs_only_with_cells_that_agree_on_every_identity_column(tmp_path):
    spec = base_row(mode="linear_spec", block_length=8)
    rows = [sample_row(spec, i, new_tokens=10, forwards={"prefill": 1, "draft": 3, "verify": 3}, e2e_s=0.5,
                       ttft_s=0.1, correct=True) for i in range(4)]
    write_cell(tmp_path, "base", ar_rows(4))
    write_cell(tmp_path, "spec", rows)
    assert len(aggregate(read_results(tmp_path), BOOT).comparisons) == 1
    # The same cell on another task version (the same holds for a task protocol, a data revision,
    # a seed or a generation limit: every CELL_IDENTITY column outside BASELINE_MAY_DIFFER).
    write_cell(tmp_path, "spec", [{**r, "task_version": "2"} for r in rows])
    assert aggregate(read_results(tmp_path), BOOT).comparisons.empty
    assert "task_version" in PAIRING_KEYS and set(PAIRING_KEYS) == set(CELL_IDENTITY) - set(BASELINE_MAY_DIFFER)


def test_the_timing_runner_has_one_unit_per_batch_size(tmp_path):
    row = base_row(runner="timing", mode="ar", timing_only=True)
    rows = [{**sample_row(row, i, new_tokens=None, forwards={"decode": 1}, e2e_s=None, ttft_s=None, correct=None,
                          forward_kinds=["decode"], forward_seconds=[0.001 * b]), "batch_size": b, "sample_id": f"decode-b{b}"}
            for i, b in enumerate((1, 8, 1, 8))]
    rows[2]["repetition"] = rows[3]["repetition"] = 1
    rows[2]["sample_id"], rows[3]["sample_id"] = "decode-b1", "decode-b8"
    write_cell(tmp_path, "timing", rows)
    cells = aggregate(read_results(tmp_path), BOOT).cells.set_index("concurrency")
    assert sorted(cells.index) == [1, 8]
    assert cells.loc[8, "ms_per_forward"] == pytest.approx(8.0) and cells.loc[1, "ms_per_forward"] == pytest.approx(1.0)


def test_derive_needs_nothing_beyond_the_rows():
    import pandas as pd

    df = derive(pd.DataFrame([sample_row(base_row(mode="ar", cell_key="x"), 0, new_tokens=5, forwards={"prefill": 1, "decode": 4},
                                         e2e_s=0.5, ttft_s=0.1, correct=True)]))
    row = df.iloc[0]
    assert (row["tpf"], row["forwards_total"], row["tpot_s"]) == pytest.approx((1.0, 5, 0.1))
    assert row["gpu_seconds"] == pytest.approx(0.5) and np.isnan(row["usd"]) and np.isnan(row["roofline_floor_s"])


def test_the_report_store_and_validate_import_no_torch():
    code = ("import sys; import harness.report, harness.report.aggregate, harness.report.claims, harness.store, "
            "harness.validate, harness.summary, harness.contracts; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stdout + run.stderr
