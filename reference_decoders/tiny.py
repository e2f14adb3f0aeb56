"""Tiny random models for tests, benchmarks and timing cells: real transformers classes, a few layers.

`peakiness` scales the LM head so that softmax confidences spread over (0, 1] instead of hugging
1 / vocab: with it, diffusion thresholds commit several tokens in one pass and are exercised.
"""

from __future__ import annotations

import torch
from transformers import Ministral3Config, Ministral3ForCausalLM, Qwen3Config, Qwen3ForCausalLM

FAMILIES = {"qwen3": (Qwen3Config, Qwen3ForCausalLM), "ministral3": (Ministral3Config, Ministral3ForCausalLM)}


def tiny_model(
    family: str = "qwen3",
    vocab_size: int = 128,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_positions: int = 2048,
    mask_token_id: int | None = None,
    block_size: int = 8,
    eos_token_id: int = 1,
    peakiness: float = 1.0,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
):
    """A randomly initialised causal LM; ``mask_token_id`` defaults to the last vocabulary id."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    config_cls, model_cls = FAMILIES[family]
    extra = {}
    if family == "ministral3":
        # The stock default is the 8B's YaRN setting (factor 16 over 16384 original positions); a
        # tiny model keeps the same rope type and factor with a window that fits its own length,
        # so the Llama-4 query scaling beyond the original window is exercised too.
        extra["rope_parameters"] = {
            "type": "yarn", "rope_theta": 1000000.0, "factor": 16.0,
            "original_max_position_embeddings": max(1, max_positions // 16),
            "max_position_embeddings": max_positions, "beta_fast": 32.0, "beta_slow": 1.0,
            "mscale_all_dim": 1.0, "mscale": 1.0, "llama_4_scaling_beta": 0.1,
        }
    config = config_cls(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=max_positions,
        eos_token_id=eos_token_id,
        bos_token_id=None,
        pad_token_id=None,
        tie_word_embeddings=False,
        **extra,
    )
    config.mask_token_id = vocab_size - 1 if mask_token_id is None else mask_token_id
    config.block_size = block_size
    torch.manual_seed(seed)
    model = model_cls(config).to(dtype).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(peakiness)
    model.generation_config.eos_token_id = eos_token_id
    return model
