"""The in-repo tiny dual-mode model: training objective, data, and the shipped checkpoint (issue 4).

Fast: the training tests run a few steps of a much smaller model; nothing here retrains the
shipped one.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness.tinymodel import CHECKPOINT_DIR
from harness.tinymodel.tokenizer import build_tokenizer
from harness.tinymodel.train import (
    TrainConfig,
    TrainingData,
    build_model,
    eligible_positions,
    joint_loss,
    sample_noise,
    train,
    windowed_training_mask,
)
from reference_decoders import MODES, generate
from reference_decoders.loading import load_checkpoint
from reference_decoders.masks import block_diffusion_training

# Much smaller than the shipped model, so that a few steps take a second or two.
# One thread: a test process has not set OMP_WAIT_POLICY, and spinning workers crawl on a busy CPU.
SMALL = TrainConfig(seed=1, steps=30, batch_size=16, hidden_size=32, intermediate_size=64, num_layers=2,
                    num_heads=2, num_kv_heads=2, lr=1e-2, warmup_steps=5, filler_batch_fraction=0.0,
                    heldout_eval_seeds=1, log_every=1000, threads=1)


def literal_mask(rows: list[str]) -> torch.Tensor:
    """Rows of '1'/'0' (spaces ignored) -> bool matrix."""
    return torch.tensor([[c == "1" for c in row.replace(" ", "")] for row in rows])


# The published definition (Efficient-DLM's block-diffusion mask, harness/tinymodel/README.md), written out by
# hand for n = 6: columns are 6 noisy then 6 clean positions. A noisy token sees the noisy tokens of
# its own block and the clean tokens of earlier blocks; a clean token sees clean tokens 0..i.
CLEAN_ROWS = ["000000 100000", "000000 110000", "000000 111000", "000000 111100", "000000 111110", "000000 111111"]
HAND_WRITTEN_MASKS = {
    # block 3, no offset: blocks {0,1,2} {3,4,5}
    (3, 0): ["111000 000000"] * 3 + ["000111 111000"] * 3 + CLEAN_ROWS,
    # block 2, offset 1: blocks {0} {1,2} {3,4} {5}
    (2, 1): ["100000 000000"] + ["011000 100000"] * 2 + ["000110 111000"] * 2 + ["000001 111110"] + CLEAN_ROWS,
    # block 3, offset 2: blocks {0,1} {2,3,4} {5}
    (3, 2): ["110000 000000"] * 2 + ["001110 110000"] * 3 + ["000001 111110"] + CLEAN_ROWS,
}


@pytest.mark.parametrize("block_length, offset", sorted(HAND_WRITTEN_MASKS))
def test_training_mask_equals_the_published_definition(block_length, offset):
    expected = literal_mask(HAND_WRITTEN_MASKS[(block_length, offset)])
    assert torch.equal(block_diffusion_training(6, block_length, offset), expected)


def test_windowed_mask_is_the_published_mask_restricted_to_the_window():
    # n = 6, block 2 (blocks {0,1} {2,3} {4,5}); window = noisy positions 2..5, then clean 0..5
    expected = literal_mask([
        "1100 110000", "1100 110000", "0011 111100", "0011 111100",
        "0000 100000", "0000 110000", "0000 111000", "0000 111100", "0000 111110", "0000 111111",
    ])
    assert torch.equal(windowed_training_mask(6, 2, 4, 2), expected)


def small_model_and_data(cfg: TrainConfig = SMALL):
    tokenizer = build_tokenizer()
    return build_model(cfg, tokenizer), TrainingData(cfg, tokenizer), tokenizer


def test_clean_half_logits_equal_a_plain_causal_forward():
    model, data, tokenizer = small_model_and_data()
    batch = data.batch(0)
    B, n = batch.clean.shape
    noisy = batch.clean.clone()
    noisy[:, n // 2 :] = tokenizer.mask_token_id
    mask = block_diffusion_training(n, SMALL.block_size, 3)[None, None].expand(B, 1, 2 * n, 2 * n)
    positions = torch.arange(n).repeat(2)[None].expand(B, -1)
    with torch.no_grad():
        joint = model(input_ids=torch.cat([noisy, batch.clean], 1), attention_mask=mask, position_ids=positions).logits
        plain = model(input_ids=batch.clean).logits
    torch.testing.assert_close(joint[:, n:], plain, atol=1e-5, rtol=1e-4)


def test_noisy_window_gives_the_logits_of_the_full_concatenation():
    model, data, tokenizer = small_model_and_data()
    batch = data.batch(3)
    n, W, L = batch.clean.shape[1], SMALL.window, SMALL.block_size
    generator = torch.Generator().manual_seed(0)
    masked, _, _ = sample_noise(eligible_positions(batch, W, L), SMALL, generator)
    for row in range(2):
        start = int(batch.window_start[row])
        clean = batch.clean[row : row + 1]
        noisy_full = clean.clone()
        noisy_full[0, start : start + W] = clean[0, start : start + W].masked_fill(masked[row], tokenizer.mask_token_id)
        with torch.no_grad():
            full = model(
                input_ids=torch.cat([noisy_full, clean], 1),
                attention_mask=block_diffusion_training(n, L, start % L)[None, None],
                position_ids=torch.arange(n).repeat(2)[None],
            ).logits[0]
            windowed = model(
                input_ids=torch.cat([noisy_full[:, start : start + W], clean], 1),
                attention_mask=windowed_training_mask(n, start, W, L)[None, None],
                position_ids=torch.cat([torch.arange(start, start + W), torch.arange(n)])[None],
            ).logits[0]
        torch.testing.assert_close(windowed[:W], full[start : start + W], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(windowed[W:], full[n:], atol=1e-5, rtol=1e-4)


def test_noise_masks_per_block_and_keeps_the_seed_when_asked():
    cfg = dataclasses.replace(SMALL, keep_first_prob=1.0)
    _, data, _ = small_model_and_data(cfg)
    batch = data.batch(0)
    W, L = cfg.window, cfg.block_size
    eligible = eligible_positions(batch, W, L)
    masked, p_mask, candidates = sample_noise(eligible, cfg, torch.Generator().manual_seed(0))
    assert not masked[:, ::L].any(), "a block's first token stays clean with keep_first_prob = 1"
    assert not (masked & ~eligible).any(), "only answer positions are masked"
    per_block = masked.view(-1, W // L, L).sum(-1)
    has_candidates = candidates.view(-1, W // L, L).any(-1)
    assert (per_block[has_candidates] >= 1).all() and (per_block[~has_candidates] == 0).all()
    ratio = per_block / candidates.view(-1, W // L, L).sum(-1).clamp(min=1)
    torch.testing.assert_close(p_mask.view(-1, W // L, L)[..., 0], ratio.float())


def test_training_data_is_deterministic_for_a_seed_and_holds_out_eval_examples():
    tokenizer = build_tokenizer()
    first, second = TrainingData(SMALL, tokenizer), TrainingData(SMALL, tokenizer)
    for step in (0, 7):
        a, b = first.batch(step), second.batch(step)
        for field in dataclasses.fields(a):
            assert torch.equal(getattr(a, field.name), getattr(b, field.name))
    other_seed = TrainingData(dataclasses.replace(SMALL, seed=2), tokenizer).batch(0)
    assert not torch.equal(other_seed.clean[:, :10], first.batch(0).clean[:, :10])

    import random

    rng = random.Random(0)
    for _ in range(300):
        name, example = first.sample_example(rng)
        assert example.question not in first.heldout[name]


def test_filler_batches_reach_the_padded_prompt_length():
    cfg = dataclasses.replace(SMALL, filler_batch_fraction=1.0)
    _, data, tokenizer = small_model_and_data(cfg)
    batch = data.batch(0)
    assert int(batch.prompt_length.max()) > 100
    newline = tokenizer.convert_tokens_to_ids("\n")
    assert all(newline in row.tolist() for row in batch.clean)


def test_a_few_training_steps_lower_the_loss():
    model, data, tokenizer = small_model_and_data()
    held_batch = data.batch(10_000)  # a step the training run below never reaches

    def loss_of(m):
        with torch.no_grad():
            return joint_loss(m, held_batch, SMALL, torch.Generator().manual_seed(5), tokenizer.mask_token_id)

    before = loss_of(model)
    trained, record = train(SMALL, log=lambda *_: None)
    after = loss_of(trained)
    assert after["loss"] < 0.9 * before["loss"]
    assert after["ar"] < before["ar"] and after["diffusion"] < before["diffusion"]
    assert record["loss_curve"][-1]["step"] == SMALL.steps


# -- the shipped checkpoint -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    assert (CHECKPOINT_DIR / "config.json").exists(), f"no shipped checkpoint in {CHECKPOINT_DIR}"
    loaded = load_checkpoint(str(CHECKPOINT_DIR), dtype="float32")  # the loader real checkpoints go through
    return loaded.model, loaded.tokenizer


def test_shipped_checkpoint_carries_the_decoding_config(shipped):
    model, tokenizer = shipped
    assert model.config.mask_token_id == tokenizer.mask_token_id == 2
    assert model.config.block_size == 8
    assert model.config.eos_token_id == tokenizer.eos_token_id == 1
    assert (CHECKPOINT_DIR / "model.safetensors").exists() and (CHECKPOINT_DIR / "training_record.json").exists()
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


@pytest.mark.parametrize("mode", MODES)
def test_shipped_checkpoint_decodes_in_every_mode(shipped, mode):
    model, tokenizer = shipped
    prompt = tokenizer("copy 8f3k2q7=", add_special_tokens=False, return_tensors="pt").input_ids
    kwargs = dict(max_new_tokens=24, block_length=model.config.block_size, eos_token_id=tokenizer.eos_token_id)
    result = generate(model, prompt, mode, threshold=0.9 if mode == "diffusion" else None, **kwargs)
    assert tokenizer.decode(result.tokens, skip_special_tokens=True) == "8f3k2q7"
    assert result.tokens[-1] == tokenizer.eos_token_id
    if mode in ("linear_spec", "quadratic_spec"):
        assert result.tokens == generate(model, prompt, "ar", **kwargs).tokens
        assert max(result.accept_lengths) > 1, "a trained model accepts several drafted tokens per step"
