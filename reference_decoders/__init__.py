"""Reference decoders: our own implementation of the four Nemotron-Labs-Diffusion decoding modes.

    from reference_decoders import generate
    result = generate(model, prompt_ids, "linear_spec", max_new_tokens=64, block_length=32)
    result.tokens, result.forwards, result.query_tokens, result.accept_lengths

`model` is a stock transformers causal LM (Qwen3ForCausalLM, Ministral3ForCausalLM, ...), optionally
a peft model carrying the draft LoRA. Every forward is counted by a hook on the model.
``backend="compiled"`` runs the same decoders over a static KV cache and compiled forwards
(reference_decoders/adapter.py; README "Fast path").
"""

from __future__ import annotations

import dataclasses
import time

import torch

from harness.contracts import BACKENDS, BATCHED_MODES, COMPILED_BATCHED_MODES, FORWARD_KINDS, SPECULATIVE_MODES
from reference_decoders import adapter as adapters
from reference_decoders.adapter import ModelAdapter
from reference_decoders.ar import ar_generate
from reference_decoders.conventions import RULES as VENDOR_NFE_RULES
from reference_decoders.conventions import vendor_nfe, vendor_tokens
from reference_decoders.counting import ForwardCounter
from reference_decoders.diffusion import diffusion_generate
from reference_decoders.linear_spec import linear_spec_generate
from reference_decoders.output import GenerateResult, TokenStream
from reference_decoders.params import MODES, DecodeParams
from reference_decoders.quadratic_spec import quadratic_spec_generate
from reference_decoders.sampling import Sampler

__all__ = ["generate", "generate_batch", "GenerateResult", "DecodeParams", "MODES", "FORWARD_KINDS", "BACKENDS"]

DECODERS = {
    "ar": ar_generate,
    "diffusion": diffusion_generate,
    "linear_spec": linear_spec_generate,
    "quadratic_spec": quadratic_spec_generate,
}


def generate(model, prompt_ids: torch.Tensor, mode: str, *, time_forwards: bool = True, backend: str = "eager", **params) -> GenerateResult:
    """Decode one prompt ``prompt_ids [1, n]`` in ``mode``; see `DecodeParams` for the parameters."""
    if prompt_ids.dim() != 2 or prompt_ids.shape[0] != 1:
        raise ValueError(f"prompt_ids must be [1, n], got {tuple(prompt_ids.shape)}; use generate_batch for several prompts")
    return generate_batch(model, [prompt_ids[0].tolist()], mode, time_forwards=time_forwards, backend=backend, **params)[0]


def generate_batch(
    model, prompts: list[list[int]], mode: str, *, time_forwards: bool = True, backend: str = "eager", **params
) -> list[GenerateResult]:
    """Decode several prompts together (left-padded), in any mode.

    Forward counts are those of the whole batch: each result carries the same ``forwards``;
    acceptance lengths are each row's own.
    ``time_forwards`` times every forward through the counting hook (CUDA events on a GPU, host
    time on the CPU; `reference_decoders.counting`). ``backend`` is one of `BACKENDS`; with
    ``compiled``, a decode whose shapes are new is preceded by one untimed warm-up decode that
    compiles them, reported as ``compile_seconds`` and kept out of every timing of the result.
    """
    decode_params = resolve_params(model, params)
    decode_params.check(mode)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if len(prompts) > 1 and mode not in BATCHED_MODES:
        raise ValueError(f"mode {mode!r} decodes batch 1 only; batched modes: {', '.join(BATCHED_MODES)}")
    if backend == "compiled" and len(prompts) > 1 and mode not in COMPILED_BATCHED_MODES:
        raise ValueError(f"the compiled backend decodes mode {mode!r} at batch 1 only; at batch > 1 it runs "
                         f"{', '.join(COMPILED_BATCHED_MODES)}; use backend='eager' for batched {mode}")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    if backend == "eager":
        return decode_batch(model, prompts, mode, decode_params, time_forwards, None, 0.0)
    compiled = adapters.compiled_model(counting_target(model))
    n = max(len(p) for p in prompts)
    block_length = None if mode == "ar" else decode_params.block_length
    max_positions = adapters.cache_positions(n, decode_params.max_new_tokens, block_length)
    padded = any(len(p) < n for p in prompts)
    prefill_length = n + (block_length or 0) if mode == "quadratic_spec" else n
    # Everything that decides which graphs a decode calls: batch, cache slots, prefill bucket,
    # block length, padding (a [B, q, q] prefill mask), the draft LoRA's use.
    shapes = (mode, len(prompts), max_positions, adapters.prefill_bucket(prefill_length), block_length, padded,
              decode_params.use_draft_adapter)
    with compiled.installed():
        # The warm-up decode never stops at EOS, so it reaches every pass kind of the timed one.
        warm_params = dataclasses.replace(decode_params, eos_token_ids=())
        compile_seconds = compiled.warm_up(
            shapes, lambda: decode_batch(model, prompts, mode, warm_params, False, (compiled, max_positions), 0.0))
        return decode_batch(model, prompts, mode, decode_params, time_forwards, (compiled, max_positions), compile_seconds)


def decode_batch(model, prompts, mode, decode_params: DecodeParams, time_forwards: bool, compiled, compile_seconds: float):
    """One decode with checked parameters; ``compiled`` = (CompiledModel, cache slots) or None for eager."""
    device = next(model.parameters()).device
    prompt_ids, prompt_valid = left_pad(prompts, device)
    generator = torch.Generator(device=device).manual_seed(decode_params.seed)
    sampler = Sampler(decode_params.temperature, generator, decode_params.acceptance)

    counter = ForwardCounter(counting_target(model), time_forwards=time_forwards)
    adapter = ModelAdapter(model, counter) if compiled is None else adapters.CompiledAdapter(model, counter, *compiled)
    if device.type == "cuda":
        # Request time starts on an idle device: nothing queued earlier (the prompt's copy, a
        # previous request) is billed to this one. Tokens are final when read back to the host,
        # which synchronises, so host time is valid at both ends.
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    streams = [TokenStream(decode_params.max_new_tokens, decode_params.eos_token_ids, started) for _ in prompts]
    try:
        with torch.inference_mode():
            accept_lengths = DECODERS[mode](adapter, prompt_ids, prompt_valid, streams, decode_params, sampler)  # per row
    finally:
        counter.close()

    forwards = counter.log.forwards_by_kind()
    query_tokens = counter.log.query_tokens_by_kind()
    return [
        GenerateResult(
            mode=mode,
            tokens=stream.tokens,
            forwards=forwards,
            query_tokens=query_tokens,
            accept_lengths=row_accept_lengths,
            forward_log=counter.log,
            emit_seconds=stream.emit_seconds,
            emit_counts=stream.emit_counts,
            finish_reason=stream.finish_reason,
            tokens_untrimmed=vendor_tokens(mode, stream.tokens_untrimmed, decode_params.max_new_tokens),
            draft_adapter_active=adapter.draft_adapter_used if adapter.has_draft_adapter else None,
            vendor_nfe=vendor_nfe(mode, forwards, len(stream.tokens), stream.final_emit_cut),
            vendor_nfe_rule=VENDOR_NFE_RULES[mode],
            acceptance_rule=sampler.acceptance_rule if mode in SPECULATIVE_MODES else None,
            batch_size=len(prompts),
            params=decode_params.as_dict(),
            timing_method="perf_counter+cuda_sync" if device.type == "cuda" else "perf_counter",
            backend="eager" if compiled is None else "compiled",
            compile_seconds=None if compiled is None else compile_seconds,
        )
        for stream, row_accept_lengths in zip(streams, accept_lengths)
    ]


def resolve_params(model, params: dict) -> DecodeParams:
    """Fill mask id and EOS ids from the checkpoint's config when the caller did not give them."""
    params = dict(params)
    config = getattr(model, "config", None)
    if params.get("mask_token_id") is None:
        params["mask_token_id"] = getattr(config, "mask_token_id", None)
    eos = params.pop("eos_token_id", None)
    if eos is None:
        eos = params.pop("eos_token_ids", None)
    if eos is None:
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = getattr(config, "eos_token_id", None)
    params["eos_token_ids"] = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (int(eos),))
    unknown = set(params) - set(DecodeParams.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown decode parameter(s) {sorted(unknown)}; valid: {sorted(DecodeParams.__dataclass_fields__)}")
    return DecodeParams(**params)


def left_pad(prompts: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """-> ids [B, n] left-padded with token 0, valid [B, n] (None when no row is padded)."""
    n = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), n, dtype=torch.long)
    valid = torch.zeros(len(prompts), n, dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        ids[row, n - len(prompt) :] = torch.tensor(prompt)
        valid[row, n - len(prompt) :] = True
    return ids.to(device), None if bool(valid.all()) else valid.to(device)


def counting_target(model) -> torch.nn.Module:
    """The module whose forward every pass goes through: the base model under a peft wrapper."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
