"""diffusion: block-wise masked denoising over a causal KV cache (the vendor's ``generate``).

Causal prefill; seed = the prompt's next token. Per block of L:
  block = [seed, MASK x (L-1)]
  denoise: block passes (no KV written) until no MASK is left; each pass commits, among the
    still-masked positions, the most confident one always plus every other one whose
    confidence >= threshold (no threshold: a fixed schedule of `steps` passes per block, the
    masked count split evenly, remainder first);
  commit: one causal pass over the finished block writes its KV and gives the next seed.
A block is always finished; decoding stops after the block in which every row has met EOS or
max_new_tokens, without the commit pass whose cache and seed nobody would use.
"""

from __future__ import annotations

import torch

from reference_decoders.adapter import ModelAdapter
from reference_decoders.output import TokenStream
from reference_decoders.params import DecodeParams
from reference_decoders.sampling import Sampler


def transfer_schedule(masked: int, steps: int) -> list[int]:
    """How many positions each of `steps` passes commits: masked split evenly, remainder first."""
    base, remainder = divmod(masked, steps)
    return [base + (1 if i < remainder else 0) for i in range(steps)]


def select_commits(
    masked: torch.Tensor, confidence: torch.Tensor, threshold: float | None, count: int | None
) -> torch.Tensor:
    """masked, confidence [B, L] -> bool [B, L] positions to commit this pass.

    threshold mode: the most confident masked position always, plus every masked one >= threshold.
    schedule mode: the `count` most confident masked positions.
    """
    scores = confidence.masked_fill(~masked, float("-inf"))
    has_mask = masked.any(-1, keepdim=True)  # [B, 1]
    if threshold is None:
        k = min(count, masked.shape[-1])
        top = scores.topk(k, dim=-1).indices
        commit = torch.zeros_like(masked).scatter(-1, top, True)
    else:
        best = torch.zeros_like(masked).scatter(-1, scores.argmax(-1, keepdim=True), True)
        commit = best | (confidence >= threshold)
    return commit & masked & has_mask


def ended_before_mask(block: torch.Tensor, masked: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
    """[B] rows whose block holds a committed EOS with no MASK before the first one."""
    is_eos = torch.isin(block, eos) & ~masked
    L = block.shape[-1]
    first_eos = torch.where(is_eos.any(-1), is_eos.long().argmax(-1), L)  # [B]
    mask_before = (masked & (torch.arange(L, device=block.device) < first_eos[:, None])).any(-1)
    return is_eos.any(-1) & ~mask_before


def denoise_block(adapter: ModelAdapter, state, block: torch.Tensor, masked: torch.Tensor, params: DecodeParams, sampler: Sampler) -> torch.Tensor:
    """block [B, L], masked [B, L] -> block with no MASK left before any EOS; one block pass per iteration.

    Masked positions are tracked explicitly, not by token value: a model may well predict the
    mask token id itself (a random one does), and that prediction is a commit like any other.
    """
    masked = masked.clone()
    eos = torch.tensor(params.eos_token_ids, device=block.device)
    schedule = None
    if params.threshold is None:
        schedule = transfer_schedule(params.block_length - 1, params.steps or params.block_length)
    step = 0
    while bool(masked.any()):
        logits = adapter.block_pass(state, block, "denoise")  # [B, L, V]
        x0, confidence = sampler.pick(logits)
        count = None if schedule is None else schedule[step]
        commit = select_commits(masked, confidence, params.threshold, count)
        block = torch.where(commit, x0, block)
        masked &= ~commit
        masked &= ~ended_before_mask(block, masked, eos)[:, None]  # positions after an EOS are never read
        step += 1
    return block


def commit_block(adapter: ModelAdapter, state, block: torch.Tensor, sampler: Sampler) -> torch.Tensor:
    """Write the finished block's KV; returns the next seed [B]."""
    logits = adapter.causal_pass(state, block, "commit", logits_to_keep=1)  # [B, 1, V]
    return sampler.tokens(logits[:, -1])


def diffusion_generate(adapter, prompt_ids, prompt_valid, streams: list[TokenStream], params: DecodeParams, sampler: Sampler) -> list[list[int]]:
    state, logits = adapter.prefill(prompt_ids, prompt_valid)
    seed = sampler.tokens(logits)  # [B]
    B, L = seed.shape[0], params.block_length
    while True:
        finished = torch.tensor([s.done for s in streams], device=seed.device)
        for stream, token in zip(streams, seed.tolist()):
            stream.emit([token])  # the seed is final as soon as it exists
        block = torch.full((B, L), params.mask_token_id, dtype=torch.long, device=seed.device)
        block[:, 0] = seed
        masked = torch.ones(B, L, dtype=torch.bool, device=seed.device)
        masked[:, 0] = False
        masked[finished] = False  # rows already finished take no part in the denoising
        block = denoise_block(adapter, state, block, masked, params, sampler)
        for stream, row in zip(streams, block[:, 1:].tolist()):
            stream.emit(row)
        if all(s.done for s in streams):
            return [[] for _ in streams]  # no acceptance lengths: nothing is verified
        seed = commit_block(adapter, state, block, sampler)
