"""The one model adapter every decoding mode runs on.

Three operations, all over a stock transformers causal LM and a `DynamicCache`:

- `causal_pass`: ordinary causal attention over the new tokens; their keys/values stay cached.
- `block_pass`: the block's queries see the cached prefix and (by default) every position of the
  block; the cache is cropped back to the prefix afterwards, so nothing is written.
- `forward` + `keep`: the general form (used by the speculative modes): run any query mask, then
  keep the first ``n`` query tokens in the cache and drop the rest; `keep_rows` keeps a different
  number per row (ragged acceptance), and `select_rows` lets finished rows leave the batch.

Left-padded batches are handled here, once, with explicit position ids and a 4-D boolean mask;
the decoders never see padding.

Two backends run the same operations (`harness.contracts.BACKENDS`): `ModelAdapter` (eager, the
reference: transformers forwards over a `DynamicCache`) and `CompiledAdapter` (the fast path: a
`StaticKVCache` written by pointer, forwards compiled per query shape by `CompiledModel`).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from reference_decoders import masks
from reference_decoders.counting import ForwardCounter
from reference_decoders.static_cache import StaticKVCache


@dataclass
class DecodeState:
    cache: DynamicCache
    valid: torch.Tensor  # [B, P] bool: the cached position holds a real token (not left padding)
    next_position: torch.Tensor  # [B] position id of the next token of each row
    padded: bool  # any False in `valid`; kept as a Python bool to avoid a device sync per step

    @property
    def prefix_length(self) -> int:
        return self.valid.shape[1]


class ModelAdapter:
    # ragged batches: compact the cache once it holds more than this many times the longest row (`keep_rows`)
    compact_ratio = 2.0

    def __init__(self, model: torch.nn.Module, counter: ForwardCounter):
        self.model = model
        self.counter = counter
        self.has_draft_adapter = hasattr(model, "disable_adapter") and hasattr(model, "peft_config")
        self.draft_adapter_used = False
        self.device = next(model.parameters()).device

    # -- state --------------------------------------------------------------------------------

    def new_state(self, batch_size: int) -> DecodeState:
        config = getattr(self.model, "config", None)
        return DecodeState(
            cache=DynamicCache(config=config),
            valid=torch.zeros(batch_size, 0, dtype=torch.bool, device=self.device),
            next_position=torch.zeros(batch_size, dtype=torch.long, device=self.device),
            padded=False,
        )

    def prefill(self, prompt_ids: torch.Tensor, prompt_valid: torch.Tensor | None = None) -> tuple[DecodeState, torch.Tensor]:
        """Causal pass over the prompt. prompt_ids [B, n] (left-padded); returns (state, logits [B, V]) of the last position."""
        B, n = prompt_ids.shape
        state = self.new_state(B)
        if prompt_valid is not None and not bool(prompt_valid.all()):
            state.padded = True
            # Pad queries attend to themselves only: a fully masked row would give NaN keys and
            # values in the next layer, and 0 x NaN poisons every real row.
            query_mask = masks.causal(n, self.device) & (prompt_valid[:, None, :] | torch.eye(n, dtype=torch.bool, device=self.device))
            positions = (prompt_valid.long().cumsum(-1) - 1).clamp(min=0)
            logits = self._run(state, prompt_ids, "prefill", query_mask, positions, logits_to_keep=1)
            state.valid = prompt_valid.clone()
            state.next_position = prompt_valid.long().sum(-1)
        else:
            logits = self._run(state, prompt_ids, "prefill", None, None, logits_to_keep=1)
            state.valid = torch.ones(B, n, dtype=torch.bool, device=self.device)
            state.next_position = torch.full((B,), n, dtype=torch.long, device=self.device)
        return state, logits[:, -1]

    # -- passes ---------------------------------------------------------------------------------

    def causal_pass(self, state: DecodeState, ids: torch.Tensor, kind: str, logits_to_keep: int = 0) -> torch.Tensor:
        """ids [B, q] -> logits [B, q or logits_to_keep, V]; the q tokens are appended to the cache."""
        logits = self.forward(state, ids, kind, None, logits_to_keep=logits_to_keep)
        self.keep(state, ids.shape[1])
        return logits

    def block_pass(
        self,
        state: DecodeState,
        ids: torch.Tensor,
        kind: str,
        query_mask: torch.Tensor | None = None,
        position_offsets: torch.Tensor | None = None,
        draft_adapter: bool = False,
    ) -> torch.Tensor:
        """ids [B, q] -> logits [B, q, V]; reads the cache, leaves it as it was."""
        q = ids.shape[1]
        mask = masks.bidirectional(q, self.device) if query_mask is None else query_mask
        logits = self.forward(state, ids, kind, mask, position_offsets, draft_adapter=draft_adapter)
        self.keep(state, 0)
        return logits

    def forward(
        self,
        state: DecodeState,
        ids: torch.Tensor,
        kind: str,
        query_mask: torch.Tensor | None,
        position_offsets: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        draft_adapter: bool = False,
    ) -> torch.Tensor:
        """One forward of ids [B, q] after the cached prefix; the cache then holds prefix + q until `keep`.

        query_mask None means causal; position_offsets None means consecutive positions.
        """
        q = ids.shape[1]
        if query_mask is None and position_offsets is None and not state.padded:
            # Let transformers build the causal mask itself: this keeps the fast SDPA causal kernels.
            return self._run(state, ids, kind, None, None, logits_to_keep, draft_adapter)
        if query_mask is None:
            query_mask = masks.causal(q, self.device)
        offsets = torch.arange(q, device=self.device) if position_offsets is None else position_offsets
        positions = state.next_position[:, None] + offsets[None, :]
        mask4d = masks.with_prefix(query_mask, state.valid)
        return self._run(state, ids, kind, mask4d, positions, logits_to_keep, draft_adapter, prebuilt=True)

    def keep(self, state: DecodeState, n: int) -> None:
        """After `forward`: keep the first n query tokens of the last forward in the cache, drop the rest."""
        cached = state.cache.get_seq_length()
        drop = cached - state.prefix_length - n
        if drop < 0:
            raise ValueError(f"cannot keep {n} tokens: only {cached - state.prefix_length} were added")
        if drop:
            state.cache.crop(-drop)
        if n:
            B = state.valid.shape[0]
            state.valid = torch.cat([state.valid, torch.ones(B, n, dtype=torch.bool, device=self.device)], dim=1)
            state.next_position = state.next_position + n

    # -- ragged batches (the speculative modes) ---------------------------------------------------

    def prefill_block(
        self, prompt_ids: torch.Tensor, prompt_valid: torch.Tensor | None, block_ids: torch.Tensor, kind: str, logits_to_keep: int
    ) -> tuple[DecodeState, torch.Tensor]:
        """One forward over [prompt ; block], prompt causal, the block's queries seeing the prompt and
        the whole block; only the prompt's KV is kept.

        prompt_ids [B, n] (left-padded), block_ids [B, L] -> (state, logits [B, logits_to_keep, V]).
        """
        B, n = prompt_ids.shape
        L = block_ids.shape[1]
        ids = torch.cat([prompt_ids, block_ids], 1)  # [B, n + L]
        query_mask = masks.causal(n + L, self.device)
        query_mask[n:, n:] = True
        state = self.new_state(B)
        if prompt_valid is None or bool(prompt_valid.all()):
            logits = self.forward(state, ids, kind, query_mask, logits_to_keep=logits_to_keep)
            self.keep(state, n)
            return state, logits
        # Left padding: as in `prefill`, pad queries see themselves only, and positions count real tokens.
        keys_valid = torch.cat([prompt_valid, torch.ones(B, L, dtype=torch.bool, device=self.device)], 1)  # [B, n + L]
        eye = torch.eye(n + L, dtype=torch.bool, device=self.device)
        query_mask = query_mask & (keys_valid[:, None, :] | eye)  # [B, n + L, n + L]
        positions = (keys_valid.long().cumsum(-1) - 1).clamp(min=0)  # [B, n + L]
        logits = self._run(state, ids, kind, query_mask, positions, logits_to_keep=logits_to_keep)
        self.keep(state, n)
        state.valid = prompt_valid.clone()
        state.next_position = prompt_valid.long().sum(-1)
        state.padded = True
        return state, logits

    def keep_rows(self, state: DecodeState, counts: list[int]) -> None:
        """After `forward`: row r keeps the first counts[r] query tokens of the last forward.

        The cache is shared by the rows, so it keeps max(counts) positions for every row; a row's
        positions beyond its own count are marked invalid, which hides them from every later query
        (`masks.with_prefix`), and its position ids continue from its own count. Tokens stay
        those of batch 1 because a hidden key adds exactly nothing to attention.
        """
        longest = max(counts)
        self.keep(state, longest)
        if longest == 0 or min(counts) == longest:
            return
        kept = torch.tensor(counts, device=self.device)  # [B]
        state.valid[:, -longest:] &= torch.arange(longest, device=self.device)[None, :] < kept[:, None]
        state.next_position = state.next_position + kept - longest
        state.padded = True
        # Hidden positions still cost memory and attention reads: once the cache is more than
        # `compact_ratio` times the longest row, drop them (amortised: each compaction at least
        # halves the cache, and the cache then grows by at most L per step).
        if state.prefix_length > self.compact_ratio * int(state.valid.sum(-1).max()):
            self.compact(state)

    def compact(self, state: DecodeState) -> None:
        """Drop the cached positions that no row sees: each row keeps its visible positions, in
        order, right-aligned (rows shorter than the longest are left-padded again). Position ids
        are logical (`next_position`), so nothing a row computes changes, only the cache's layout."""
        layers = getattr(state.cache, "layers", None)
        if layers is None or any(type(layer) is not DynamicLayer for layer in layers):
            return  # sliding-window layers keep their own window of physical positions
        visible = state.valid.sum(-1)  # [B]
        longest = int(visible.max())
        # a stable sort puts each row's hidden positions first and its visible ones last, in order
        index = torch.argsort(state.valid.to(torch.int8), dim=-1, stable=True)[:, -longest:]  # [B, longest]
        for layer in layers:
            if not layer.is_initialized:
                continue
            B, H, _, D = layer.keys.shape
            gather = index[:, None, :, None].expand(B, H, longest, D)
            layer.keys = layer.keys.gather(2, gather)
            layer.values = layer.values.gather(2, gather)
        state.valid = state.valid.gather(-1, index)
        state.padded = not bool(state.valid.all())

    def select_rows(self, state: DecodeState, rows: list[int]) -> None:
        """Keep only batch rows `rows` (in that order): finished rows leave the batch, so later
        forwards neither compute nor count their tokens."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        state.cache.batch_select_indices(index)
        state.valid = state.valid[index]
        state.next_position = state.next_position[index]
        if state.padded:
            state.padded = not bool(state.valid.all())  # one sync per departure; unpadded rows get the fast causal path back

    # -- the one place the model is called -------------------------------------------------------

    def _run(self, state, ids, kind, mask, positions, logits_to_keep=0, draft_adapter=False, prebuilt=False):
        if mask is not None and not prebuilt:
            mask = mask[:, None]  # [B, q, q] -> [B, 1, q, q] (prefill: no cached prefix yet)
        with self.counter.phase(kind), self._adapter_state(draft_adapter):
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                cache=state.cache,
                use_cache=True,
                logits_to_keep=logits_to_keep,
            )
        return out.logits

    def _adapter_state(self, draft_adapter: bool):
        if not self.has_draft_adapter:
            return contextlib.nullcontext()
        if draft_adapter:
            self.draft_adapter_used = True
            return contextlib.nullcontext()
        # The draft LoRA specialises drafting only; every other pass must see the base weights.
        return self.model.disable_adapter()



# -- the compiled backend ---------------------------------------------------------------------------

# torch.compile settings per device type. CUDA: CUDA graphs ("reduce-overhead"), the point of the
# static cache. CPU: the default inductor graphs (C++ kernels); the measured alternatives are in
# reference_decoders/README.md, "Fast path".
COMPILE_OPTIONS = {"cuda": {"mode": "reduce-overhead"}, "cpu": {}}
# Prefill lengths are padded up to the next bucket (a power of two from the first), so prompts of
# many lengths share a few compiled graphs; the static cache is sized in steps of CACHE_STEP.
PREFILL_BUCKET_MIN = 16
CACHE_STEP = 256
# Distinct graphs one decoder process may hold per compiled forward: every query shape and cache
# size is one, and the draft LoRA on/off doubles the draft shape. Dynamo's default (8) is too few.
RECOMPILE_LIMIT = 64


def prefill_bucket(n: int) -> int:
    """The padded length of an n-token prefill."""
    bucket = PREFILL_BUCKET_MIN
    while bucket < n:
        bucket *= 2
    return bucket


def cache_positions(prompt_length: int, max_new_tokens: int, block_length: int | None) -> int:
    """Slots the static cache needs for one decode, rounded up to CACHE_STEP.

    Kept tokens never exceed prompt + max_new_tokens + one block (the last block or accepted run
    is kept whole); a forward writes at most L(L+1) slots past them (quadratic_spec), and the
    padded prefill of [prompt ; MASK x L] writes prefill_bucket(prompt + L) slots.
    """
    L = block_length or 1
    needed = max(prompt_length + max_new_tokens + L + L * (L + 1), prefill_bucket(prompt_length + (block_length or 0)))
    return -(-needed // CACHE_STEP) * CACHE_STEP


class CompiledModel:
    """One model's compiled forward, its pooled static caches and the decode shapes already warm.

    The compiled forward replaces ``module.forward`` only inside `installed()`: the module's
    ``__call__`` (and so the forward counter's hooks) stays eager around it, and outside the block
    the same model runs the eager backend untouched. Caches are pooled per (batch, slots) and
    reused across decodes, so the compiled graphs see the same static buffers every time.
    """

    def __init__(self, module: torch.nn.Module, device: torch.device):
        dynamo = torch._dynamo.config
        for name in ("recompile_limit", "cache_size_limit"):  # the name changed across torch versions
            if hasattr(dynamo, name):
                setattr(dynamo, name, max(getattr(dynamo, name), RECOMPILE_LIMIT))
        if hasattr(dynamo, "accumulated_recompile_limit"):
            dynamo.accumulated_recompile_limit = max(dynamo.accumulated_recompile_limit, 8 * RECOMPILE_LIMIT)
        self.module = module
        self.device = device
        self.forward = torch.compile(module.forward, dynamic=False, **COMPILE_OPTIONS.get(device.type, {}))
        self.caches: dict[tuple[int, int], StaticKVCache] = {}
        self.warm: set[tuple] = set()

    @contextlib.contextmanager
    def installed(self):
        self.module.forward = self.forward
        try:
            yield self
        finally:
            del self.module.forward  # back to the class's own (eager) forward

    def cache(self, batch_size: int, max_positions: int) -> StaticKVCache:
        key = (batch_size, max_positions)
        if key not in self.caches:
            dtype = next(self.module.parameters()).dtype
            self.caches[key] = StaticKVCache(self.module.config, batch_size, max_positions, dtype, self.device)
        cache = self.caches[key]
        cache.reset()
        return cache

    def warm_up(self, key: tuple, decode) -> float:
        """Run ``decode()`` once if ``key`` (every shape a decode will use) is new; returns its seconds (0 if warm).

        A whole untimed decode with the same shapes compiles every graph the timed one will call,
        including data-dependent paths (the draft LoRA on and off, every pass kind).
        """
        if key in self.warm:
            return 0.0
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        started = time.perf_counter()
        decode()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.warm.add(key)
        return time.perf_counter() - started


_COMPILED: "weakref.WeakKeyDictionary[torch.nn.Module, CompiledModel]" = weakref.WeakKeyDictionary()


def compiled_model(module: torch.nn.Module) -> CompiledModel:
    """The process-wide `CompiledModel` of ``module`` (created on first use)."""
    if module not in _COMPILED:
        _COMPILED[module] = CompiledModel(module, next(module.parameters()).device)
    return _COMPILED[module]


@dataclass
class StaticDecodeState(DecodeState):
    """DecodeState over a `StaticKVCache`: ``valid`` is the cache's full [B, M] slot mask."""

    last_query: int = 0  # tokens the last forward wrote (what `keep` may keep)

    @property
    def prefix_length(self) -> int:
        return self.cache.length


class CompiledAdapter(ModelAdapter):
    """The adapter's operations over a static cache and compiled forwards (module docstring).

    Every forward gets an explicit [B, 1, q, M] mask and explicit positions, so a query shape is
    one graph whatever the cache holds; keep and crop move a host pointer. No step reads a device
    value on the host: the only synchronisations are the decoders' own token reads.
    """

    def __init__(self, model: torch.nn.Module, counter: ForwardCounter, compiled: CompiledModel, max_positions: int):
        super().__init__(model, counter)
        self.compiled = compiled
        self.max_positions = max_positions
        self._arange = torch.arange(max_positions, device=self.device)

    def new_state(self, batch_size: int) -> StaticDecodeState:
        cache = self.compiled.cache(batch_size, self.max_positions)
        return StaticDecodeState(
            cache=cache,
            valid=torch.zeros(batch_size, self.max_positions, dtype=torch.bool, device=self.device),
            next_position=torch.zeros(batch_size, dtype=torch.long, device=self.device),
            padded=False,
        )

    def prefill(self, prompt_ids: torch.Tensor, prompt_valid: torch.Tensor | None = None):
        B, n = prompt_ids.shape
        state = self.new_state(B)
        causal = masks.shared("causal", n, self.device)
        if prompt_valid is None:
            query_mask, positions = causal, self._arange[:n].expand(B, n)
        else:
            state.padded = True
            eye = torch.eye(n, dtype=torch.bool, device=self.device)
            query_mask = causal & (prompt_valid[:, None, :] | eye)  # [B, n, n]; pad queries see themselves
            positions = (prompt_valid.long().cumsum(-1) - 1).clamp(min=0)
        logits = self._static_forward(state, prompt_ids, "prefill", query_mask, positions, logits_to_keep=1)
        self._keep(state, n, prompt_valid)
        state.next_position = positions[:, -1] + 1
        return state, logits[:, -1]

    def forward(self, state, ids, kind, query_mask, position_offsets=None, logits_to_keep=0, draft_adapter=False):
        q = ids.shape[1]
        if query_mask is None:
            query_mask = masks.shared("causal", q, self.device)
        offsets = self._arange[:q] if position_offsets is None else position_offsets
        positions = state.next_position[:, None] + offsets[None, :]
        return self._static_forward(state, ids, kind, query_mask, positions, logits_to_keep, draft_adapter)

    def keep(self, state, n: int) -> None:
        self._keep(state, n, None)

    def _keep(self, state, n: int, valid: torch.Tensor | None) -> None:
        if n > state.last_query:
            raise ValueError(f"cannot keep {n} tokens: only {state.last_query} were added")
        start = state.cache.length
        if n:
            state.valid[:, start : start + n] = True if valid is None else valid[:, :n]
            state.next_position = state.next_position + n
        state.cache.keep(n)
        state.last_query = 0

    def _static_forward(self, state, ids, kind, query_mask, positions, logits_to_keep=0, draft_adapter=False):
        """ids [B, q] at ``positions`` [B, q] with ``query_mask`` -> logits [B, q or logits_to_keep, V].

        A prefill is padded at the end to its bucket; its logits are picked by index, so one graph
        serves every prompt length of the bucket.
        """
        B, q = ids.shape
        Q = prefill_bucket(q) if kind == "prefill" else q
        keep_logits = logits_to_keep
        if Q > q:
            ids = torch.cat([ids, ids.new_zeros(B, Q - q)], dim=1)
            positions = torch.cat([positions, positions[:, -1:] + self._arange[1 : Q - q + 1]], dim=1)
            query_mask = masks.pad_query_mask(query_mask, Q)
        if kind == "prefill":
            keep_logits = self._arange[q - logits_to_keep : q] if logits_to_keep else self._arange[:q]
        start = state.cache.length
        mask = masks.in_static_cache(query_mask, state.valid, start)  # [B, 1, Q, M]
        state.cache.begin_write(Q)
        state.last_query = q
        if self.device.type == "cuda":
            # Outputs of the previous CUDA-graph replay may be overwritten from here on: the
            # decoders have consumed them (everything they keep is a fresh tensor).
            torch.compiler.cudagraph_mark_step_begin()
        return self._run(state, ids, kind, mask, positions, keep_logits, draft_adapter, prebuilt=True)
