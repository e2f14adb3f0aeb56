"""The reference decoders against the published algorithms (reference_decoders/README.md, "The decoding modes").

Tiny random Qwen3 and Ministral3 models in float64 (argmax ties would make comparisons flaky in
lower precision). Equalities are exact token-for-token; counts are derived by hand from the
algorithm, never from the decoder's own bookkeeping.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from reference_decoders import generate, generate_batch, masks
from reference_decoders.adapter import ModelAdapter
from reference_decoders.counting import ForwardCounter
from reference_decoders.output import TokenStream
from reference_decoders.sampling import Sampler
from reference_decoders.tiny import tiny_model

FAMILIES = ["qwen3", "ministral3"]
NO_EOS = ()


def random_prompt(n: int, seed: int, vocab: int = 120) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (1, n), generator=g)


@pytest.fixture(scope="module", params=[(f, s) for f in FAMILIES for s in (0, 1)], ids=lambda p: f"{p[0]}-seed{p[1]}")
def model(request):
    family, seed = request.param
    return tiny_model(family, dtype=torch.float64, seed=seed, peakiness=20.0)


def constant_model(family: str = "qwen3"):
    """Final norm zeroed: every logit is 0, so argmax is token 0 everywhere, drafts included.

    Every draft is then accepted: the full-acceptance paths (cache keep, overshoot) run with
    counts that follow from L alone.
    """
    m = tiny_model(family, dtype=torch.float64)
    with torch.no_grad():
        m.model.norm.weight.zero_()
    return m


# -- ar -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ar_equals_transformers_greedy_generate(family, seed):
    m = tiny_model(family, dtype=torch.float64, seed=seed, peakiness=5.0)
    prompt = random_prompt(11, seed)
    ours = generate(m, prompt, "ar", max_new_tokens=24, eos_token_ids=NO_EOS).tokens
    m.generation_config.eos_token_id = None
    theirs = m.generate(prompt, max_new_tokens=24, do_sample=False, eos_token_id=None, pad_token_id=0)[0, 11:].tolist()
    assert ours == theirs
    # With an EOS that occurs mid-way, both stop right after it.
    eos = ours[9]
    ours_eos = generate(m, prompt, "ar", max_new_tokens=24, eos_token_id=eos).tokens
    theirs_eos = m.generate(prompt, max_new_tokens=24, do_sample=False, eos_token_id=eos, pad_token_id=0)[0, 11:].tolist()
    assert ours_eos == theirs_eos[: len(ours_eos)] and ours_eos[-1] == eos
    assert ours_eos == ours[: ours.index(eos) + 1]


def test_ar_counts_one_prefill_and_one_decode_per_further_token(model):
    prompt = random_prompt(7, 3)
    r = generate(model, prompt, "ar", max_new_tokens=13, eos_token_ids=NO_EOS)
    assert len(r.tokens) == 13
    assert r.forwards["prefill"] == 1 and r.forwards["decode"] == 12
    assert sum(r.forwards.values()) == 13
    assert r.query_tokens["prefill"] == 7 and r.query_tokens["decode"] == 12
    assert r.vendor_nfe == 13  # ar_generate: nfe = tokens


# -- lossless self-speculation ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["linear_spec", "quadratic_spec"])
@pytest.mark.parametrize("block_length", [2, 4, 8])
def test_speculative_modes_equal_ar_exactly(model, mode, block_length):
    for seed in range(3):
        prompt = random_prompt(5 + 3 * seed, seed)
        ar = generate(model, prompt, "ar", max_new_tokens=30, eos_token_ids=NO_EOS)
        spec = generate(model, prompt, mode, max_new_tokens=30, block_length=block_length, eos_token_ids=NO_EOS)
        assert spec.tokens == ar.tokens
        assert sum(spec.accept_lengths) == len(spec.tokens) - 1  # every token after t1 came from a verify step
        assert all(1 <= a <= block_length for a in spec.accept_lengths)


@pytest.mark.parametrize("family", FAMILIES)
def test_full_acceptance_counts(family):
    """Every draft accepted: linear_spec and quadratic_spec emit L tokens per verify step."""
    m = constant_model(family)
    prompt = random_prompt(6, 0)
    n, L = 17, 4
    rounds = math.ceil((n - 1) / L)  # t1 comes from the prefill
    lin = generate(m, prompt, "linear_spec", max_new_tokens=n, block_length=L, eos_token_ids=NO_EOS)
    assert lin.tokens == [0] * n
    assert lin.accept_lengths == [L] * rounds
    assert (lin.forwards["prefill"], lin.forwards["draft"], lin.forwards["verify"]) == (1, rounds, rounds)
    assert lin.query_tokens["draft"] == rounds * L and lin.query_tokens["verify"] == rounds * L
    assert lin.vendor_nfe == 1 + 2 * rounds  # prefill + draft + verify per block
    assert lin.tokens_untrimmed == 1 + rounds * L  # what the vendor would have returned: 17 here, 21 untrimmed

    quad = generate(m, prompt, "quadratic_spec", max_new_tokens=n, block_length=L, eos_token_ids=NO_EOS)
    assert quad.tokens == [0] * n
    assert quad.forwards["prefill"] == 1 and quad.forwards["quadratic"] == rounds
    assert sum(quad.forwards.values()) == 1 + rounds
    assert quad.query_tokens["prefill"] == 6 + L  # prompt and the initial draft block in one forward
    assert quad.query_tokens["quadratic"] == rounds * L * (L + 1)


def test_max_new_tokens_trims_the_last_accepted_run():
    m = constant_model()
    r = generate(m, random_prompt(5, 0), "linear_spec", max_new_tokens=3, block_length=4, eos_token_ids=NO_EOS)
    assert r.tokens == [0, 0, 0] and r.finish_reason == "length"
    assert r.tokens_untrimmed == 5  # t1 + one accepted run of 4: the vendor returns 5 tokens
    assert r.accept_lengths == [2]  # acceptance counts what the output keeps


# -- the vendor's conventions: tokens returned, nfe -----------------------------------------------


def test_untrimmed_tokens_stop_at_the_first_eos_but_not_at_max_new_tokens():
    """What the vendor's functions return: a run past max_new_tokens whole, nothing past an EOS."""
    overshoot = TokenStream(max_new_tokens=3, eos_token_ids=(9,))
    overshoot.emit([5])
    overshoot.emit([6, 7, 8, 4])
    assert overshoot.tokens == [5, 6, 7] and overshoot.tokens_untrimmed == 5 and overshoot.final_emit_cut
    eos_inside = TokenStream(10, (9,))
    eos_inside.emit([5])
    eos_inside.emit([6, 9, 7, 8])
    assert eos_inside.tokens == [5, 6, 9] and eos_inside.tokens_untrimmed == 3 and eos_inside.final_emit_cut
    assert eos_inside.finish_reason == "eos"
    eos_last = TokenStream(10, (9,))
    eos_last.emit([5, 6, 9])
    assert eos_last.tokens_untrimmed == 3 and not eos_last.final_emit_cut
    both = TokenStream(2, (9,))
    both.emit([5, 6, 7, 9, 1])  # cut at max_new_tokens, the returned run ends at its EOS
    assert both.tokens == [5, 6] and both.tokens_untrimmed == 4 and both.finish_reason == "length"


def eos_inside_an_emission(result) -> int | None:
    """Index of a token that occurs for the first time inside (not at the end of) one emission."""
    ends = set(c - 1 for c in result.emit_counts)
    for i, token in enumerate(result.tokens):
        if i not in ends and token not in result.tokens[:i]:
            return i
    return None


@pytest.mark.parametrize("mode", ["diffusion", "linear_spec"])
def test_an_eos_inside_a_run_or_block_ends_the_untrimmed_count(model, mode):
    params = {"block_length": 4, **({"threshold": 0.5} if mode == "diffusion" else {})}
    for seed in range(10):
        prompt = random_prompt(6, 20 + seed)
        free = generate(model, prompt, mode, max_new_tokens=40, eos_token_ids=NO_EOS, **params)
        i = eos_inside_an_emission(free)
        if i is not None:
            break
    assert i is not None, "no run or block held a fresh token before its end"
    cut = generate(model, prompt, mode, max_new_tokens=40, eos_token_id=free.tokens[i], **params)
    assert cut.tokens == free.tokens[: i + 1]
    assert cut.tokens_untrimmed == i + 1  # the tokens after the EOS in the same run or block do not count


def vendor_self_spec_nfe(tokens: list[int], accepted_per_step: list[int], max_new_tokens: int, eos: int | None) -> int:
    """The vendor's self_spec_generate loop, restated: nfe 1 for the joint prefill + draft pass; each
    step is one forward and makes final its accepted drafts d_0 .. d_{a-1} (the AR token after them
    is the next step's d_0); it stops after the step whose accepted drafts hold EOS or bring the
    total to max_new_tokens."""
    nfe, total = 1, 0
    for accepted in accepted_per_step:
        nfe += 1
        if eos in tokens[total : total + accepted]:
            return nfe
        total += accepted
        if total >= max_new_tokens:
            return nfe
    raise AssertionError("the free run is too short for this limit")


@pytest.mark.parametrize("max_new_tokens", [1, 2, 3, 4, 5, 8, 9, 13])
def test_quadratic_vendor_nfe_under_full_acceptance(max_new_tokens):
    """Every draft accepted (L = 4): a vendor step makes 4 tokens final, so it stops after
    ceil(N / 4) steps; ours emits t1 at the prefill and 4 tokens per step."""
    L = 4
    r = generate(constant_model(), random_prompt(5, 0), "quadratic_spec", max_new_tokens=max_new_tokens, block_length=L,
                 eos_token_ids=NO_EOS)
    assert sum(r.forwards.values()) == 1 + math.ceil((max_new_tokens - 1) / L)
    assert r.vendor_nfe == 1 + math.ceil(max_new_tokens / L)


def test_quadratic_vendor_nfe_when_the_first_token_is_eos():
    r = generate(constant_model(), random_prompt(5, 0), "quadratic_spec", max_new_tokens=8, block_length=4, eos_token_id=0)
    assert r.tokens == [0] and sum(r.forwards.values()) == 1  # the prefill alone
    assert r.vendor_nfe == 2  # the vendor's first quadratic step is what makes d_0 = EOS final


def test_quadratic_vendor_nfe_equals_the_vendor_loop_on_every_limit_and_eos():
    """A real model whose acceptance varies (runs of 1 and 2 early on, for this prompt): for every
    limit and EOS choice, our reproduction of the vendor's nfe equals the restated vendor loop
    over the same accepted runs."""
    model, prompt, L = tiny_model("ministral3", dtype=torch.float64, seed=0, peakiness=20.0), random_prompt(7, 31), 4
    free = generate(model, prompt, "quadratic_spec", max_new_tokens=40, block_length=L, eos_token_ids=NO_EOS)
    accepted = free.accept_lengths[:-1]  # the last run may have been cut
    assert max(accepted[:10]) > 1
    deltas = set()
    for eos in [None, *free.tokens[1:8]]:
        for limit in range(1, 21):
            r = generate(model, prompt, "quadratic_spec", max_new_tokens=limit, block_length=L,
                         **({"eos_token_ids": NO_EOS} if eos is None else {"eos_token_id": eos}))
            assert r.vendor_nfe == vendor_self_spec_nfe(free.tokens, accepted, limit, eos), (eos, limit)
            deltas.add(r.vendor_nfe - sum(r.forwards.values()))
    assert deltas == {0, 1}  # both cases occur: the output ends on the last AR token, or inside a run


# -- diffusion ------------------------------------------------------------------------------------


@pytest.mark.parametrize("block_length", [2, 4, 8])
def test_diffusion_threshold_one_is_one_commit_per_pass(model, block_length):
    """threshold 1.0: only the forced top-1 commit happens, so L-1 denoise passes per block."""
    prompt = random_prompt(9, 4)
    blocks = 3
    r = generate(model, prompt, "diffusion", max_new_tokens=blocks * block_length, block_length=block_length,
                 threshold=1.0, eos_token_ids=NO_EOS)
    assert len(r.tokens) == blocks * block_length
    assert r.forwards["prefill"] == 1
    assert r.forwards["denoise"] == blocks * (block_length - 1)
    assert r.forwards["commit"] == blocks - 1  # the commit after the last block is never used, so never run
    assert r.query_tokens["denoise"] == r.forwards["denoise"] * block_length
    assert r.vendor_nfe == blocks * block_length  # generate(): denoise + a commit after every block


def test_diffusion_threshold_zero_fills_a_block_in_one_pass(model):
    r = generate(model, random_prompt(9, 5), "diffusion", max_new_tokens=16, block_length=8, threshold=0.0, eos_token_ids=NO_EOS)
    assert r.forwards["denoise"] == 2 and r.forwards["commit"] == 1 and len(r.tokens) == 16


@pytest.mark.parametrize("steps,expected_passes", [(8, 7), (4, 4), (3, 3), (1, 1)])
def test_diffusion_fixed_schedule(model, steps, expected_passes):
    """No threshold: the 7 masks of a block of 8 split over `steps` passes, remainder first."""
    r = generate(model, random_prompt(9, 6), "diffusion", max_new_tokens=8, block_length=8, threshold=None,
                 steps=steps, eos_token_ids=NO_EOS)
    assert r.forwards["denoise"] == expected_passes


def test_diffusion_block_pass_commits_match_an_independent_reading(model):
    """Replays one block by hand with a plain full-sequence forward and the dense block mask."""
    L, threshold, mask_id = 4, 0.3, model.config.mask_token_id
    prompt = random_prompt(6, 7)
    r = generate(model, prompt, "diffusion", max_new_tokens=L, block_length=L, threshold=threshold, eos_token_ids=NO_EOS)
    with torch.no_grad():
        seed = model(prompt).logits[0, -1].argmax().item()
        block = [seed] + [mask_id] * (L - 1)
        n = prompt.shape[1]
        dense = masks.causal(n + L)
        dense[n:, n:] = True
        while mask_id in block:
            logits = model(torch.cat([prompt, torch.tensor([block])], 1), attention_mask=dense[None, None]).logits[0, n:]
            probs = logits.softmax(-1)
            conf, x0 = probs.max(-1)
            masked = [i for i, t in enumerate(block) if t == mask_id]
            best = max(masked, key=lambda i: conf[i])
            for i in masked:
                if i == best or conf[i] >= threshold:
                    block[i] = int(x0[i])
    assert r.tokens == block


# -- EOS and limits -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ar", "diffusion", "linear_spec", "quadratic_spec"])
def test_eos_cuts_output_and_max_new_tokens_bounds_it(model, mode):
    prompt = random_prompt(8, 8)
    params = {} if mode == "ar" else {"block_length": 4}
    if mode == "diffusion":
        params["threshold"] = 0.5
    free = generate(model, prompt, mode, max_new_tokens=20, eos_token_ids=NO_EOS, **params)
    eos = free.tokens[6]
    cut = generate(model, prompt, mode, max_new_tokens=20, eos_token_id=eos, **params)
    assert cut.tokens[-1] == eos and eos not in cut.tokens[:-1]
    assert cut.finish_reason == "eos"
    if mode != "diffusion":  # lossless modes: the same prefix as ar up to the EOS
        assert cut.tokens == free.tokens[: free.tokens.index(eos) + 1]
    for limit in (1, 5, 9):
        short = generate(model, prompt, mode, max_new_tokens=limit, eos_token_ids=NO_EOS, **params)
        assert len(short.tokens) == limit and short.finish_reason == "length"


def test_diffusion_stops_denoising_a_row_once_eos_has_no_mask_before_it():
    """Vendor rule: after a pass, a block whose first EOS has no MASK before it is finished."""
    m = constant_model()
    r = generate(m, random_prompt(5, 0), "diffusion", max_new_tokens=8, block_length=8, threshold=1.0, eos_token_id=0)
    # The seed itself is EOS (token 0): one denoise pass runs, then the block is finished.
    assert r.tokens == [0] and r.forwards["denoise"] == 1 and r.forwards["commit"] == 0


# -- the adapter: block passes and masks ---------------------------------------------------------


def test_block_pass_equals_full_sequence_with_dense_mask(model):
    prompt, block = random_prompt(7, 9), random_prompt(5, 10)
    n, L = prompt.shape[1], block.shape[1]
    counter = ForwardCounter(model)
    adapter = ModelAdapter(model, counter)
    state, _ = adapter.prefill(prompt)
    keys_before = [layer.keys.clone() for layer in state.cache.layers]
    cached = adapter.block_pass(state, block, "denoise")
    assert state.cache.get_seq_length() == n  # nothing written
    assert all(torch.equal(a, layer.keys) for a, layer in zip(keys_before, state.cache.layers))
    dense = masks.causal(n + L)
    dense[n:, n:] = True
    with torch.no_grad():
        full = model(torch.cat([prompt, block], 1), attention_mask=dense[None, None]).logits[:, n:]
    torch.testing.assert_close(cached, full, rtol=1e-9, atol=1e-9)
    counter.close()


def test_quadratic_forward_equals_full_sequence_with_dense_mask(model):
    L = 3
    prompt = random_prompt(6, 11)
    query = random_prompt(L * (L + 1), 12)
    n, q = prompt.shape[1], query.shape[1]
    counter = ForwardCounter(model)
    adapter = ModelAdapter(model, counter)
    state, _ = adapter.prefill(prompt)
    cached = adapter.forward(state, query, "quadratic", masks.quadratic_spec(L), masks.quadratic_spec_positions(L))
    dense = torch.zeros(n + q, n + q, dtype=torch.bool)
    dense[:n, :n] = masks.causal(n)
    dense[n:, :n] = True
    dense[n:, n:] = masks.quadratic_spec(L)
    positions = torch.cat([torch.arange(n), n + masks.quadratic_spec_positions(L)])[None]
    with torch.no_grad():
        full = model(torch.cat([prompt, query], 1), attention_mask=dense[None, None], position_ids=positions).logits[:, n:]
    torch.testing.assert_close(cached, full, rtol=1e-9, atol=1e-9)
    counter.close()


def test_quadratic_mask_layout_by_hand():
    """L = 2: drafts d0 d1, group 0 = masks a0 a1, group 1 = masks b0 b1."""
    expected = torch.tensor(
        [
            # d0 d1 a0 a1 b0 b1
            [1, 0, 0, 0, 0, 0],  # d0: itself
            [1, 1, 0, 0, 0, 0],  # d1: d0, itself
            [1, 0, 1, 1, 0, 0],  # a0: d0 and group 0
            [1, 0, 1, 1, 0, 0],  # a1
            [1, 1, 0, 0, 1, 1],  # b0: d0, d1 and group 1
            [1, 1, 0, 0, 1, 1],  # b1
        ],
        dtype=torch.bool,
    )
    assert torch.equal(masks.quadratic_spec(2), expected)
    assert masks.quadratic_spec_positions(2).tolist() == [0, 1, 1, 2, 2, 3]


# -- batches, sampling, counting -----------------------------------------------------------------


@pytest.mark.parametrize("mode,params", [("ar", {}), ("diffusion", {"block_length": 4, "threshold": 0.5})])
def test_batched_decode_equals_one_by_one(model, mode, params):
    prompts = [random_prompt(n, n)[0].tolist() for n in (4, 9, 6)]
    batched = generate_batch(model, prompts, mode, max_new_tokens=12, eos_token_ids=NO_EOS, **params)
    for prompt, result in zip(prompts, batched):
        alone = generate(model, torch.tensor([prompt]), mode, max_new_tokens=12, eos_token_ids=NO_EOS, **params)
        assert result.tokens == alone.tokens
        assert result.batch_size == 3


@pytest.mark.parametrize("mode", ["ar", "diffusion", "linear_spec", "quadratic_spec"])
def test_temperature_sampling_is_seeded(model, mode):
    params = {} if mode == "ar" else {"block_length": 4}
    prompt = random_prompt(6, 13)
    a = generate(model, prompt, mode, max_new_tokens=16, temperature=1.0, seed=7, eos_token_ids=NO_EOS, **params)
    b = generate(model, prompt, mode, max_new_tokens=16, temperature=1.0, seed=7, eos_token_ids=NO_EOS, **params)
    assert a.tokens == b.tokens
    outputs = {tuple(generate(model, prompt, mode, max_new_tokens=16, temperature=1.0, seed=s, eos_token_ids=NO_EOS, **params).tokens) for s in range(3)}
    assert len(outputs) > 1


def test_speculative_acceptance_reproduces_the_target_distribution():
    """Speculative sampling is lossless: the first emitted token follows p, whatever the draft q."""
    torch.manual_seed(0)
    V, trials = 4, 6000
    target_logits = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[0.1, 0.1, 0.4, 0.4]], dtype=torch.float64)
    sampler = Sampler(1.0, torch.Generator().manual_seed(1))
    counts = torch.zeros(V)
    for _ in range(trials):
        draft = sampler.draw(q)  # [1]
        n, nxt = sampler.accept(draft, q, target_logits)
        counts[int(draft[0]) if n == 1 else nxt] += 1
    expected = target_logits[0].softmax(-1)
    assert torch.allclose(counts / trials, expected.float(), atol=0.025)  # ~4 standard errors


def test_a_model_call_outside_any_phase_is_counted_as_unlabelled(model):
    counter = ForwardCounter(model)
    with torch.no_grad():
        model(random_prompt(4, 0))
    counter.close()
    assert counter.log.forwards_by_kind()["unlabelled"] == 1


def test_no_unlabelled_forwards_in_any_mode(model):
    for mode, params in [("ar", {}), ("diffusion", {"block_length": 4, "threshold": 0.9}),
                         ("linear_spec", {"block_length": 4}), ("quadratic_spec", {"block_length": 4})]:
        r = generate(model, random_prompt(5, 1), mode, max_new_tokens=10, eos_token_ids=NO_EOS, **params)
        assert r.forwards["unlabelled"] == 0
        assert len(r.forward_log.seconds) == sum(r.forwards.values())


def test_bad_parameters_are_named():
    m = tiny_model(dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown mode 'difusion'.*valid modes: ar, diffusion"):
        generate(m, random_prompt(3, 0), "difusion", max_new_tokens=4)
    with pytest.raises(TypeError, match="unknown decode parameter.*treshold"):
        generate(m, random_prompt(3, 0), "diffusion", max_new_tokens=4, treshold=0.9)
    m.config.mask_token_id = None
    with pytest.raises(ValueError, match="needs mask_token_id"):
        generate(m, random_prompt(3, 0), "diffusion", max_new_tokens=4)


# -- the draft LoRA --------------------------------------------------------------------------------


def test_draft_lora_changes_draft_passes_only():
    peft = pytest.importorskip("peft")
    base = tiny_model("ministral3", dtype=torch.float64, seed=3, peakiness=20.0)
    plain = copy.deepcopy(base)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["o_proj"], init_lora_weights=False))
    lora.eval()
    prompt, block = random_prompt(6, 2), random_prompt(4, 3)

    def logits(model, draft_adapter, kind):
        counter = ForwardCounter(model.get_base_model() if hasattr(model, "get_base_model") else model)
        adapter = ModelAdapter(model, counter)
        state, _ = adapter.prefill(prompt)
        out = adapter.block_pass(state, block, "draft", draft_adapter=draft_adapter) if kind == "draft" else adapter.causal_pass(state, block, "verify")
        counter.close()
        return out

    assert not torch.allclose(logits(lora, True, "draft"), logits(plain, False, "draft"))  # the adapter is live
    assert torch.equal(logits(lora, False, "verify"), logits(plain, False, "verify"))  # verify sees base weights

    spec = generate(lora, prompt, "linear_spec", max_new_tokens=20, block_length=4, eos_token_ids=NO_EOS)
    ar = generate(plain, prompt, "ar", max_new_tokens=20, eos_token_ids=NO_EOS)
    assert spec.draft_adapter_active is True
    assert spec.tokens == ar.tokens  # lossless: the LoRA only changes which drafts get proposed
    off = generate(lora, prompt, "linear_spec", max_new_tokens=20, block_length=4, eos_token_ids=NO_EOS, use_draft_adapter=False)
    assert off.draft_adapter_active is False and off.tokens == ar.tokens
    assert generate(plain, prompt, "linear_spec", max_new_tokens=4, block_length=4, eos_token_ids=NO_EOS).draft_adapter_active is None
