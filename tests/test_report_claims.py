"""The vendor's claims as data, and a verdict on each: confirmed, refuted or inconclusive."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from harness.config import ConfigError
from harness.report.aggregate import Bootstrap, aggregate
from harness.report.claims import DEFAULT_CLAIMS, Claim, evaluate_claim, load_claims
from harness.store import read_results
from tests.synthetic_records import write_cell
from tests.test_report_aggregate import N, ar_cell, engine_rows, rounds, spec_cell

BOOT = Bootstrap(resamples=1000, seed=0)


@pytest.fixture(scope="module")
def claims():
    return {c.id: c for c in load_claims()}


def verdict_on(folder, claim):
    return evaluate_claim(claim, aggregate(read_results(folder), BOOT))


def test_the_shipped_claims_state_metric_comparison_conditions_and_tolerance(claims):
    assert set(claims) == {"tpf-5.9x-vs-qwen3", "speed-bench-4x-sglang-gb200", "selfspec-accuracy-vs-ar-mode",
                           "selfspec-accuracy-vs-qwen3"}
    tpf = claims["tpf-5.9x-vs-qwen3"]
    assert (tpf.metric, tpf.comparison, tpf.claimed, tpf.direction) == ("tpf", "ratio", 5.9, "at_least")
    assert tpf.subject["block_length"] == 32 and tpf.subject["mode"] == "linear_spec" and tpf.subject["draft_adapter_active"] is True
    assert tpf.baseline == {"model": "qwen3-8b", "mode": "ar"}
    speed = claims["speed-bench-4x-sglang-gb200"]
    assert speed.require == {"hardware": "gb200", "runner": "sglang", "task": "speed*"} and speed.claimed == 4.0
    for claim in claims.values():
        assert claim.tolerance > 0 and claim.statement and claim.source


def test_tpf_claim_confirmed_with_the_counting_rules_that_reproduce_it(tmp_path, claims):
    write_cell(tmp_path, "qwen", ar_cell())
    write_cell(tmp_path, "spec", spec_cell())
    v = verdict_on(tmp_path, claims["tpf-5.9x-vs-qwen3"])
    assert v.verdict == "confirmed", v.reason
    (m,) = v.measurements
    expected = 256 * N / sum(1 + 2 * rounds(i) for i in range(N))  # ~5.95; Qwen3 ar: exactly 1
    assert m.estimate.value == pytest.approx(expected)
    assert 5.4 <= m.estimate.low < expected < m.estimate.high
    # The vendor's code returns the whole last accepted run (up to L - 1 = 31 tokens past the limit).
    untrimmed = sum(256 + 31 - i % 8 for i in range(N)) / sum(1 + 2 * rounds(i) for i in range(N))
    assert m.rules["vendor_tpf_untrimmed"].value == pytest.approx(untrimmed)  # ~6.60: more than 0.5 above 5.9
    assert m.rules["tpf_excl_prefill"].value == pytest.approx((256 * N / sum(2 * rounds(i) for i in range(N))) / (256 / 255))
    assert v.reproducing_rules == ["tpf", "tpf_excl_prefill", "vendor_tpf"]
    assert m.where == "sweep=synthetic, hardware=h100, runner=reference, task=gsm8k, context=natural, concurrency=1"


def test_tpf_claim_refuted_when_the_interval_lies_below(tmp_path, claims):
    write_cell(tmp_path, "qwen", ar_cell())
    rows = spec_cell()
    for r in rows:  # 60-ish rounds: about 2 tokens per forward
        r.update(forwards_draft=r["forwards_draft"] * 3, forwards_verify=r["forwards_verify"] * 3)
    write_cell(tmp_path, "spec", rows)
    v = verdict_on(tmp_path, claims["tpf-5.9x-vs-qwen3"])
    assert v.verdict == "refuted"
    assert v.measurements[0].estimate.high < 5.4 and "is below 5.4" in v.measurements[0].reason
    assert "refuted in 1 of 1" in v.reason


def test_an_interval_that_straddles_the_claim_is_inconclusive(tmp_path, claims):
    write_cell(tmp_path, "qwen", ar_cell())
    write_cell(tmp_path, "spec", spec_cell())
    measured = verdict_on(tmp_path, claims["tpf-5.9x-vs-qwen3"]).measurements[0].estimate.value
    claim = dataclasses.replace(claims["tpf-5.9x-vs-qwen3"], claimed=measured, tolerance=0.0)
    v = verdict_on(tmp_path, claim)
    assert v.verdict == "inconclusive" and "straddles" in v.reason


def test_missing_conditions_are_named_with_what_the_records_have(tmp_path, claims):
    write_cell(tmp_path, "qwen", ar_cell())
    write_cell(tmp_path, "spec", spec_cell())
    v = verdict_on(tmp_path, claims["speed-bench-4x-sglang-gb200"])
    assert v.verdict == "inconclusive" and not v.measurements
    for text in ("hardware='gb200' (they have: h100)", "runner='sglang' (they have: reference)",
                 "task='speed*' (they have: gsm8k)"):
        assert text in v.reason
    # Subject present but no baseline sharing its hardware: named as well.
    write_cell(tmp_path, "spec", spec_cell(hardware="a100"))
    (tmp_path / "qwen.parquet").unlink()
    write_cell(tmp_path, "qwen-h100", ar_cell(hardware="h100"))
    v = verdict_on(tmp_path, claims["tpf-5.9x-vs-qwen3"])
    assert v.verdict == "inconclusive" and "no baseline cell shares" in v.reason and "hardware=a100" in v.reason


@pytest.mark.parametrize("subject_correct,verdict", [
    (lambda i: i < 12, "confirmed"),  # identical correctness: difference 0, interval [0, 0]
    (lambda i: i < 2, "refuted"),  # 50 points worse
    (lambda i: i < 11, "inconclusive"),  # 5 points worse on one sample: the interval crosses -1
])
def test_accuracy_within_one_point_is_judged_on_paired_samples(tmp_path, claims, subject_correct, verdict):
    write_cell(tmp_path, "qwen", ar_cell(correct=lambda i: i < 12))
    write_cell(tmp_path, "spec", spec_cell(correct=subject_correct))
    v = verdict_on(tmp_path, claims["selfspec-accuracy-vs-qwen3"])
    assert v.verdict == verdict, v.reason
    assert "20 paired samples" in v.measurements[0].notes[0]


def test_accuracy_against_the_models_own_ar_mode(tmp_path, claims):
    write_cell(tmp_path, "own-ar", ar_cell(model="nemotron-labs-diffusion-8b"))
    write_cell(tmp_path, "spec", spec_cell())
    v = verdict_on(tmp_path, claims["selfspec-accuracy-vs-ar-mode"])
    assert v.verdict == "confirmed"
    assert v.measurements[0].baseline == "nemotron-labs-diffusion-8b ar"


def test_measurements_that_disagree_across_concurrency_are_inconclusive(tmp_path, claims):
    # SGLang on GB200: 4.5x at one request, 2x at 64 in flight.
    write_cell(tmp_path, "spec-c1", engine_rows("linear_spec", 1, 450.0, 32))
    write_cell(tmp_path, "base-c1", engine_rows("ar", 1, 100.0))
    write_cell(tmp_path, "spec-c64", engine_rows("linear_spec", 64, 8000.0, 32))
    write_cell(tmp_path, "base-c64", engine_rows("ar", 64, 4000.0))
    v = verdict_on(tmp_path, claims["speed-bench-4x-sglang-gb200"])
    by_concurrency = {m.where.split("concurrency=")[1]: m for m in v.measurements}
    assert by_concurrency["1"].verdict == "confirmed" and by_concurrency["1"].estimate.value == pytest.approx(4.5)
    assert by_concurrency["64"].verdict == "refuted" and by_concurrency["64"].estimate.value == pytest.approx(2.0)
    assert v.verdict == "inconclusive" and "disagree" in v.reason


def test_timing_only_rows_never_count(tmp_path, claims):
    write_cell(tmp_path, "qwen", ar_cell(timing_only=True))
    write_cell(tmp_path, "spec", spec_cell(timing_only=True))
    v = verdict_on(tmp_path, claims["tpf-5.9x-vs-qwen3"])
    assert v.verdict == "inconclusive" and "no scored records" in v.reason


def write_claims(tmp_path, entry: dict):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": [entry]}))
    return path


GOOD = yaml.safe_load(DEFAULT_CLAIMS.read_text())["claims"][0]


@pytest.mark.parametrize("change,message", [
    ({"metric": "tpx"}, "metric: 'tpx' is not valid; choose one of: tpf, tpf_excl_prefill"),
    ({"comparison": "difference"}, "comparison: 'difference' is not valid; choose one of: ratio"),
    ({"direction": "about"}, "direction: 'about' is not valid; choose one of: at_least, within"),
    ({"subject": {"modle": "x"}}, "subject: 'modle' is not valid; choose one of:"),
    ({"match": ["hardware", "gpu"]}, "match: 'gpu' is not valid; choose one of: sweep, model"),
    ({"tolerance": -1}, "tolerance: must be a number >= 0"),
    ({"claimd": 5.9}, "unknown field(s) ['claimd']"),
])
def test_a_bad_claims_file_is_rejected_naming_the_key_and_the_choices(tmp_path, change, message):
    with pytest.raises(ConfigError) as info:
        load_claims(write_claims(tmp_path, {**GOOD, **change}))
    assert message in str(info.value)
    assert "tpf-5.9x-vs-qwen3" in str(info.value)


def test_claims_are_plain_dataclasses_usable_without_a_file():
    claim = Claim(id="x", statement="s", metric="accuracy", comparison="difference", claimed=0, tolerance=1,
                  direction="within", subject={"mode": "linear_spec"}, baseline={"mode": "ar"})
    assert claim.target_text() == "within 0 +/- 1 points"
