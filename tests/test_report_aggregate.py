"""The report's aggregates: per-sample collapse, ratios of sums, bootstrap intervals, comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from harness.costs import joules_per_token, usd_per_million_tokens
from harness.report.aggregate import Bootstrap, aggregate
from harness.stats import paired_difference, percentile, pooled_percentiles, proportion
from harness.store import read_results
from harness.summary import summary_table
from tests.synthetic_records import base_row, sample_row, write_cell

N = 20
BOOT = Bootstrap(resamples=1000, seed=0)


def ar_cell(model="qwen3-8b", n=N, correct=lambda i: i < 12, e2e=lambda i: 2.0 + 0.01 * i, **cell):
    row = base_row(model=model, mode="ar", **cell)
    return [sample_row(row, i, new_tokens=256, forwards={"prefill": 1, "decode": 255}, vendor_nfe=256,
                       e2e_s=e2e(i), ttft_s=0.05, correct=correct(i)) for i in range(n)]


def rounds(i: int) -> int:
    return 19 + i % 5


def spec_cell(n=N, correct=lambda i: i < 12, e2e=lambda i: 0.5 + 0.01 * i, **cell):
    """linear_spec + LoRA at block 32: a draft and a verify pass per round, 255 tokens after the prefill's."""
    row = base_row(model="nemotron-labs-diffusion-8b", model_family="nemotron_labs_diffusion", mode="linear_spec",
                   block_length=32, draft_lora="linear_spec_lora", draft_adapter_active=True, **cell)
    out = []
    for i in range(n):
        r = rounds(i)
        accept = [255 // r] * r
        accept[-1] += 255 - sum(accept)
        out.append(sample_row(row, i, new_tokens=256, forwards={"prefill": 1, "draft": r, "verify": r},
                              vendor_nfe=1 + 2 * r, tokens_untrimmed=256 + 31 - (i % 8), accept_lengths=accept,
                              e2e_s=e2e(i), ttft_s=0.05, correct=correct(i)))
    return out


@pytest.fixture
def folder(tmp_path):
    write_cell(tmp_path, "qwen", ar_cell())
    write_cell(tmp_path, "spec", spec_cell())
    return tmp_path


def by_mode(ag, mode):
    cells = ag.cells[ag.cells["mode"] == mode]
    assert len(cells) == 1
    return cells.iloc[0]


def test_tpf_rules_are_ratios_of_sums_over_samples_with_intervals_around_them(folder):
    ag = aggregate(read_results(folder), BOOT)
    spec = by_mode(ag, "linear_spec")
    r = np.array([rounds(i) for i in range(N)])
    expected = {
        "tpf": 256 * N / (1 + 2 * r).sum(),
        "tpf_excl_prefill": 256 * N / (2 * r).sum(),
        "vendor_tpf": 256 * N / (1 + 2 * r).sum(),
        "vendor_tpf_untrimmed": sum(256 + 31 - i % 8 for i in range(N)) / (1 + 2 * r).sum(),
        "accept_length": 255 * N / r.sum(),
    }
    per_sample_tpf = 256 / (1 + 2 * r)
    for name, value in expected.items():
        assert spec[name] == pytest.approx(value), name
        assert spec[f"{name}_lo"] < value < spec[f"{name}_hi"], name
    # A resampled ratio of sums can never leave the range of the per-sample ratios.
    assert per_sample_tpf.min() <= spec["tpf_lo"] and spec["tpf_hi"] <= per_sample_tpf.max()
    qwen = by_mode(ag, "ar")
    assert (qwen["tpf"], qwen["tpf_lo"], qwen["tpf_hi"]) == (1.0, 1.0, 1.0)  # constant: a zero-width interval
    assert qwen["tpf_excl_prefill"] == pytest.approx(256 / 255)
    assert spec["acc"] == pytest.approx(60.0) and spec["samples"] == N


def wilson(k, n, z=1.959963984540054):
    """The Wilson score interval, written out: (p + z^2/2n +/- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    p = k / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_the_accuracy_interval_is_wilson_and_does_not_collapse_at_100_percent():
    est = proportion(np.array([1.0] * 240 + [0.0] * 160), BOOT)  # 60% of 400
    assert (est.value, est.low, est.high) == pytest.approx((60.0, *(100 * x for x in wilson(240, 400))))
    # 8 of 8 correct: the percentile bootstrap gave [100, 100]; Wilson gives [67.6, 100].
    every = proportion(np.ones(8), BOOT)
    assert every.low == pytest.approx(67.559, abs=1e-3) and every.high == pytest.approx(100.0)
    assert every.low == pytest.approx(100 * wilson(8, 8)[0]) and not every.degenerate


def test_a_paired_accuracy_difference_has_a_width_even_when_every_pair_agrees():
    # No discordant pair in 8: the difference is 0, but 8 pairs cannot rule out a rate of
    # discordance up to 1 - 0.0125^(1/8) = 42.2% either way (Clopper-Pearson at 97.5%).
    est = paired_difference(np.ones(8), np.ones(8), BOOT)
    bound = 100 * (1 - 0.0125 ** (1 / 8))
    assert (est.value, est.low, est.high) == pytest.approx((0.0, -bound, bound))
    assert est.p_value == 1.0 and not est.degenerate
    # 1000 agreeing pairs bound it to +/- 0.44 points: enough to confirm "within 1 point".
    big = paired_difference(np.ones(1000), np.ones(1000), BOOT)
    assert big.high == pytest.approx(100 * (1 - 0.0125 ** (1 / 1000))) and big.high < 0.45
    # McNemar's exact test on 1 vs 9 discordant pairs: 2 x P(X <= 1), X ~ Binomial(10, 1/2) = 22/1024.
    a = np.array([1] * 1 + [0] * 9 + [1] * 10, dtype=float)
    b = np.array([0] * 1 + [1] * 9 + [1] * 10, dtype=float)
    assert paired_difference(a, b, BOOT).p_value == pytest.approx(22 / 1024)
    assert paired_difference(a, b, BOOT).value == pytest.approx(-40.0)


def test_bootstrap_is_seeded(folder):
    records = read_results(folder)
    first, again = aggregate(records, BOOT), aggregate(records, BOOT)
    other = aggregate(records, Bootstrap(resamples=1000, seed=7))
    columns = ["tpf_lo", "tpf_hi", "tok_s_system_lo", "tok_s_system_hi"]
    assert first.cells[columns].equals(again.cells[columns])
    assert not first.cells[columns].equals(other.cells[columns])


def test_a_single_sample_has_no_interval(tmp_path):
    write_cell(tmp_path, "one", ar_cell(n=1))
    cell = aggregate(read_results(tmp_path), BOOT).cells.iloc[0]
    assert cell["tpf"] == 1.0 and np.isnan(cell["tpf_lo"]) and np.isnan(cell["tpf_hi"])


def test_repetitions_collapse_to_one_value_per_sample(tmp_path):
    cell = base_row(mode="ar")
    rows = []
    for i in range(4):
        for rep, (e2e, correct) in enumerate([(1.0, True), (1.1, True), (5.0, False)]):
            rows.append(sample_row(cell, i, repetition=rep, new_tokens=10, forwards={"prefill": 1, "decode": 9},
                                   e2e_s=e2e + i, ttft_s=0.1, correct=correct))
    write_cell(tmp_path, "reps", rows)
    ag = aggregate(read_results(tmp_path), BOOT)
    samples = ag.samples
    assert len(samples) == 4 and (samples["repetitions"] == 3).all()
    assert samples["e2e_s"].tolist() == pytest.approx([1.1, 2.1, 3.1, 4.1])  # median over repetitions
    assert samples["correct_pct"].tolist() == pytest.approx([200 / 3] * 4)  # 2 of 3 repetitions correct
    got = ag.cells.iloc[0]
    assert got["samples"] == 4 and got["rows"] == 12
    assert got["e2e_p50"] == pytest.approx(np.percentile([1.1, 2.1, 3.1, 4.1], 50) * 1e3)
    # One-at-a-time runner: system throughput = sum of tokens / sum of GPU seconds, each sample's
    # GPU seconds the mean over its repetitions (the time the GPU was held, not a typical request).
    assert got["tok_s_system"] == pytest.approx(40 / sum((1.0 + 1.1 + 5.0) / 3 + i for i in range(4)))


def test_speedup_is_a_ratio_of_medians_against_the_baseline_on_the_same_hardware(folder):
    write_cell(folder, "spec-a100", spec_cell(hardware="a100"))  # no a100 baseline: not compared
    ag = aggregate(read_results(folder), BOOT)
    assert ag.baseline_model == "qwen3-8b"
    comp = ag.comparisons
    assert comp["hardware"].tolist() == ["h100"]
    row = comp.iloc[0]
    spec_rate = np.median([256 / (0.5 + 0.01 * i) for i in range(N)])
    base_rate = np.median([256 / (2.0 + 0.01 * i) for i in range(N)])
    assert row["speedup"] == pytest.approx(spec_rate / base_rate)
    assert row["speedup_lo"] < row["speedup"] < row["speedup_hi"]
    assert row["e2e_speedup"] == pytest.approx(np.median([2.0 + 0.01 * i for i in range(N)]) / np.median([0.5 + 0.01 * i for i in range(N)]))
    spec_h100 = ag.cells[(ag.cells["mode"] == "linear_spec") & (ag.cells["hardware"] == "h100")].iloc[0]
    assert row["tpf_ratio"] == pytest.approx(spec_h100["tpf"] / 1.0)
    assert row["baseline"] == "qwen3-8b ar"


def test_accuracy_is_paired_on_the_samples_both_cells_scored(tmp_path):
    write_cell(tmp_path, "qwen", ar_cell(n=N + 5, correct=lambda i: i < 12))  # 5 samples the subject lacks
    write_cell(tmp_path, "spec", spec_cell(correct=lambda i: i < 10 or i == 15))
    row = aggregate(read_results(tmp_path), BOOT).comparisons.iloc[0]
    assert row["pairs"] == N
    assert row["dacc"] == pytest.approx((11 - 12) / N * 100)  # -5 points on the 20 shared samples
    assert (row["only_cell_right"], row["only_baseline_right"]) == (1, 2)
    assert row["dacc_lo"] < row["dacc"] < row["dacc_hi"]


def test_protocols_are_separate_cells_and_are_never_paired(tmp_path):
    write_cell(tmp_path, "qwen", ar_cell(task_protocol="lm-eval"))
    write_cell(tmp_path, "spec-lm-eval", spec_cell(task_protocol="lm-eval", correct=lambda i: i < 10))
    write_cell(tmp_path, "spec-nemo-skills", spec_cell(task_protocol="nemo-skills", correct=lambda i: i < 16))
    ag = aggregate(read_results(tmp_path), BOOT)
    assert sorted(ag.cells["task_protocol"]) == ["lm-eval", "lm-eval", "nemo-skills"]
    # the nemo-skills cell has no ar cell under its own protocol: it is compared with nothing
    assert ag.comparisons["task_protocol"].tolist() == ["lm-eval"]
    assert ag.comparisons["pairs"].tolist() == [N] and ag.comparisons["dacc"].tolist() == [pytest.approx(-10.0)]


def test_accuracy_is_the_protocols_score_with_partial_credit(tmp_path):
    rows = ar_cell(task="variable-tracking", task_protocol="ruler")
    for i, row in enumerate(rows):
        row["score"] = 0.5 if i % 2 else 1.0  # RULER's string_match_all: half the names, or all of them
        row["correct"] = row["score"] == 1.0
    write_cell(tmp_path, "vt", rows)
    cell = aggregate(read_results(tmp_path), BOOT).cells.iloc[0]
    assert cell["acc"] == pytest.approx(75.0)


def engine_rows(mode, concurrency, tokens_per_s_system, block_length=None, forwards_per_request=None, n=16,
                e2e_scale=1.0, e2e=lambda i: 1.0 + 0.05 * i):
    cell = base_row(model="nemotron-labs-diffusion-8b" if mode != "ar" else "qwen3-8b", mode=mode,
                    runner="sglang", hardware="gb200", task="speed-bench-throughput-1k", block_length=block_length,
                    concurrency=concurrency, hw_price_per_gpu_hour=6.0, hw_gpus=1)
    duration = n * 200 / tokens_per_s_system
    rows = []
    for i in range(n):
        kind = "decode" if mode == "ar" else "verify"
        forwards = {"prefill": 1, kind: forwards_per_request} if forwards_per_request else {}
        rows.append(sample_row(cell, i, new_tokens=200, forwards=forwards, vendor_nfe=None, e2e_s=e2e(i) * e2e_scale,
                               ttft_s=0.1, correct=None, cell_duration_s=duration,
                               gpu_energy_j=100.0 * n, gpu_energy_region="timed",
                               itl_s=[0.01 * (1 + (i + k) % 4) for k in range(10)]))
        if not forwards:
            for kind in ("prefill", "decode", "denoise", "commit", "draft", "verify", "quadratic", "unlabelled"):
                rows[-1][f"forwards_{kind}"] = None
    return rows


def test_engine_cells_use_the_measured_duration_itls_and_concurrency(tmp_path):
    write_cell(tmp_path, "c1", engine_rows("linear_spec", 1, 500.0, 32, forwards_per_request=40))
    write_cell(tmp_path, "c64", engine_rows("linear_spec", 64, 8000.0, 32, forwards_per_request=40))
    write_cell(tmp_path, "base64", engine_rows("ar", 64, 4000.0))
    ag = aggregate(read_results(tmp_path), BOOT)
    cells = ag.cells.set_index(["mode", "concurrency"])
    c64 = cells.loc[("linear_spec", 64.0)]
    assert c64["tok_s_system"] == pytest.approx(8000.0)
    assert c64["tok_s_system_lo"] < 8000.0 < c64["tok_s_system_hi"]
    pooled = [0.01 * (1 + (i + k) % 4) for i in range(16) for k in range(10)]
    assert c64["itl_p50"] == pytest.approx(np.percentile(pooled, 50) * 1e3)
    # No per-forward times from an engine: (E2E - TTFT) / forwards after the prefill, median over samples.
    assert c64["ms_per_forward"] == pytest.approx(np.median([(0.9 + 0.05 * i) / 40 for i in range(16)]) * 1e3)
    assert c64["tpf"] == pytest.approx(200 / 41)
    assert np.isnan(cells.loc[("ar", 64.0)]["tpf"])  # no forward counts recorded: no TPF, not a crash
    # Energy and cost from the rows' own figures: the cell's NVML energy over its tokens.
    assert c64["joules_per_token"] == pytest.approx(0.5)
    assert c64["usd_per_mtok"] == pytest.approx(usd_per_million_tokens(6.0, 1, 8000.0))
    assert c64["usd_per_mtok_lo"] < c64["usd_per_mtok"] < c64["usd_per_mtok_hi"]
    # Only the concurrency-64 cell has an ar baseline at concurrency 64.
    comp = ag.comparisons
    assert comp["concurrency"].tolist() == [64.0]
    assert comp.iloc[0]["sys_ratio"] == pytest.approx(2.0)


def test_older_files_without_the_newer_columns_still_aggregate(folder):
    newer = ["concurrency", "cell_duration_s", "itl_s", "gpu_energy_j", "gpu_energy_region", "hw_price_per_gpu_hour", "hw_gpus"]
    for path in folder.glob("*.parquet"):  # rewrite the cells as a file from before those columns existed
        pq.write_table(pq.read_table(path).drop_columns(newer), path)
    records = read_results(folder)
    assert "concurrency" not in records and "gpu_energy_j" not in records
    cells = aggregate(records, BOOT).cells
    assert (cells["concurrency"] == 1).all()
    assert cells["joules_per_token"].isna().all() and cells["usd_per_mtok"].isna().all()


def test_skipped_and_failed_cells_keep_their_reason(folder):
    write_cell(folder, "skip", [base_row(model="qwen3-8b", mode="diffusion", status="skipped",
                                         error="model qwen3-8b was trained for modes ['ar']")])
    cells = aggregate(read_results(folder), BOOT).cells
    skipped = cells[cells["status"] == "skipped"].iloc[0]
    assert "trained for modes" in skipped["note"] and skipped["samples"] == 0 and np.isnan(skipped["tpf"])


def test_energy_and_cost_formulas():
    assert joules_per_token(300.0, 600) == 0.5
    # $2.50 per GPU-hour, 8 GPUs, 1000 tok/s: 20 $/h over 3.6M tokens/h = 5.556 $ per 1M tokens.
    assert usd_per_million_tokens(2.5, 8, 1000.0) == pytest.approx(20 / 3.6)
    assert np.isnan(usd_per_million_tokens(2.5, 1, 0.0))


def test_draft_lora_separates_cells_in_the_sweep_summary(folder):
    rows = spec_cell()
    for r in rows:
        r.update(draft_lora=None, draft_adapter_active=None)
    write_cell(folder, "spec-nolora", rows)
    summary = summary_table(aggregate(read_results(folder), boot=None).cells)
    assert sorted(summary.loc[summary["model"] == "nemotron-labs-diffusion-8b", "mode"]) == ["linear_spec L=32",
                                                                                          "linear_spec+lora L=32"]
    assert isinstance(pd.read_parquet(folder), pd.DataFrame)


def test_percentiles_from_sorted_resamples_follow_numpys_linear_rule():
    values = np.random.default_rng(3).lognormal(size=(50, 37))
    for q in (50, 90, 99):
        assert percentile(q)(values) == pytest.approx(np.percentile(values, q, axis=-1))


def test_pooled_itl_percentiles_resample_whole_requests():
    # Two kinds of request: fast (10 ms gaps) and slow (50 ms gaps); the pooled median depends on the mix.
    lists = [np.array([0.01] * 20)] * 10 + [np.array([0.05] * 20)] * 10
    est = pooled_percentiles(lists, [50], Bootstrap(resamples=1000, seed=0))[50]
    assert est.value == pytest.approx(0.03)  # numpy's linear rule between the two halves
    assert (est.low, est.high) == (0.01, 0.05)  # either kind can be the majority of a resample
    same = pooled_percentiles([np.array([0.01, 0.02])] * 8, [50, 99], BOOT)
    for q in (50, 99):  # every resample pools the same mix: a zero-width interval at the value
        assert same[q].low == pytest.approx(same[q].value) and same[q].high == pytest.approx(same[q].value)
    assert same[50].value == pytest.approx(0.015)
