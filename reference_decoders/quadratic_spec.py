"""quadratic_spec: TiDAR-style self-speculation, drafting and verifying in the same forward, batch 1
(the vendor's internal ``self_spec_generate``).

prefill: one forward over [prompt ; MASK x L] (prompt causal, the masks see the prompt and each
  other); only the prompt's KV is kept. d_0 = the AR token after the prompt, d_1..d_{L-1} = the
  masks' drafts for the positions after it.
step: one forward over L(L+1) query tokens (layout in `masks.quadratic_spec`):
  drafts d_0..d_{L-1}, causal over the prefix and earlier drafts: the logit at d_i is the AR check
    of d_{i+1};
  group i = L masks that see the prefix, d_0..d_i and their own group: the draft of the block
    that would follow if d_0..d_i are accepted (its first position takes the AR logit at d_i).
  Accept d_0 (already verified) and then d_k while AR(d_{k-1}) == d_k; keep only the prefix and
  the accepted drafts in the KV cache; the next drafts are [AR token after the last accepted
  draft, group (a-1)'s masks 2..L].
Lossless against ar under greedy decoding; with a temperature the output follows ar's distribution
under either acceptance rule (reference_decoders.sampling): the drafts d_1.. are drawn
independently from their group's distributions, which see only accepted tokens, never the AR
token d_0 they follow. Forwards: 1 prefill + one `quadratic` pass per step.
"""

from __future__ import annotations

import torch

from reference_decoders import masks
from reference_decoders.adapter import ModelAdapter
from reference_decoders.output import TokenStream
from reference_decoders.params import DecodeParams
from reference_decoders.sampling import Sampler


def prefill_and_draft(adapter: ModelAdapter, prompt_ids: torch.Tensor, params: DecodeParams, sampler: Sampler):
    """prompt [1, n] -> (state holding the prompt's KV, drafts [L], their distributions [L, V] or None)."""
    n, L = prompt_ids.shape[1], params.block_length
    state = adapter.new_state(1)
    mask_tokens = torch.full((1, L), params.mask_token_id, dtype=torch.long, device=adapter.device)
    query_mask = masks.causal(n + L, adapter.device)
    query_mask[n:, n:] = True  # the masks see the whole prompt and every mask
    # rows: the last prompt position (AR logit for position n), then the masks at n .. n+L-1
    logits = adapter.forward(state, torch.cat([prompt_ids, mask_tokens], 1), "prefill", query_mask, logits_to_keep=L + 1)[0]
    adapter.keep(state, n)
    draft_logits = torch.cat([logits[:1], logits[2:]])  # the AR logit replaces the first mask's
    drafts = sampler.tokens(draft_logits)
    return state, drafts, sampler.probs(draft_logits) if sampler.needs_draft_probs else None


def speculative_step(adapter: ModelAdapter, state, drafts: torch.Tensor, draft_probs, params: DecodeParams, sampler: Sampler):
    """One L(L+1)-token forward: verify `drafts`, draft the next block.

    Returns (newly final tokens, next drafts [L], their distributions or None).
    """
    L = params.block_length
    mask_tokens = torch.full((L * L,), params.mask_token_id, dtype=torch.long, device=adapter.device)
    query = torch.cat([drafts, mask_tokens])[None]  # [1, L(L+1)]
    logits = adapter.forward(
        state,
        query,
        "quadratic",
        masks.quadratic_spec(L, adapter.device),
        masks.quadratic_spec_positions(L, adapter.device),
    )[0]  # [L(L+1), V]
    n, next_token = sampler.accept(drafts[1:], None if draft_probs is None else draft_probs[1:], logits[:L])
    accepted = 1 + n  # d_0 .. d_n
    adapter.keep(state, accepted)
    group = logits[L + (accepted - 1) * L : L + accepted * L]  # [L, V]; mask j drafts the token `accepted + j` after d_0
    next_drafts = torch.cat([torch.tensor([next_token], device=adapter.device), sampler.tokens(group[1:])])
    next_probs = sampler.probs(group) if sampler.needs_draft_probs else None
    return drafts[1:accepted].tolist() + [next_token], next_drafts, next_probs


def quadratic_spec_generate(adapter, prompt_ids, prompt_valid, streams: list[TokenStream], params: DecodeParams, sampler: Sampler) -> list[int]:
    if len(streams) != 1:
        raise ValueError("quadratic_spec decodes one sequence at a time (batch 1)")
    stream = streams[0]
    state, drafts, draft_probs = prefill_and_draft(adapter, prompt_ids, params, sampler)
    stream.emit([int(drafts[0])])  # d_0 is the AR token: final at once
    accept_lengths: list[int] = []
    while not stream.done:
        emitted, drafts, draft_probs = speculative_step(adapter, state, drafts, draft_probs, params, sampler)
        before = len(stream.tokens)
        stream.emit(emitted)
        accept_lengths.append(len(stream.tokens) - before)  # what survives an EOS or max_new_tokens cut
    return accept_lengths
