"""quadratic_spec: TiDAR-style self-speculation, drafting and verifying in the same forward (the
vendor's internal ``self_spec_generate``, batch 1; here any batch, rows accepting independently).

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

Batches (left-padded prompts): every row runs the same L(L+1)-token forward and accepts its own
number of drafts; the cache keeps, per row, only its accepted drafts (`ModelAdapter.keep_rows`
hides the rest), each row's next drafts come from its own accepted group, and a row that has met
EOS or max_new_tokens leaves the batch. Tokens equal batch 1's (greedy).
"""

from __future__ import annotations

import torch

from reference_decoders import masks
from reference_decoders.adapter import ModelAdapter
from reference_decoders.output import TokenStream
from reference_decoders.params import DecodeParams
from reference_decoders.ragged import leave_finished
from reference_decoders.sampling import Sampler


def prefill_and_draft(adapter: ModelAdapter, prompt_ids: torch.Tensor, prompt_valid, params: DecodeParams, sampler: Sampler):
    """prompts [B, n] (left-padded) -> (state holding the prompts' KV, drafts [B, L], their distributions [B, L, V] or None)."""
    B, L = prompt_ids.shape[0], params.block_length
    mask_tokens = torch.full((B, L), params.mask_token_id, dtype=torch.long, device=adapter.device)
    # rows: the last prompt position (AR logit for position n), then the masks at n .. n+L-1
    state, logits = adapter.prefill_block(prompt_ids, prompt_valid, mask_tokens, "prefill", logits_to_keep=L + 1)  # [B, L+1, V]
    draft_logits = torch.cat([logits[:, :1], logits[:, 2:]], 1)  # the AR logit replaces the first mask's
    drafts = sampler.tokens(draft_logits)
    return state, drafts, sampler.probs(draft_logits) if sampler.needs_draft_probs else None


def speculative_step(adapter: ModelAdapter, state, drafts: torch.Tensor, draft_probs, params: DecodeParams, sampler: Sampler):
    """One L(L+1)-token forward per row: verify `drafts` [B, L], draft the next block.

    Returns (newly final tokens per row, next drafts [B, L], their distributions [B, L, V] or None).
    """
    B, L = drafts.shape
    mask_tokens = torch.full((B, L * L), params.mask_token_id, dtype=torch.long, device=adapter.device)
    query = torch.cat([drafts, mask_tokens], 1)  # [B, L(L+1)]
    logits = adapter.forward(
        state,
        query,
        "quadratic",
        masks.quadratic_spec(L, adapter.device),
        masks.quadratic_spec_positions(L, adapter.device),
    )  # [B, L(L+1), V]
    verdicts = sampler.accept_rows(drafts[:, 1:], None if draft_probs is None else draft_probs[:, 1:], logits[:, :L])
    accepted = [1 + n for n, _ in verdicts]  # d_0 .. d_n per row
    adapter.keep_rows(state, accepted)
    # row r's group (accepted_r - 1): mask j drafts the token `accepted_r + j` after d_0
    starts = L + (torch.tensor(accepted, device=adapter.device) - 1) * L  # [B]
    index = starts[:, None] + torch.arange(L, device=adapter.device)[None, :]  # [B, L]
    group = logits[torch.arange(B, device=adapter.device)[:, None], index]  # [B, L, V]
    next_tokens = torch.tensor([t for _, t in verdicts], device=adapter.device)
    next_drafts = torch.cat([next_tokens[:, None], sampler.tokens(group[:, 1:])], 1)
    next_probs = sampler.probs(group) if sampler.needs_draft_probs else None
    emitted = [row[1:a] + [t] for row, a, (_, t) in zip(drafts.tolist(), accepted, verdicts)]
    return emitted, next_drafts, next_probs


def quadratic_spec_generate(adapter, prompt_ids, prompt_valid, streams: list[TokenStream], params: DecodeParams, sampler: Sampler) -> list[list[int]]:
    """-> acceptance lengths per row: tokens each quadratic step added to the row's output."""
    state, drafts, draft_probs = prefill_and_draft(adapter, prompt_ids, prompt_valid, params, sampler)
    for stream, token in zip(streams, drafts[:, 0].tolist()):
        stream.emit([token])  # d_0 is the AR token: final at once
    accept_lengths: list[list[int]] = [[] for _ in streams]
    rows = list(range(len(streams)))  # batch row i decodes streams[rows[i]]
    rows, drafts, draft_probs = leave_finished(adapter, state, streams, rows, drafts, draft_probs)
    while rows:
        emitted, drafts, draft_probs = speculative_step(adapter, state, drafts, draft_probs, params, sampler)
        for row, tokens in zip(rows, emitted):
            accept_lengths[row].append(streams[row].emit(tokens))  # what survives an EOS or max_new_tokens cut
        rows, drafts, draft_probs = leave_finished(adapter, state, streams, rows, drafts, draft_probs)
    return accept_lengths
