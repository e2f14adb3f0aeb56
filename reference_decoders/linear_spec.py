"""linear_spec: self-speculation with a diffusion draft and a causal verify (the vendor's
``linear_spec_generate``), batch 1.

Causal prefill gives t1. Each round over block = [seed, MASK x (L-1)]:
  draft:  block passes (draft LoRA on, if loaded) fill the masks; threshold 0 fills all of them
          in one pass, a threshold > 0 repeats diffusion-style commits until no MASK is left;
  verify: one causal pass over the block (LoRA off) writes its KV; ar[i] predicts block[i+1];
  accept: 1 + the longest run with ar[i] == block[i+1]; emit ar[:accepted]; keep prefix +
          accepted tokens in the cache; seed = ar[accepted - 1].
Greedy output equals ar exactly. With a temperature, acceptance is standard speculative
sampling against the draft distributions, which keeps the output distribution of ar.
Forwards: 1 prefill + per round (draft passes + 1 verify).
"""

from __future__ import annotations

import torch

from reference_decoders.adapter import ModelAdapter
from reference_decoders.diffusion import select_commits
from reference_decoders.output import TokenStream
from reference_decoders.params import DecodeParams
from reference_decoders.sampling import Sampler


def draft_block(adapter: ModelAdapter, state, block: torch.Tensor, params: DecodeParams, sampler: Sampler):
    """block [1, L] = [seed, MASK...] -> (drafted block [1, L], draft distributions [L, V] or None)."""
    masked = torch.ones_like(block, dtype=torch.bool)
    masked[:, 0] = False
    draft_probs = None
    threshold = params.threshold or 0.0
    while bool(masked.any()):
        logits = adapter.block_pass(state, block, "draft", draft_adapter=params.use_draft_adapter)  # [1, L, V]
        x0, confidence = sampler.pick(logits)
        commit = select_commits(masked, confidence, threshold, None)
        if not sampler.greedy:  # greedy acceptance needs no distributions
            probs = sampler.probs(logits[0])  # [L, V]
            draft_probs = probs if draft_probs is None else torch.where(commit[0, :, None], probs, draft_probs)
        block = torch.where(commit, x0, block)
        masked &= ~commit
    return block, draft_probs


def verify_block(adapter: ModelAdapter, state, block: torch.Tensor, draft_probs, sampler: Sampler) -> list[int]:
    """Causal pass over the drafted block; returns the accepted tokens (drafts kept + the next token)."""
    logits = adapter.forward(state, block, "verify", None)  # [1, L, V]
    drafts = block[0, 1:]
    n, next_token = sampler.accept(drafts, None if draft_probs is None else draft_probs[1:], logits[0])
    adapter.keep(state, 1 + n)  # seed + accepted drafts; next_token is the new seed, not cached yet
    return drafts[:n].tolist() + [next_token]


def linear_spec_generate(adapter, prompt_ids, prompt_valid, streams: list[TokenStream], params: DecodeParams, sampler: Sampler) -> list[int]:
    if len(streams) != 1:
        raise ValueError("linear_spec decodes one sequence at a time (batch 1), as the vendor's linear_spec_generate")
    stream = streams[0]
    state, logits = adapter.prefill(prompt_ids, prompt_valid)
    seed = int(sampler.tokens(logits)[0])
    stream.emit([seed])
    accept_lengths: list[int] = []
    L = params.block_length
    while not stream.done:
        block = torch.full((1, L), params.mask_token_id, dtype=torch.long, device=adapter.device)
        block[0, 0] = seed
        block, draft_probs = draft_block(adapter, state, block, params, sampler)
        accepted = verify_block(adapter, state, block, draft_probs, sampler)
        seed = accepted[-1]
        # Acceptance length = tokens this verify step added to the output (the `accept_lengths` column, harness/records.py):
        # a run cut by EOS or max_new_tokens counts what survives the cut.
        before = len(stream.tokens)
        stream.emit(accepted)
        accept_lengths.append(len(stream.tokens) - before)
    return accept_lengths
