"""Decoder overhead and ar speed: a benchmark that prints figures (not a test).

    python -m reference_decoders.benchmark [--hidden 256 --layers 4 --vocab 8192 --tokens 64 --repeats 5]

1. Overhead per mode. A first decode records every model call the decoder makes (its exact
   arguments) and every cache crop, in order. The same calls are then replayed in a bare loop
   (model call, crop, nothing else). Overhead = decoder time / bare-loop time - 1: what the
   decoder's own logic (sampling, commits, masks, bookkeeping, counting hooks) costs per forward,
   also printed in microseconds per forward: that absolute cost does not grow with the model, so
   its share shrinks as forwards get longer. Goal: under 5%.
2. ar tokens/s against transformers' greedy `generate` for the same prompt and length (both
   forced to the full length). Goal: at least 1.0x.
Timings are medians of `--repeats` runs, the two sides of each comparison interleaved after a
warm-up of each, wall clock (perf_counter) on the CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from transformers import DynamicCache

from reference_decoders import generate
from reference_decoders.tiny import tiny_model

MODES = {
    "ar": {},
    "diffusion": {"block_length": 8, "threshold": 0.9},
    "linear_spec": {"block_length": 8},
    "quadratic_spec": {"block_length": 8},
}


def record_calls(model, prompt, mode, params) -> list[tuple]:
    """Run the decoder once; return its model calls and cache crops, in order, as replayable ops."""
    ops: list[tuple] = []

    def on_forward(module, args, kwargs):
        kept = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in kwargs.items() if k != "cache"}
        ops.append(("forward", kept))

    original_crop = DynamicCache.crop

    def crop(self, n):
        ops.append(("crop", n))
        return original_crop(self, n)

    handle = model.register_forward_pre_hook(on_forward, with_kwargs=True)
    DynamicCache.crop = crop
    try:
        generate(model, prompt, mode, time_forwards=False, **params)
    finally:
        DynamicCache.crop = original_crop
        handle.remove()
    return ops


def bare_loop(model, ops) -> float:
    cache = DynamicCache(config=model.config)
    started = time.perf_counter()
    with torch.inference_mode():
        for op, arg in ops:
            if op == "forward":
                model(**arg, cache=cache)
            else:
                cache.crop(arg)
    return time.perf_counter() - started


def timed(fn, repeats: int) -> float:
    return timed_pair(fn, lambda: None, repeats)[0]


def timed_pair(first, second, repeats: int) -> tuple[float, float]:
    """Medians of `repeats` runs of each, interleaved (first, second, first, ...) after a warm-up
    of each, so that drift in the machine's state (clock, caches, other load) hits both alike."""
    first(), second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, samples[0]), (second, samples[1])):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return statistics.median(samples[0]), statistics.median(samples[1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    model = tiny_model("qwen3", vocab_size=args.vocab, hidden_size=args.hidden, num_layers=args.layers,
                       num_heads=max(1, args.hidden // 64), num_kv_heads=max(1, args.hidden // 128), peakiness=20.0)
    prompt = torch.randint(3, args.vocab - 1, (1, args.prompt), generator=torch.Generator().manual_seed(0))
    params_common = {"max_new_tokens": args.tokens, "eos_token_ids": ()}
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: Qwen3 {args.layers} layers, hidden {args.hidden}, vocab {args.vocab} ({n_params / 1e6:.1f}M params, "
          f"float32), prompt {args.prompt} tokens, {args.tokens} new tokens, CPU {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads; medians of {args.repeats} interleaved runs after a warm-up")
    print(f"{'mode':15s} {'forwards':>8s} {'decoder ms':>11s} {'bare ms':>9s} {'ms/forward':>11s} {'overhead':>9s} {'us/forward':>11s}")
    record: dict = {"overhead": {}}
    for mode, extra in MODES.items():
        params = {**params_common, **extra}
        ops = record_calls(model, prompt, mode, params)
        forwards = sum(op == "forward" for op, _ in ops)
        decoder, bare = timed_pair(lambda: generate(model, prompt, mode, time_forwards=False, **params),
                                   lambda: bare_loop(model, ops), args.repeats)
        overhead = decoder / bare - 1
        record["overhead"][mode] = {"forwards": forwards, "decoder_s": decoder, "bare_s": bare, "overhead": overhead}
        print(f"{mode:15s} {forwards:8d} {decoder * 1e3:11.1f} {bare * 1e3:9.1f} {decoder / forwards * 1e3:11.2f} "
              f"{overhead:9.1%} {(decoder - bare) / forwards * 1e6:11.0f}")

    model.generation_config.eos_token_id = None
    ours, theirs = timed_pair(lambda: generate(model, prompt, "ar", time_forwards=False, **params_common),
                              lambda: model.generate(prompt, max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                                                     do_sample=False, pad_token_id=0), args.repeats)
    record["ar_vs_generate"] = {"ours_tok_s": args.tokens / ours, "transformers_tok_s": args.tokens / theirs,
                                "ratio": theirs / ours}
    print(f"\nar tokens/s: ours {args.tokens / ours:.0f}, transformers generate {args.tokens / theirs:.0f} "
          f"(ratio {theirs / ours:.2f}x; tokens/s = new tokens / wall time of the whole decode, prefill included)")
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
