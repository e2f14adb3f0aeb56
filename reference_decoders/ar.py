"""ar: the autoregressive baseline. Causal prefill gives token 1, then one causal pass per token.

Forwards for n new tokens: 1 prefill + (n - 1) decode.
"""

from __future__ import annotations

import torch

from reference_decoders.adapter import ModelAdapter
from reference_decoders.output import TokenStream
from reference_decoders.params import DecodeParams
from reference_decoders.sampling import Sampler


def decode_one_token(adapter: ModelAdapter, state, tokens: torch.Tensor, sampler: Sampler) -> torch.Tensor:
    """tokens [B] -> next tokens [B]."""
    logits = adapter.causal_pass(state, tokens[:, None], "decode")  # [B, 1, V]
    return sampler.tokens(logits[:, -1])


def ar_generate(adapter, prompt_ids, prompt_valid, streams: list[TokenStream], params: DecodeParams, sampler: Sampler) -> list[list[int]]:
    state, logits = adapter.prefill(prompt_ids, prompt_valid)  # logits [B, V]
    tokens = sampler.tokens(logits)  # [B]
    while True:
        for stream, token in zip(streams, tokens.tolist()):
            stream.emit([token])
        if all(stream.done for stream in streams):
            return [[] for _ in streams]  # no acceptance lengths: nothing is verified
        tokens = decode_one_token(adapter, state, tokens, sampler)
