"""The vendor's claims as data, and a verdict on each: confirmed, refuted, inconclusive, insufficient
evidence or not measured."""

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
    """The shipped claims, narrowed to the task of these synthetic cells (gsm8k) and to their 20
    samples, except where a test is about the tasks or the sample minimum themselves."""
    return {c.id: dataclasses.replace(c, tasks=("gsm8k",) if c.metric != "system_throughput" else c.tasks,
                                      min_samples=min(c.min_samples, N)) for c in load_claims()}


@pytest.fixture(scope="module")
def shipped():
    return {c.id: c for c in load_claims()}


def verdict_on(folder, claim):
    return evaluate_claim(claim, aggregate(read_results(folder), BOOT))


def test_the_shipped_claims_state_metric_comparison_conditions_and_tolerance(shipped):
    claims = shipped
    assert set(claims) == {"tpf-5.9x-vs-qwen3", "speed-bench-4x-sglang-gb200", "selfspec-accuracy-vs-ar-mode",
                           "selfspec-accuracy-vs-qwen3"}
    tpf = claims["tpf-5.9x-vs-qwen3"]
    assert (tpf.metric, tpf.comparison, tpf.claimed, tpf.direction) == ("tpf", "ratio", 5.9, "at_least")
    assert tpf.subject["block_length"] == 32 and tpf.subject["mode"] == "linear_spec" and tpf.subject["draft_adapter_active"] is True
    assert tpf.baseline == {"model": "qwen3-8b", "mode": "ar"}
    speed = claims["speed-bench-4x-sglang-gb200"]
    assert speed.require == {"hardware": "gb200", "runner": "sglang"} and speed.claimed == 4.0
    assert speed.tasks == ("speed-bench-throughput-*",)
    for claim in claims.values():
        assert claim.tolerance > 0 and claim.statement and claim.source
        if claim.metric != "system_throughput":  # the vendor's benchmark set, each with 100+ samples
            assert set(claim.tasks) >= {"gsm8k", "math500", "humaneval", "mbpp"} and claim.min_samples >= 100


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
    assert v.reproducing() == {"tpf": 1, "tpf_excl_prefill": 1, "vendor_tpf": 1, "vendor_tpf_untrimmed": 0}
    assert m.where == "runner=reference, hardware=h100, context=natural, task=gsm8k, concurrency=1"


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
    assert v.verdict == "not measured" and not v.measurements
    assert "task=['speed-bench-throughput-*'] (they have: gsm8k)" in v.reason
    # Subject present but no baseline sharing its hardware: named as well.
    write_cell(tmp_path, "spec", spec_cell(hardware="a100"))
    (tmp_path / "qwen.parquet").unlink()
    write_cell(tmp_path, "qwen-h100", ar_cell(hardware="h100"))
    v = verdict_on(tmp_path, claims["tpf-5.9x-vs-qwen3"])
    assert v.verdict == "not measured" and "no baseline cell agrees" in v.reason and "hardware (a100 vs h100)" in v.reason


@pytest.mark.parametrize("n,subject_correct,verdict", [
    # 1000 pairs, none discordant: |difference| <= 0.44 points (Clopper-Pearson envelope), inside +/- 1.
    (1000, lambda i: i % 5 < 3, "confirmed"),
    (20, lambda i: i < 2, "refuted"),  # 50 points worse on 20 pairs: [-80, -20]
    # 20 pairs, none discordant: the envelope is +/- 16.8 points, across both edges of the band.
    (20, lambda i: i < 12, "inconclusive"),
])
def test_accuracy_within_one_point_is_judged_on_paired_samples(tmp_path, claims, n, subject_correct, verdict):
    write_cell(tmp_path, "qwen", ar_cell(n=n, correct=lambda i: i % 5 < 3 if n > N else i < 12))
    write_cell(tmp_path, "spec", spec_cell(n=n, correct=subject_correct))
    v = verdict_on(tmp_path, claims["selfspec-accuracy-vs-qwen3"])
    assert v.verdict == verdict, v.reason
    assert f"{n} paired samples" in v.measurements[0].notes[0]


def test_accuracy_against_the_models_own_ar_mode(tmp_path, claims):
    write_cell(tmp_path, "own-ar", ar_cell(model="nemotron-labs-diffusion-8b", correct=lambda i: i < 12))
    write_cell(tmp_path, "spec", spec_cell(correct=lambda i: i < 2))
    v = verdict_on(tmp_path, claims["selfspec-accuracy-vs-ar-mode"])
    assert v.verdict == "refuted"
    assert v.measurements[0].baseline == "nemotron-labs-diffusion-8b ar"


def test_measurements_that_disagree_across_concurrency_are_inconclusive(tmp_path, claims):
    # SGLang on GB200: 4.5x at one request, 2x at 64 in flight (requests' latencies vary differently
    # in the two cells, so the shares of the measured duration, and the interval, have a spread).
    def spread(i):
        return 1.0 + 0.05 * ((7 * i) % 16)

    write_cell(tmp_path, "spec-c1", engine_rows("linear_spec", 1, 450.0, 32, e2e=spread))
    write_cell(tmp_path, "base-c1", engine_rows("ar", 1, 100.0))
    write_cell(tmp_path, "spec-c64", engine_rows("linear_spec", 64, 8000.0, 32, e2e=spread))
    write_cell(tmp_path, "base-c64", engine_rows("ar", 64, 4000.0))
    claim = dataclasses.replace(claims["speed-bench-4x-sglang-gb200"], min_samples=16)
    v = verdict_on(tmp_path, claim)
    by_concurrency = {m.where.split("concurrency=")[1]: m for m in v.measurements}
    assert by_concurrency["1"].verdict == "confirmed" and by_concurrency["1"].estimate.value == pytest.approx(4.5)
    assert by_concurrency["64"].verdict == "refuted" and by_concurrency["64"].estimate.value == pytest.approx(2.0)
    assert v.verdict == "inconclusive" and "disagree" in v.reason


def test_timing_only_rows_never_count(tmp_path, claims):
    write_cell(tmp_path, "qwen", ar_cell(timing_only=True))
    write_cell(tmp_path, "spec", spec_cell(timing_only=True))
    v = verdict_on(tmp_path, claims["tpf-5.9x-vs-qwen3"])
    assert v.verdict == "not measured" and "no scored records" in v.reason


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
    ({"match": ["hardware"]}, "unknown field(s) ['match']"),
    ({"tasks": []}, "tasks: list the tasks the claim is about"),
    ({"min_samples": 1}, "min_samples: must be an integer >= 2"),
    ({"require": {"task": "gsm8k"}}, "name the tasks in `tasks`, not as a condition"),
    ({"tolerance": -1}, "tolerance: must be a number >= 0"),
    ({"claimd": 5.9}, "unknown field(s) ['claimd']"),
])
def test_a_bad_claims_file_is_rejected_naming_the_key_and_the_choices(tmp_path, change, message):
    with pytest.raises(ConfigError) as info:
        load_claims(write_claims(tmp_path, {**GOOD, **change}))
    assert message in str(info.value)
    assert "tpf-5.9x-vs-qwen3" in str(info.value)


def test_a_claim_without_its_tasks_is_refused(tmp_path):
    entry = {k: v for k, v in GOOD.items() if k != "tasks"}
    with pytest.raises(ConfigError) as info:
        load_claims(write_claims(tmp_path, entry))
    assert "claims[tpf-5.9x-vs-qwen3]: missing field(s) ['tasks']" in str(info.value)


def test_the_vendor_tpf_claim_needs_the_vendors_benchmark_set(tmp_path, shipped):
    # Before: the TPF claim named no task and was judged on whatever task the records had.
    write_cell(tmp_path, "qwen", ar_cell(n=120))
    write_cell(tmp_path, "spec", spec_cell(n=120))
    v = verdict_on(tmp_path, shipped["tpf-5.9x-vs-qwen3"])
    assert v.verdict == "not measured"
    assert v.tasks_present == ["gsm8k"] and v.tasks_missing == ["math500", "humaneval", "mbpp"]
    assert "missing math500, humaneval, mbpp (present: gsm8k)" in v.reason
    assert len(v.measurements) == 1 and v.measurements[0].verdict == "confirmed"  # the gsm8k evidence is shown


def test_fewer_samples_than_the_claim_needs_is_insufficient_evidence(tmp_path, claims):
    write_cell(tmp_path, "qwen", ar_cell(n=8))
    write_cell(tmp_path, "spec", spec_cell(n=8))
    claim = dataclasses.replace(claims["tpf-5.9x-vs-qwen3"], min_samples=100)
    v = verdict_on(tmp_path, claim)
    assert v.verdict == "insufficient evidence" and "n=8 paired samples, the claim needs at least 100" in v.reason


def test_a_degenerate_interval_is_insufficient_evidence(tmp_path, claims):
    # Every sample of both cells has the same TPF: the bootstrap interval has zero width.
    write_cell(tmp_path, "qwen", ar_cell())
    rows = spec_cell()
    for r in rows:
        r.update(forwards_draft=20, forwards_verify=20)
    write_cell(tmp_path, "spec", rows)
    v = verdict_on(tmp_path, claims["tpf-5.9x-vs-qwen3"])
    assert v.verdict == "insufficient evidence" and "zero-width interval" in v.reason


def test_the_claims_table_agrees_with_its_counting_rule_rows(tmp_path, claims):
    # Two measurements (two contexts); the vendor's printed figure reproduces 5.9 in one only.
    # Before: "rules reproducing the claimed figure: none" beside rows marked "yes".
    from harness.report import claims_frame

    write_cell(tmp_path, "qwen", ar_cell())
    write_cell(tmp_path, "spec", spec_cell())
    write_cell(tmp_path, "qwen-4k", ar_cell(context="ctx4k"))
    rows = spec_cell(context="ctx4k")
    for r in rows:
        r.update(tokens_untrimmed=256)  # nothing past the limit here: the printed figure is ours
    write_cell(tmp_path, "spec-4k", rows)
    v = verdict_on(tmp_path, claims["tpf-5.9x-vs-qwen3"])
    yes = {m.where: v.claim.reproduces(m.rules["vendor_tpf_untrimmed"].value) for m in v.measurements}
    assert sorted(yes.values()) == [False, True]
    assert v.reproducing()["vendor_tpf_untrimmed"] == 1 and v.reproducing()["tpf"] == 2
    text = claims_frame([v]).iloc[0]["rules reproducing the claimed figure"]
    assert text == "tpf (2 of 2), tpf_excl_prefill (2 of 2), vendor_tpf (2 of 2), vendor_tpf_untrimmed (1 of 2)"


def test_claims_are_plain_dataclasses_usable_without_a_file():
    claim = Claim(id="x", statement="s", metric="accuracy", comparison="difference", claimed=0, tolerance=1,
                  direction="within", subject={"mode": "linear_spec"}, baseline={"mode": "ar"}, tasks=("gsm8k",),
                  min_samples=100)
    assert claim.target_text() == "within 0 +/- 1 points"
