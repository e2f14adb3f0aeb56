"""Batched self-speculation (reference_decoders/README.md, "Batched self-speculation").

Every row of a batch must decode exactly what it decodes alone (greedy, float32), whatever the
other rows accept, wherever they stop; the batch's forward counts must follow from the rows'
batch-1 runs (one forward per step of the batch while any row still decodes, each row's query
tokens counted only while it is in the batch); with a temperature every row must follow ar's
exact distribution. The batch-1 runs are the reference because tests/test_reference_decoders.py
proves them equal to ar.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from harness.cli import CONFIG_DIR
from harness.config import register_configs, to_bench_config
from harness.execute import run_cell
from reference_decoders import generate, generate_batch
from reference_decoders.adapter import ModelAdapter
from reference_decoders.loading import load_checkpoint
from reference_decoders.tiny import tiny_model
from tests.conftest import VENDOR_LORA
from tests.test_sampled_decoding import K, T, V, ar_marginals, tiny_vocab_model, tolerance

register_configs()

SHIPPED = "harness/tinymodel/checkpoint"
# tasks the shipped model was trained on, prompts of 6 to 15 tokens; their answers take it from
# 1 to 4 verify steps, with 1 to 8 drafts accepted per step
TEXTS = ["copy 8f3k2q7=", "reverse abc12=", "sort 93715=", "add 12+345=", "copy q=", "sort 5274610938=",
         "reverse zz9y8x7w=", "add 999+1="]
CASES = {
    "linear-t0": ("linear_spec", {"threshold": 0.0}),
    "linear-t0.9": ("linear_spec", {"threshold": 0.9}),
    "quadratic": ("quadratic_spec", {}),
}


@pytest.fixture(scope="module")
def shipped():
    loaded = load_checkpoint(SHIPPED, dtype="float32")
    prompts = [loaded.tokenizer(t, add_special_tokens=False).input_ids for t in TEXTS]
    return loaded.model, prompts, loaded.tokenizer


def alone(model, prompts, mode, **params):
    return [generate(model, torch.tensor([p]), mode, **params) for p in prompts]


def assert_rows_equal_batch_1(batched, singles, batch_size):
    for row, (b, a) in enumerate(zip(batched, singles)):
        assert b.tokens == a.tokens, f"row {row}"
        assert b.accept_lengths == a.accept_lengths, f"row {row}"
        assert (b.finish_reason, b.tokens_untrimmed) == (a.finish_reason, a.tokens_untrimmed), f"row {row}"
        assert b.batch_size == batch_size and a.batch_size == 1


# -- greedy: every row decodes what it decodes alone ----------------------------------------------


@pytest.mark.parametrize("block_length", [4, 8])
@pytest.mark.parametrize("case", list(CASES))
def test_batched_rows_equal_batch_1_on_the_shipped_model(shipped, case, block_length):
    model, prompts, _ = shipped
    mode, params = CASES[case]
    params = dict(params, max_new_tokens=24, block_length=block_length, eos_token_id=1)
    singles = alone(model, prompts, mode, **params)
    batched = generate_batch(model, prompts, mode, **params)
    assert_rows_equal_batch_1(batched, singles, len(prompts))
    # the case is ragged: rows accept different numbers of drafts and stop after different steps
    assert len({len(p) for p in prompts}) > 1
    assert len({len(a.accept_lengths) for a in singles}) > 1
    assert max(max(a.accept_lengths) for a in singles) > 1 and min(min(a.accept_lengths) for a in singles) == 1
    assert all(a.finish_reason == "eos" for a in singles)


def eos_at_different_steps(model, prompts, steps):
    """EOS ids that end row r's ar output at (or before) step steps[r]: the token ar emits there."""
    ar = alone(model, prompts, "ar", max_new_tokens=max(steps) + 1, eos_token_ids=())
    return tuple(sorted({a.tokens[s] for a, s in zip(ar, steps)}))


@pytest.mark.parametrize("family", ["qwen3", "ministral3"])
@pytest.mark.parametrize("case", list(CASES))
def test_batched_rows_equal_batch_1_on_a_random_model(family, case):
    model = tiny_model(family, dtype=torch.float32, seed=1, peakiness=20.0)
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(3, 120, (n,), generator=g).tolist() for n in (4, 9, 6, 2, 11)]
    mode, params = CASES[case]
    eos = eos_at_different_steps(model, prompts, [3, 17, 8, 30, 12])
    params = dict(params, max_new_tokens=20, block_length=4, eos_token_ids=eos)
    singles = alone(model, prompts, mode, **params)
    batched = generate_batch(model, prompts, mode, **params)
    assert_rows_equal_batch_1(batched, singles, len(prompts))
    assert len({len(a.tokens) for a in singles}) > 2  # rows stop at different steps
    assert "eos" in {a.finish_reason for a in singles}


def test_a_row_done_at_its_first_token_leaves_before_any_step(shipped):
    model, prompts, _ = shipped
    first = generate(model, torch.tensor([prompts[0]]), "ar", max_new_tokens=1).tokens[0]
    for mode in ("linear_spec", "quadratic_spec"):
        params = dict(max_new_tokens=24, block_length=8, eos_token_ids=(1, first))
        batched = generate_batch(model, prompts[:3], mode, **params)
        assert batched[0].tokens == [first] and batched[0].accept_lengths == []
        assert_rows_equal_batch_1(batched, alone(model, prompts[:3], mode, **params), 3)


def test_batched_linear_spec_with_the_vendors_draft_lora(vendor_checkpoint):
    lora = load_checkpoint(str(vendor_checkpoint), dtype="float32", draft_lora=VENDOR_LORA).model
    g = torch.Generator().manual_seed(5)
    prompts = [torch.randint(5, 40, (n,), generator=g).tolist() for n in (3, 8, 5, 12)]
    for threshold in (0.0, 0.5):
        for use_draft_adapter in (True, False):
            params = dict(max_new_tokens=16, block_length=4, threshold=threshold, eos_token_ids=(),
                          use_draft_adapter=use_draft_adapter)
            batched = generate_batch(lora, prompts, "linear_spec", **params)
            assert_rows_equal_batch_1(batched, alone(lora, prompts, "linear_spec", **params), len(prompts))
            assert all(b.draft_adapter_active is use_draft_adapter for b in batched)


# -- forward counts: the batch's, derived from the rows' batch-1 runs -------------------------------


def rounds_of(result) -> list[int]:
    """Forwards per round of a batch-1 linear_spec run: draft passes before each verify."""
    rounds, drafts = [], 0
    for kind in result.forward_log.kinds[1:]:
        if kind == "draft":
            drafts += 1
        else:
            rounds.append(drafts)
            drafts = 0
    return rounds


@pytest.mark.parametrize("case", ["linear-t0", "linear-t0.9"])
def test_linear_spec_batch_counts_follow_from_the_rows(shipped, case):
    model, prompts, _ = shipped
    params = dict(CASES[case][1], max_new_tokens=24, block_length=8, eos_token_id=1)
    L, B, n = 8, len(prompts), max(len(p) for p in prompts)
    per_row = [rounds_of(a) for a in alone(model, prompts, "linear_spec", **params)]
    batched = generate_batch(model, prompts, "linear_spec", **params)
    # round k runs while any row has a round k; it drafts until the slowest of those rows is filled
    rounds = max(len(r) for r in per_row)
    active = [[r[k] for r in per_row if len(r) > k] for k in range(rounds)]
    drafts = [max(a) for a in active]
    expected = {"prefill": 1, "draft": sum(drafts), "verify": rounds}
    expected_query = {"prefill": B * n, "draft": sum(len(a) * L * d for a, d in zip(active, drafts)),
                      "verify": sum(len(a) * L for a in active)}  # a finished row computes nothing
    for b in batched:  # every row carries the batch's counts, as ar and diffusion do
        assert {k: v for k, v in b.forwards.items() if v} == expected
        assert {k: v for k, v in b.query_tokens.items() if v} == expected_query
        assert len(b.forward_log.kinds) == sum(expected.values())
        assert b.vendor_nfe == sum(expected.values())


def test_quadratic_spec_batch_counts_follow_from_the_rows(shipped):
    model, prompts, _ = shipped
    L = 4
    params = dict(max_new_tokens=24, block_length=L, eos_token_id=1)
    B, n = len(prompts), max(len(p) for p in prompts)
    steps = [a.forwards["quadratic"] for a in alone(model, prompts, "quadratic_spec", **params)]
    batched = generate_batch(model, prompts, "quadratic_spec", **params)
    active = [sum(s > k for s in steps) for k in range(max(steps))]
    assert active[0] == B and active[-1] < B  # rows leave the batch along the way
    for b in batched:
        assert {k: v for k, v in b.forwards.items() if v} == {"prefill": 1, "quadratic": max(steps)}
        assert b.query_tokens["prefill"] == B * (n + L)
        assert b.query_tokens["quadratic"] == sum(active) * L * (L + 1)
        assert b.forward_log.query_tokens[1:] == [a * L * (L + 1) for a in active]


def test_the_cache_keeps_the_longest_acceptance_and_hides_the_rest(shipped):
    """Each forward reads rows x cached positions. The shared cache grows per step by the longest
    acceptance among the rows of that step (a row alone grows by its own, read off its batch-1
    cache lengths), so a row that accepted less reads masked positions until it leaves."""
    model, prompts, _ = shipped
    L = 4
    params = dict(max_new_tokens=24, block_length=L, eos_token_id=1)
    singles = alone(model, prompts, "quadratic_spec", **params)
    own_growth = [[b - a for a, b in zip(r.forward_log.cache_tokens[1:], r.forward_log.cache_tokens[2:])] for r in singles]
    log = generate_batch(model, prompts, "quadratic_spec", **params)[0].forward_log
    rows = [q // (L * (L + 1)) for q in log.query_tokens[1:]]
    cached = [c // r for c, r in zip(log.cache_tokens[1:], rows)]  # the batch's cached length at each step
    assert cached[0] == max(len(p) for p in prompts)  # left-padded prompts
    ragged = False
    for step, grown in enumerate(b - a for a, b in zip(cached, cached[1:])):
        known = [g[step] for g in own_growth if len(g) > step]
        # a row whose last step this is keeps at least what it emitted (its run may be cut by EOS)
        last = [r.accept_lengths[step] for r, g in zip(singles, own_growth) if len(g) == step and len(r.accept_lengths) > step]
        assert max(known + last) <= grown <= L
        if not last:
            assert grown == max(known)
        ragged |= min(known) < grown
    assert ragged


@pytest.mark.parametrize("case", list(CASES))
def test_compacting_the_cache_changes_no_token(shipped, case, monkeypatch):
    """Compaction whenever a position is hidden (ratio 1): the longest row (a filler prefix before
    a question answered one token per step) gets hidden positions from the rows that accept more,
    so compaction shrinks the cache; every row still decodes what it decodes alone."""
    model, prompts, tokenizer = shipped
    prompts = [*prompts, tokenizer("lorem ipsum dolor sit\nadd 999+1=", add_special_tokens=False).input_ids]
    mode, params = CASES[case]
    params = dict(params, max_new_tokens=24, block_length=4, eos_token_id=1)
    singles = alone(model, prompts, mode, **params)
    default = generate_batch(model, prompts, mode, **params)
    monkeypatch.setattr(ModelAdapter, "compact_ratio", 1.0)
    compacted = generate_batch(model, prompts, mode, **params)
    assert_rows_equal_batch_1(compacted, singles, len(prompts))
    # the same forwards, reading less cache
    assert compacted[0].forwards == default[0].forwards
    assert compacted[0].forward_log.query_tokens == default[0].forward_log.query_tokens
    assert sum(compacted[0].forward_log.cache_tokens) < sum(default[0].forward_log.cache_tokens)


# -- temperature: every row follows ar's exact distribution -------------------------------------


N_BATCHES = 100  # x 2 rows of each prompt = 200 draws per prompt
PROMPTS = [[1, 2, 3], [3, 0, 1, 2, 1]]
SAMPLED = {
    "linear-t0.5": ("linear_spec", {"block_length": 4, "threshold": 0.5}),
    "linear-t0.5-sample_match": ("linear_spec", {"block_length": 4, "threshold": 0.5, "acceptance": "sample_match"}),
    "quadratic": ("quadratic_spec", {"block_length": 4}),
}


@pytest.mark.parametrize("case", list(SAMPLED))
def test_sampled_batched_rows_follow_the_ar_distribution(case):
    """Rows share one generator (as ar and diffusion batches do) and each row's draws are fresh,
    so each row is an independent exact sample; rows of two prompt lengths (left padding) accept
    and stop raggedly. Tolerance as in tests/test_sampled_decoding.py, for 200 draws per prompt."""
    model = tiny_vocab_model()
    mode, params = SAMPLED[case]
    rows = [PROMPTS[0], PROMPTS[1], PROMPTS[0], PROMPTS[1]]
    counts = torch.zeros(len(PROMPTS), K, V, dtype=torch.float64)
    for seed in range(N_BATCHES):
        results = generate_batch(model, rows, mode, max_new_tokens=K, eos_token_ids=(), temperature=T, seed=seed,
                                 time_forwards=False, **params)
        for prompt, result in zip(rows, results):
            counts[PROMPTS.index(prompt), torch.arange(K), torch.tensor(result.tokens)] += 1
    draws = 2 * N_BATCHES
    for i, prompt in enumerate(PROMPTS):
        exact = ar_marginals(model, torch.tensor([prompt]), K, T)
        tv = 0.5 * (counts[i] / draws - exact).abs().sum(-1)
        assert (tv <= tolerance(draws)).all(), f"prompt {i}: total-variation distance per token {tv.tolist()}"


# -- the harness: mode.batch_size > 1 runs a cell whose rows equal batch 1's ----------------------


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return to_bench_config(compose(config_name="config", overrides=list(overrides)))


@pytest.mark.parametrize("mode", ["linear_spec", "quadratic_spec"])
def test_a_batched_speculative_cell_records_what_batch_1_records(tmp_path, mode):
    common = ("sweep=single", f"mode={mode}", "task=sort", "task.num_samples=6", "runner.warmup=0",
              "runner.min_repetitions=1", "runner.min_duration_s=0", "runner.device=cpu")
    frames = {}
    for batch_size in (1, 4):
        bench = composed(*common, f"mode.batch_size={batch_size}", f"results_dir={tmp_path / str(batch_size)}")
        assert bench.mode.batch_size == batch_size  # accepted by the config
        assert run_cell(bench)["status"] == "ok"
        frames[batch_size] = pd.read_parquet(tmp_path / str(batch_size) / "single").set_index("sample_id").sort_index()
    one, four = frames[1], frames[4]
    assert (one["status"] == "ok").all() and (four["status"] == "ok").all() and len(four) == 6
    assert four["batch_size"].tolist() == [4, 4, 4, 4, 2, 2] and (one["batch_size"] == 1).all()  # sequences decoded together
    for column in ("output_token_ids", "accept_lengths"):
        assert four[column].map(list).tolist() == one[column].map(list).tolist()
    assert four["correct"].tolist() == one["correct"].tolist()
