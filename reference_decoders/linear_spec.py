"""linear_spec: self-speculation with a diffusion draft and a causal verify (the vendor's
``linear_spec_generate``, which decodes batch 1; here any batch, rows accepting independently).

Causal prefill gives t1. Each round over block = [seed, MASK x (L-1)]:
  draft:  block passes (draft LoRA on, if loaded) fill the masks; threshold 0 fills all of them
          in one pass, a threshold > 0 repeats diffusion-style commits until no MASK is left;
  verify: one causal pass over the block (LoRA off) writes its KV; ar[i] predicts block[i+1];
  accept: 1 + the longest run with ar[i] == block[i+1]; emit ar[:accepted]; keep prefix +
          accepted tokens in the cache; seed = ar[accepted - 1].
Greedy output equals ar exactly. With a temperature the output follows ar's distribution exactly
under either acceptance rule (reference_decoders.sampling):

- ``sample_match`` (the vendor's): drafts are drawn and committed as the vendor does, each
  masked position by the confidence of its own sampled token; any drafts are fine for this rule.
- ``speculative``: min(1, p/q) is exact only if each draft x_i was drawn from the recorded q_i
  given the drafts to its left. Committing a position because its *sampled* token is confident
  breaks that (a committed draft is q conditioned on being confident), and so does conditioning
  later passes on sampled drafts, because a position committed early then shapes the q of
  positions to its left. So the draft passes run on the greedy skeleton: the pass sequence, the
  commit choices and every later pass's input are those greedy drafting would make (argmax
  tokens, their confidence), and each position's draft is sampled from its distribution in the
  pass that commits it. Given the prefix and the seed the passes are then fixed, and the drafts
  are independent draws from the recorded q. At threshold 0 (one pass) this is the vendor's
  drafting.

Batches (left-padded prompts): every row drafts and verifies in the same forwards and accepts
its own number of drafts (ragged); the cache keeps, per row, only its accepted tokens (the others
are hidden by the mask, `ModelAdapter.keep_rows`), and a row that has met EOS or max_new_tokens
leaves the batch (`ModelAdapter.select_rows`). With a threshold, a round runs draft passes until
every row's masks are filled; a row already filled commits nothing in the extra passes, so it
drafts exactly what it would alone. Tokens equal batch 1's (greedy); with a temperature, each row
follows ar's distribution because every row's draws are fresh draws of the shared generator.

Forwards: 1 prefill + per round (draft passes + 1 verify); at batch > 1 each forward is one of
the batch, counted once (README, "Batched self-speculation").
"""

from __future__ import annotations

import torch

from reference_decoders.adapter import ModelAdapter
from reference_decoders.diffusion import select_commits
from reference_decoders.output import TokenStream
from reference_decoders.params import DecodeParams
from reference_decoders.ragged import leave_finished
from reference_decoders.sampling import Sampler, most_likely


def draft_block(adapter: ModelAdapter, state, block: torch.Tensor, params: DecodeParams, sampler: Sampler):
    """block [B, L] = [seed, MASK...] -> (drafted block [B, L], draft distributions [B, L, V] or None).

    Distributions are returned only when the acceptance rule reads them (`Sampler.needs_draft_probs`);
    drafting then runs on the greedy skeleton (module docstring).
    """
    masked = torch.ones_like(block, dtype=torch.bool)
    masked[:, 0] = False
    on_skeleton = sampler.needs_draft_probs
    drafts, draft_probs = block, None
    threshold = params.threshold or 0.0
    while bool(masked.any()):
        logits = adapter.block_pass(state, block, "draft", draft_adapter=params.use_draft_adapter)  # [B, L, V]
        x0, confidence = most_likely(logits) if on_skeleton else sampler.pick(logits)
        commit = select_commits(masked, confidence, threshold, None)  # nothing for a row whose masks are filled
        block = torch.where(commit, x0, block)  # what the next draft pass sees
        if on_skeleton:
            drafts = torch.where(commit, sampler.tokens(logits), drafts)
            probs = sampler.probs(logits)  # [B, L, V]
            draft_probs = probs if draft_probs is None else torch.where(commit[..., None], probs, draft_probs)
        else:
            drafts = block
        masked &= ~commit
    return drafts, draft_probs


def verify_block(adapter: ModelAdapter, state, block: torch.Tensor, draft_probs, sampler: Sampler) -> list[list[int]]:
    """Causal pass over the drafted blocks [B, L]; returns each row's accepted tokens (drafts kept + the next token)."""
    logits = adapter.forward(state, block, "verify", None)  # [B, L, V]
    drafts = block[:, 1:]  # [B, L-1]
    verdicts = sampler.accept_rows(drafts, None if draft_probs is None else draft_probs[:, 1:], logits)
    # seed + accepted drafts per row; the next token is the row's new seed, not cached yet
    adapter.keep_rows(state, [1 + n for n, _ in verdicts])
    drafts = drafts.tolist()
    return [row[:n] + [next_token] for row, (n, next_token) in zip(drafts, verdicts)]


def linear_spec_generate(adapter, prompt_ids, prompt_valid, streams: list[TokenStream], params: DecodeParams, sampler: Sampler) -> list[list[int]]:
    """-> acceptance lengths per row: tokens each verify step added to the row's output."""
    state, logits = adapter.prefill(prompt_ids, prompt_valid)
    seeds = sampler.tokens(logits).tolist()  # [B]
    for stream, seed in zip(streams, seeds):
        stream.emit([seed])
    accept_lengths: list[list[int]] = [[] for _ in streams]
    rows = list(range(len(streams)))  # batch row i decodes streams[rows[i]]
    rows, seeds = leave_finished(adapter, state, streams, rows, seeds)
    L = params.block_length
    while rows:
        block = torch.full((len(rows), L), params.mask_token_id, dtype=torch.long, device=adapter.device)
        block[:, 0] = torch.tensor(seeds, device=adapter.device)
        block, draft_probs = draft_block(adapter, state, block, params, sampler)
        accepted = verify_block(adapter, state, block, draft_probs, sampler)
        seeds = [tokens[-1] for tokens in accepted]
        for row, tokens in zip(rows, accepted):
            accept_lengths[row].append(streams[row].emit(tokens))
        rows, seeds = leave_finished(adapter, state, streams, rows, seeds)
    return accept_lengths

