"""A static KV cache for the compiled backend: preallocated once, written by pointer, never reallocated.

Storage: ``keys``/``values`` [layers, B, kv_heads, max_positions, head_dim], allocated at
construction. One host integer, ``length``, says how many leading positions hold kept tokens.
Every forward writes its q new keys/values at slots ``length .. length + q - 1`` of every layer
(``write_start``, a one-element device tensor, is set before the forward: the compiled graph
reads it as data, so the pointer never specialises a graph). Afterwards the adapter keeps the
first n of them by moving ``length`` forward by n: the other q - n slots are left as they are and
overwritten by the next forward. Crop = move the pointer back; nothing is copied or freed.

Every forward attends over all ``max_positions`` slots, so the attention mask (built by the
adapter) must hide the slots at and beyond ``length`` that the forward did not write itself:
stale entries there are finite numbers from earlier forwards, never read.

Why not transformers' ``StaticCache``: in transformers 5.24 each of its layers keeps its own
device-side length and advances it inside ``update``, so a crop is one device op per layer and
reading the length (the forward counter reads it for every forward) synchronises with the device.
Here the length lives on the host and is shared by all layers.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


class StaticKVLayer(CacheLayerMixin):
    """One layer's views into the shared storage; writes at the shared ``write_start``."""

    is_compileable = True
    is_croppable = True
    is_sliding = False

    def __init__(self, cache: "StaticKVCache", index: int):
        super().__init__()
        self.owner = cache
        self.keys = cache.keys[index]  # [B, H, M, D] view, static address
        self.values = cache.values[index]
        self.device = self.keys.device
        self.is_initialized = True

    def lazy_initialization(self, key_states, value_states) -> None:  # storage exists from the start
        return None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        """key_states/value_states [B, H, q, D] -> the whole [B, H, M, D] storage (masking hides the rest)."""
        q = key_states.shape[-2]
        slots = self.owner.write_start + torch.arange(q, device=self.device)  # [q]
        self.keys.index_copy_(2, slots, key_states)
        self.values.index_copy_(2, slots, value_states)
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.keys.shape[2], 0

    def get_seq_length(self) -> int:
        return self.owner.length

    def get_max_length(self) -> int:
        return self.keys.shape[2]

    def crop(self, tokens_to_remove: int) -> None:
        self.owner.crop(tokens_to_remove)


class StaticKVCache(Cache):
    """Preallocated KV storage for ``batch_size`` rows of up to ``max_positions`` tokens (module docstring)."""

    def __init__(self, config, batch_size: int, max_positions: int, dtype: torch.dtype, device):
        text = config.get_text_config(decoder=True)
        layers = text.num_hidden_layers
        kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        shape = (layers, batch_size, kv_heads, max_positions, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.write_start = torch.zeros(1, dtype=torch.long, device=device)
        # CUDA graphs may then read and mutate these in place without copying them in and out.
        for tensor in (self.keys, self.values, self.write_start):
            torch._dynamo.mark_static_address(tensor)
        self.length = 0
        self.max_positions = max_positions
        super().__init__(layers=[StaticKVLayer(self, i) for i in range(layers)])

    # -- the three operations the adapter uses ----------------------------------------------------

    def begin_write(self, q: int) -> None:
        """Before a forward of q tokens: its keys/values go to slots length .. length + q - 1."""
        if self.length + q > self.max_positions:
            raise ValueError(f"static cache full: {self.length} kept + {q} new > max_positions {self.max_positions}")
        self.write_start.fill_(self.length)  # a device write with a host scalar: no synchronisation

    def keep(self, n: int) -> None:
        """After a forward: the first n of its tokens stay (the pointer moves past them)."""
        self.length += n

    def crop(self, tokens_to_remove: int) -> None:
        """transformers' convention: crop(-k) drops the last k kept tokens, crop(k >= 0) keeps k tokens."""
        new_length = self.length + tokens_to_remove if tokens_to_remove < 0 else min(tokens_to_remove, self.length)
        if new_length < 0:
            raise ValueError(f"cannot crop {tokens_to_remove}: only {self.length} tokens are cached")
        self.length = new_length

    def reset(self) -> None:
        self.length = 0

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length

    @property
    def storage_bytes(self) -> int:
        return 2 * self.keys.numel() * self.keys.element_size()
