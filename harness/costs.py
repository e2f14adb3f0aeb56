"""Roofline, cost and energy formulas: pure functions of recorded values, never stored.

Every input these need is in each row (``model_*`` shape columns, ``hw_*`` profile columns,
``forward_*`` lists, ``gpu_energy_j``), so the figures can be re-derived from parquet alone, with
another price or another bandwidth if the reader wants; `harness.figures.derive` applies them to
every row.

  KV bytes per token      2 (K and V) x layers x KV heads x head_dim x bytes per element
  memory floor of a fwd   (weights a forward reads + KV entries it reads x KV bytes per token)
                          / memory bandwidth
  compute floor of a fwd  (2 x transformer-block parameters x query tokens
                           + 4 x layers x heads x head_dim x query tokens x cached tokens per row)
                          / dense bf16 rate
  roofline floor of a fwd max(memory floor, compute floor); a row's floor is the sum over its forwards
  roofline ratio          measured forward time / roofline floor (>= 1; 1 = at the hardware's limit)
  $ per 1M output tokens  price per GPU-hour x GPUs / (output tokens/s x 3600) x 1e6
  J per output token      GPU energy over the measured region / output tokens in that region

Both floors are lower bounds: the memory floor leaves out activations and the input-embedding
table (a forward reads only its own tokens' rows of it); the compute floor leaves out the LM head,
the attention inside the new block and every elementwise operation. A ratio near 1 therefore
means the forward cannot get much faster on that hardware; a large ratio means overhead
(kernel launches, host work, unfused kernels) dominates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

GB = 1e9  # bandwidths in the hardware profiles are decimal GB/s, as in the vendors' datasheets
TERA = 1e12


# -- the model's side: what a forward must move and compute --------------------------------------


@dataclass(frozen=True)
class ModelShape:
    """The model facts the roofline needs; recorded in every row as ``model_*`` columns."""

    num_layers: int
    num_attention_heads: int
    head_dim: int
    kv_bytes_per_token: int  # K and V of one token over all layers, at the cache dtype
    forward_weight_bytes: int  # weights every forward reads (all but the input-embedding table)
    block_parameters: int  # parameters of the transformer layers: each query token multiplies through them

    def columns(self) -> dict:
        return {f"model_{k}": v for k, v in asdict(self).items()}


def kv_bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int, bytes_per_element: int) -> int:
    return 2 * num_layers * num_kv_heads * head_dim * bytes_per_element


def model_shape(model) -> ModelShape:
    """The shape of a loaded transformers causal LM (a peft wrapper is looked through)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    layers = int(config.num_hidden_layers)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    element = next(base.parameters()).element_size()
    embedding = base.get_input_embeddings().weight
    head = base.get_output_embeddings()
    tied = head is not None and head.weight is embedding
    all_bytes = sum(p.numel() * p.element_size() for p in base.parameters())
    embedding_bytes = 0 if tied else embedding.numel() * embedding.element_size()
    blocks = base.get_decoder().layers
    return ModelShape(
        num_layers=layers,
        num_attention_heads=heads,
        head_dim=head_dim,
        kv_bytes_per_token=kv_bytes_per_token(layers, kv_heads, head_dim, element),
        forward_weight_bytes=all_bytes - embedding_bytes,
        block_parameters=sum(p.numel() for p in blocks.parameters()),
    )


# -- floors of one forward -----------------------------------------------------------------------


def memory_floor_s(weight_bytes: float, kv_bytes_per_token: float, cache_tokens: float, bandwidth_gbs: float) -> float:
    """Seconds to read the weights and ``cache_tokens`` KV entries (batch rows x cached length) once."""
    return (weight_bytes + kv_bytes_per_token * cache_tokens) / (bandwidth_gbs * GB)


def forward_flops(block_parameters: float, query_tokens: float, cache_tokens: float, batch_rows: int,
                  num_layers: int, num_heads: int, head_dim: int) -> float:
    """A lower bound of the FLOPs of one forward: the layers' matmuls plus attention to the cache.

    ``query_tokens`` and ``cache_tokens`` are totals over the batch; each query attends at least to
    its own row's cache, ``cache_tokens / batch_rows`` positions, at 4 x heads x head_dim FLOPs
    (QK^T and PV) per layer.
    """
    attention_pairs = query_tokens * cache_tokens / max(batch_rows, 1)
    return 2.0 * block_parameters * query_tokens + 4.0 * num_layers * num_heads * head_dim * attention_pairs


def compute_floor_s(flops: float, tflops: float) -> float:
    return flops / (tflops * TERA)


def roofline_ratio(measured_s: float, floor_s: float) -> float:
    return measured_s / floor_s if floor_s and floor_s > 0 else math.nan


# -- cost and energy ---------------------------------------------------------------------------


def usd_per_million_tokens(price_per_gpu_hour: float, gpus: int, tokens_per_s: float) -> float:
    """$ per 1M output tokens = price per GPU-hour x GPUs / (output tokens/s x 3600) x 1e6."""
    if not tokens_per_s or tokens_per_s <= 0:
        return math.nan
    return price_per_gpu_hour * gpus / (tokens_per_s * 3600.0) * 1e6


def joules_per_token(energy_j: float, tokens: float) -> float:
    return energy_j / tokens if tokens and tokens > 0 else math.nan
