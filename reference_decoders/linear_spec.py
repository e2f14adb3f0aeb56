"""linear_spec: self-speculation with a diffusion draft and a causal verify (the vendor's
``linear_spec_generate``), batch 1.

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

Forwards: 1 prefill + per round (draft passes + 1 verify).
"""

from __future__ import annotations

import torch

from reference_decoders.adapter import ModelAdapter
from reference_decoders.diffusion import select_commits
from reference_decoders.output import TokenStream
from reference_decoders.params import DecodeParams
from reference_decoders.sampling import Sampler, most_likely


def draft_block(adapter: ModelAdapter, state, block: torch.Tensor, params: DecodeParams, sampler: Sampler):
    """block [1, L] = [seed, MASK...] -> (drafted block [1, L], draft distributions [L, V] or None).

    Distributions are returned only when the acceptance rule reads them (`Sampler.needs_draft_probs`);
    drafting then runs on the greedy skeleton (module docstring).
    """
    masked = torch.ones_like(block, dtype=torch.bool)
    masked[:, 0] = False
    on_skeleton = sampler.needs_draft_probs
    drafts, draft_probs = block, None
    threshold = params.threshold or 0.0
    while bool(masked.any()):
        logits = adapter.block_pass(state, block, "draft", draft_adapter=params.use_draft_adapter)  # [1, L, V]
        x0, confidence = most_likely(logits) if on_skeleton else sampler.pick(logits)
        commit = select_commits(masked, confidence, threshold, None)
        block = torch.where(commit, x0, block)  # what the next draft pass sees
        if on_skeleton:
            drafts = torch.where(commit, sampler.tokens(logits), drafts)
            probs = sampler.probs(logits[0])  # [L, V]
            draft_probs = probs if draft_probs is None else torch.where(commit[0, :, None], probs, draft_probs)
        else:
            drafts = block
        masked &= ~commit
    return drafts, draft_probs


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
