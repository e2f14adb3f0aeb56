"""Attention masks for every decoding mode and for block-diffusion training.

Convention everywhere: boolean, ``True`` = the query may attend to the key. A *query mask* is the
``[q, q]`` pattern inside the tokens of one forward; `with_prefix` widens it to the 4-D mask
``[B, 1, q, P + q]`` that transformers accepts next to a KV cache holding ``P`` prefix tokens.
"""

from __future__ import annotations

import functools

import torch


def causal(q: int, device: torch.device | str | None = None) -> torch.Tensor:
    """[q, q]: token i sees tokens 0..i (ordinary decoding, commit and verify passes)."""
    return torch.ones(q, q, dtype=torch.bool, device=device).tril()


def bidirectional(q: int, device: torch.device | str | None = None) -> torch.Tensor:
    """[q, q]: every token of a block sees the whole block (denoise and draft passes)."""
    return torch.ones(q, q, dtype=torch.bool, device=device)


@functools.lru_cache(maxsize=8)  # built once per (L, device) and shared: callers must not modify it
def quadratic_spec(block_length: int, device: torch.device | str | None = None) -> torch.Tensor:
    """[L(L+1), L(L+1)] query mask of one TiDAR-style self-speculation step.

    Layout (drafts first, so that keeping the first ``a`` cache entries keeps exactly the accepted
    drafts): rows ``0..L-1`` are the draft tokens d_0..d_{L-1}; then L groups of L masks, group i
    occupying rows ``L + i*L .. L + i*L + L - 1``.

    - draft d_i sees d_0..d_i (causal over the drafts; the prefix is added by `with_prefix`);
    - group i's masks see d_0..d_i and every mask of group i, nothing of other groups.
    """
    L = block_length
    n = L * (L + 1)
    mask = torch.zeros(n, n, dtype=torch.bool, device=device)
    mask[:L, :L] = causal(L, device)
    for i in range(L):
        rows = slice(L + i * L, L + (i + 1) * L)
        mask[rows, : i + 1] = True
        mask[rows, rows] = True
    return mask


@functools.lru_cache(maxsize=8)
def quadratic_spec_positions(block_length: int, device: torch.device | str | None = None) -> torch.Tensor:
    """[L(L+1)] position offsets (from the first draft) matching `quadratic_spec`'s layout.

    Draft d_i sits at offset i; group i drafts the block that follows d_i, offsets i+1 .. i+L.
    """
    L = block_length
    drafts = torch.arange(L, device=device)
    groups = torch.arange(L, device=device)[:, None] + 1 + torch.arange(L, device=device)[None, :]
    return torch.cat([drafts, groups.reshape(-1)])


def with_prefix(query_mask: torch.Tensor, prefix_valid: torch.Tensor) -> torch.Tensor:
    """Combine a query mask with the cached prefix.

    query_mask:   [q, q] or [B, q, q]
    prefix_valid: [B, P] True where the cached position holds a real token (False = left padding)
    returns       [B, 1, q, P + q]
    """
    B, P = prefix_valid.shape
    q = query_mask.shape[-1]
    if query_mask.dim() == 2:
        query_mask = query_mask.expand(B, q, q)
    prefix = prefix_valid[:, None, :].expand(B, q, P)
    return torch.cat([prefix, query_mask], dim=-1)[:, None]


@functools.lru_cache(maxsize=32)  # once per (kind, q, device); shared: callers must not modify it
def shared(kind: str, q: int, device: torch.device | str | None = None) -> torch.Tensor:
    """A cached read-only copy of `causal` or `bidirectional` (the compiled backend's per-shape masks)."""
    return {"causal": causal, "bidirectional": bidirectional}[kind](q, device)


def pad_query_mask(query_mask: torch.Tensor, padded_length: int) -> torch.Tensor:
    """[q, q] or [B, q, q] -> [..., Q, Q] for a forward padded at the end to Q tokens.

    Real queries never see the pad tokens; a pad query sees itself only (a fully masked row gives
    NaN in the next layer, and 0 x NaN would poison the real rows that read nothing from it).
    """
    q, Q = query_mask.shape[-1], padded_length
    if Q == q:
        return query_mask
    padded = torch.eye(Q, dtype=torch.bool, device=query_mask.device).expand(*query_mask.shape[:-2], Q, Q).clone()
    padded[..., :q, :q] = query_mask
    return padded


def in_static_cache(query_mask: torch.Tensor, kept_valid: torch.Tensor, start: int) -> torch.Tensor:
    """The 4-D mask of one forward over a static KV cache (reference_decoders/static_cache.py).

    query_mask: [q, q] or [B, q, q], the forward's own pattern; its tokens are written at slots
                start .. start + q - 1
    kept_valid: [B, M] True at the kept slots (< start) that hold a real token, False elsewhere
    returns     [B, 1, q, M]: kept slots as `kept_valid`, the forward's slots as `query_mask`,
                every later slot (stale or empty) hidden
    """
    B, M = kept_valid.shape
    q = query_mask.shape[-1]
    mask = kept_valid[:, None, None, :].expand(B, 1, q, M).clone()
    mask[:, :, :, start : start + q] = query_mask if query_mask.dim() == 2 else query_mask[:, None]
    return mask


def block_diffusion_training(
    seq_len: int, block_length: int, offset: int = 0, device: torch.device | str | None = None
) -> torch.Tensor:
    """[2n, 2n] mask for the joint AR + block-diffusion objective over ``[x_t ; x_0]``.

    The first n rows are the noisy copy x_t, the last n the clean copy x_0 (Efficient-DLM /
    Nemotron-Labs-Diffusion training). Blocks are ``block_length`` tokens on a grid shifted by
    ``offset`` (the first block is ``offset`` tokens long when offset > 0), because at inference a
    block starts wherever the prompt ends.

    - noisy token in block b: every noisy token of block b (bidirectional) and every clean token
      of blocks < b;
    - clean token i: clean tokens 0..i (causal), so the clean half is an ordinary AR sequence.
    """
    n = seq_len
    block = block_index(n, block_length, offset, device)
    noisy_noisy = block[:, None] == block[None, :]
    noisy_clean = block[None, :] < block[:, None]
    clean_noisy = torch.zeros(n, n, dtype=torch.bool, device=device)
    clean_clean = causal(n, device)
    top = torch.cat([noisy_noisy, noisy_clean], dim=1)
    bottom = torch.cat([clean_noisy, clean_clean], dim=1)
    return torch.cat([top, bottom], dim=0)


def block_index(seq_len: int, block_length: int, offset: int = 0, device=None) -> torch.Tensor:
    """[n] block number of each position on a grid whose first boundary is at ``offset``."""
    if not 0 <= offset < block_length:
        raise ValueError(f"offset must be in [0, block_length), got {offset} for block_length {block_length}")
    shift = (block_length - offset) % block_length
    return (torch.arange(seq_len, device=device) + shift) // block_length
