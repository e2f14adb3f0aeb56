"""Decoder overhead and speed per backend, attention-mask timings, and (on a GPU) 8B-shape forwards
against the roofline: a benchmark that prints figures (not a test).

    python -m reference_decoders.benchmark [--hidden 256 --layers 4 --vocab 8192 --tokens 64 --repeats 15]
                                           [--backends eager compiled] [--cpu-compile inductor|aot_eager|eager]

1. Overhead per mode and backend. A first decode records every model call the decoder makes (its
   exact arguments) and, for eager, every cache crop; for compiled, the static cache's write
   pointer at each call. The same calls are then replayed in a bare loop (model call, crop or
   pointer write, nothing else; the compiled backend replays its own compiled forwards).
   Overhead = decoder time / bare-loop time - 1: what the decoder's own logic (sampling, commits,
   masks, bookkeeping, counting hooks) costs per forward, also printed in microseconds per
   forward. Goal: <= 2% compiled.
2. ar tokens/s of each backend against transformers' greedy `generate` (eager, its default
   DynamicCache) for the same prompt and length (all forced to the full length). Goal: >= 1.5x
   compiled on the CPU.
3. Attention masks: one attention call (the model's heads, a static cache of M slots holding P
   tokens) for each query shape (1 causal, L bidirectional, L(L+1) quadratic_spec), with the
   precomputed boolean mask through SDPA against a FlexAttention block mask (compiled
   flex_attention); the one-off cost of building each mask is printed beside.
4. GPU only (skipped on the CPU, and says so): Qwen3-8B's published shapes with random bf16
   weights, compiled backend, batch 1, a 1K-token context, one forward of q = 1, 8, 32 query
   tokens timed with CUDA events (median), beside the memory floor = weight bytes / the hardware
   profile's bandwidth (configs/hardware/*.yaml). Goal: floor / time >= 80% on H100/H200.
Timings 1 and 2 are medians of `--repeats` runs, the two sides of each comparison interleaved after
a warm-up of each, wall clock (perf_counter; CUDA synchronised at both ends on a GPU). Compile time
is never inside a timing: the warm-up runs compile every shape first. A human table, then one
line ``BENCHMARK_JSON {...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from transformers import DynamicCache

from harness.contracts import BACKENDS
from reference_decoders import adapter as adapters
from reference_decoders import generate, masks
from reference_decoders.tiny import tiny_model

MODES = {
    "ar": {},
    "diffusion": {"block_length": 8, "threshold": 0.9},
    "linear_spec": {"block_length": 8},
    "quadratic_spec": {"block_length": 8},
}
CPU_COMPILE = {"inductor": {}, "aot_eager": {"backend": "aot_eager"}, "eager": {"backend": "eager"}}
GPU_QUERY_LENGTHS = (1, 8, 32)
GPU_CONTEXT = 1024


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def record_calls(model, prompt, mode, params, backend) -> list[tuple]:
    """Run the decoder once; return its model calls and cache operations, in order, as replayable ops."""
    ops: list[tuple] = []

    def on_forward(module, args, kwargs):
        kept = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in kwargs.items() if k != "cache"}
        cache = kwargs["cache"]
        ops.append(("forward", kept, cache, getattr(cache, "length", None)))

    original_crop = DynamicCache.crop

    def crop(self, n):
        ops.append(("crop", n, None, None))
        return original_crop(self, n)

    if backend == "compiled":
        # Compile first: the warm-up decode that compiles new shapes is not the decoder's work.
        generate(model, prompt, mode, time_forwards=False, backend=backend, **params)
    handle = model.register_forward_pre_hook(on_forward, with_kwargs=True)
    DynamicCache.crop = crop
    try:
        generate(model, prompt, mode, time_forwards=False, backend=backend, **params)
    finally:
        DynamicCache.crop = original_crop
        handle.remove()
    return ops


def bare_loop(model, ops, backend) -> float:
    """The recorded forwards with nothing around them but the cache operation each needs."""
    device = next(model.parameters()).device
    if backend == "eager":
        cache = DynamicCache(config=model.config)
        sync(device)
        started = time.perf_counter()
        with torch.inference_mode():
            for op, arg, _, _ in ops:
                if op == "forward":
                    model(**arg, cache=cache)
                else:
                    cache.crop(arg)
        sync(device)
        return time.perf_counter() - started
    compiled = adapters.compiled_model(model)
    cuda = device.type == "cuda"
    with compiled.installed(), torch.inference_mode():
        sync(device)
        started = time.perf_counter()
        for _, kwargs, cache, start in ops:
            cache.write_start.fill_(start)
            if cuda:
                torch.compiler.cudagraph_mark_step_begin()
            model(**kwargs, cache=cache)
        sync(device)
        return time.perf_counter() - started


def timed_pair(first, second, repeats: int, device="cpu") -> tuple[float, float]:
    """Medians of `repeats` runs of each, interleaved (first, second, first, ...) after a warm-up
    of each, so that drift in the machine's state (clock, caches, other load) hits both alike."""
    first(), second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, samples[0]), (second, samples[1])):
            sync(device)
            started = time.perf_counter()
            fn()
            sync(device)
            out.append(time.perf_counter() - started)
    return statistics.median(samples[0]), statistics.median(samples[1])


def bench_overhead(model, prompt, params_common, backends, repeats, modes) -> dict:
    print(f"{'mode':15s} {'backend':9s} {'forwards':>8s} {'decoder ms':>11s} {'bare ms':>9s} {'ms/forward':>11s} "
          f"{'overhead':>9s} {'us/forward':>11s} {'compile s':>10s}")
    out: dict = {}
    for mode in modes:
        params = {**params_common, **MODES[mode]}
        for backend in backends:
            started = time.perf_counter()
            ops = record_calls(model, prompt, mode, params, backend)  # compiles every shape (compiled backend)
            first_decode = time.perf_counter() - started
            forwards = sum(op[0] == "forward" for op in ops)
            decoder, bare = timed_pair(lambda: generate(model, prompt, mode, time_forwards=False, backend=backend, **params),
                                       lambda: bare_loop(model, ops, backend), repeats, prompt.device)
            overhead = decoder / bare - 1
            compile_s = first_decode if backend == "compiled" else None
            out.setdefault(mode, {})[backend] = {"forwards": forwards, "decoder_s": decoder, "bare_s": bare,
                                                 "overhead": overhead, "first_decode_s": compile_s}
            print(f"{mode:15s} {backend:9s} {forwards:8d} {decoder * 1e3:11.1f} {bare * 1e3:9.1f} "
                  f"{decoder / forwards * 1e3:11.2f} {overhead:9.1%} {(decoder - bare) / forwards * 1e6:11.0f} "
                  f"{'' if compile_s is None else f'{compile_s:10.1f}'}")
    print("compile s = wall time of the mode's first compiled decodes (the warm-up decode that compiles its new "
          "shapes, then two decodes: one to warm, one recorded); never inside a timing")
    return out


def bench_generate(model, prompt, params_common, backends, repeats) -> dict:
    tokens = params_common["max_new_tokens"]
    model.generation_config.eos_token_id = None
    theirs_fn = lambda: model.generate(prompt, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,  # noqa: E731
                                       pad_token_id=0)
    out: dict = {}
    for backend in backends:
        ours, theirs = timed_pair(lambda: generate(model, prompt, "ar", time_forwards=False, backend=backend, **params_common),
                                  theirs_fn, repeats, prompt.device)
        out[backend] = {"ours_tok_s": tokens / ours, "transformers_tok_s": tokens / theirs, "ratio": theirs / ours}
        print(f"ar tokens/s, {backend:8s}: ours {tokens / ours:.0f}, transformers generate {tokens / theirs:.0f} "
              f"(ratio {theirs / ours:.2f}x)")
    print("tokens/s = new tokens / wall time of the whole decode, prefill included; generate = eager, DynamicCache")
    return out


def bench_masks(model, prefix: int, block_length: int, repeats: int) -> dict:
    """SDPA over a precomputed boolean mask vs FlexAttention over a block mask, per query shape."""
    import torch.nn.functional as F

    config, device = model.config, next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    H, D = config.num_attention_heads, config.head_dim
    L = block_length
    M = adapters.cache_positions(prefix, 0, L)
    shapes = {"decode q=1": masks.causal(1, device), f"block q={L}": masks.bidirectional(L, device),
              f"quadratic q={L * (L + 1)}": masks.quadratic_spec(L, device)}
    valid = torch.zeros(1, M, dtype=torch.bool, device=device)
    valid[:, :prefix] = True
    k = torch.randn(1, H, M, D, device=device, dtype=dtype)
    v = torch.randn_like(k)
    out: dict = {}
    print(f"\nattention masks: {H} heads x {D}, static cache of {M} slots holding {prefix} tokens; "
          f"medians of {repeats} calls after a warm-up")
    print(f"{'shape':18s} {'bool build us':>14s} {'SDPA us':>9s} {'flex build us':>14s} {'flex us':>9s}")
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention, dynamic=False)
    except Exception as exc:  # an older torch: report, do not fail the benchmark
        flex, create_block_mask = None, None
        print(f"FlexAttention unavailable: {exc}")
    for name, query_mask in shapes.items():
        q = query_mask.shape[-1]
        query = torch.randn(1, H, q, D, device=device, dtype=dtype)
        build = median_time(lambda: masks.in_static_cache(query_mask, valid, prefix), repeats, device)
        bool_mask = masks.in_static_cache(query_mask, valid, prefix)
        sdpa = median_time(lambda: F.scaled_dot_product_attention(query, k, v, attn_mask=bool_mask), repeats, device)
        row = {"q": q, "bool_build_us": build * 1e6, "sdpa_us": sdpa * 1e6, "flex_build_us": None, "flex_us": None}
        if flex is not None:
            try:
                def mask_mod(b, h, q_idx, kv_idx, query_mask=query_mask):
                    inside = (kv_idx >= prefix) & (kv_idx < prefix + q)
                    local = (kv_idx - prefix).clamp(0, q - 1)
                    return (kv_idx < prefix) | (inside & query_mask[q_idx, local])

                block_build = lambda: create_block_mask(mask_mod, 1, 1, q, M, device=device)  # noqa: E731
                row["flex_build_us"] = median_time(block_build, max(3, repeats // 5), device) * 1e6
                block_mask = block_build()
                row["flex_us"] = median_time(lambda: flex(query, k, v, block_mask=block_mask), repeats, device) * 1e6
            except Exception as exc:
                row["flex_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        out[name] = row
        print(f"{name:18s} {row['bool_build_us']:14.0f} {row['sdpa_us']:9.0f} "
              f"{_fmt(row['flex_build_us']):>14s} {_fmt(row['flex_us']):>9s} {row.get('flex_error', '')}")
    print("bool build = masks.in_static_cache per forward (the compiled backend's per-step mask); flex build = "
          "create_block_mask; SDPA = F.scaled_dot_product_attention with the boolean mask; flex = compiled flex_attention")
    return out


def median_time(fn, repeats: int, device) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        fn()
        sync(device)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench_gpu_roofline(repeats: int, hardware: str | None, source: str | None = None, device: str = "cuda",
                       bandwidth_gbs: float | None = None) -> dict:
    """8B shapes, random bf16 weights, compiled backend, batch 1: forward time against the memory floor.

    ``source``/``device`` exist so the same code can be checked on the CPU with scaled-down shapes
    (host clock instead of CUDA events); the figures that count are CUDA's.
    """
    import yaml

    from harness import environment
    from harness.gpu_check import CONFIG_DIR, pick_profile
    from harness.models import SHAPES_DIR
    from reference_decoders.counting import ForwardCounter
    from reference_decoders.loading import load_checkpoint

    device = torch.device(device)
    cuda = device.type == "cuda"
    profile = hardware or (pick_profile(environment.detected_device("cuda"))[0] if cuda else "cpu")
    if bandwidth_gbs is None:
        bandwidth_gbs = yaml.safe_load((CONFIG_DIR / "hardware" / f"{profile}.yaml").read_text()).get("memory_bandwidth_gbs")
    if bandwidth_gbs is None:
        raise SystemExit(f"hardware profile {profile!r} states no memory_bandwidth_gbs; pass --bandwidth-gbs")
    source = source or str(SHAPES_DIR / "qwen3-8b")
    loaded = load_checkpoint(source, dtype="bfloat16", device=device, random_weights=True)
    model = loaded.model
    floor_s = loaded.weight_bytes / (bandwidth_gbs * 1e9)
    print(f"\nshapes of {source} (random bf16 weights, {loaded.weight_bytes / 1e9:.2f} GB) on {device}, batch 1, "
          f"{GPU_CONTEXT}-token context, profile {profile} ({bandwidth_gbs} GB/s); "
          f"{'CUDA-event' if cuda else 'host-clock'} medians of {repeats} forwards after 3 untimed ones (compile, "
          f"CUDA-graph capture); floor = weight bytes / bandwidth (KV reads not included)")
    print(f"{'q':>4s} {'forward ms':>11s} {'floor ms':>9s} {'floor/time':>11s}")
    compiled = adapters.compiled_model(model)
    out: dict = {"profile": profile, "bandwidth_gbs": bandwidth_gbs, "weight_bytes": loaded.weight_bytes,
                 "device": str(device), "rows": {}}
    max_positions = adapters.cache_positions(GPU_CONTEXT, max(GPU_QUERY_LENGTHS), None)
    context = torch.randint(0, model.config.vocab_size, (1, GPU_CONTEXT), device=device)
    with compiled.installed(), torch.inference_mode():
        counter = ForwardCounter(model, time_forwards=False)
        adapter = adapters.CompiledAdapter(model, counter, compiled, max_positions)
        state, _ = adapter.prefill(context)
        for q in GPU_QUERY_LENGTHS:
            ids = torch.randint(0, model.config.vocab_size, (1, q), device=device)
            kind = "decode" if q == 1 else "verify"
            seconds = []
            for i in range(repeats + 3):
                if cuda:
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                else:
                    started = time.perf_counter()
                adapter.forward(state, ids, kind, None)
                if cuda:
                    end.record()
                adapter.keep(state, 0)
                if i >= 3:
                    seconds.append((start, end) if cuda else time.perf_counter() - started)
            if cuda:
                torch.cuda.synchronize(device)
                seconds = [s.elapsed_time(e) / 1e3 for s, e in seconds]
            median = statistics.median(seconds)
            out["rows"][q] = {"forward_s": median, "floor_s": floor_s, "floor_fraction": floor_s / median}
            print(f"{q:4d} {median * 1e3:11.2f} {floor_s * 1e3:9.2f} {floor_s / median:11.1%}")
        counter.close()
    print("forward = adapter.forward (mask + positions + compiled forward, logits included); floor/time: goal >= 80%")
    return out


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--cpu-compile", choices=CPU_COMPILE, default="inductor",
                        help="torch.compile backend on the CPU (adapter.COMPILE_OPTIONS['cpu'] is inductor)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device of the tiny-model sections 1-3")
    parser.add_argument("--gpu", action="store_true", help="also run section 4 (8B shapes; needs CUDA)")
    parser.add_argument("--hardware", default=None, help="hardware profile for the floor (default: matched to the GPU)")
    parser.add_argument("--bandwidth-gbs", type=float, default=None, help="floor bandwidth instead of the profile's")
    parser.add_argument("--skip-tiny", action="store_true", help="run section 4 only")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="modes of section 1")
    parser.add_argument("--shapes", default=None, help="section 4: a checkpoint folder of other shapes (a CPU check of the code)")
    args = parser.parse_args(argv)
    adapters.COMPILE_OPTIONS["cpu"] = CPU_COMPILE[args.cpu_compile]
    if args.threads:
        torch.set_num_threads(args.threads)

    record: dict = {"load_average": os.getloadavg(), "cpu_compile": args.cpu_compile, "device": args.device}
    if not args.skip_tiny:
        model = tiny_model("qwen3", vocab_size=args.vocab, hidden_size=args.hidden, num_layers=args.layers,
                           num_heads=max(1, args.hidden // 64), num_kv_heads=max(1, args.hidden // 128),
                           peakiness=20.0).to(args.device)
        prompt = torch.randint(3, args.vocab - 1, (1, args.prompt), generator=torch.Generator().manual_seed(0)).to(args.device)
        params_common = {"max_new_tokens": args.tokens, "eos_token_ids": ()}
        n_params = sum(p.numel() for p in model.parameters())
        print(f"model: Qwen3 {args.layers} layers, hidden {args.hidden}, vocab {args.vocab} ({n_params / 1e6:.1f}M params, "
              f"float32) on {args.device}, prompt {args.prompt} tokens, {args.tokens} new tokens, CPU "
              f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; compiled = {adapters.COMPILE_OPTIONS[args.device]} "
              f"('{{}}' = inductor); medians of {args.repeats} interleaved runs after a warm-up")
        record["overhead"] = bench_overhead(model, prompt, params_common, args.backends, args.repeats, args.modes)
        print()
        record["ar_vs_generate"] = bench_generate(model, prompt, params_common, args.backends, args.repeats)
        record["masks"] = bench_masks(model, args.prompt + args.tokens, MODES["quadratic_spec"]["block_length"], args.repeats)
    if args.gpu:
        if args.shapes is None and not torch.cuda.is_available():
            raise SystemExit("--gpu needs a CUDA device; none is available here")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        record["gpu_roofline"] = bench_gpu_roofline(max(10, args.repeats), args.hardware, args.shapes, device,
                                                   args.bandwidth_gbs)
    else:
        print("\n8B-shape roofline section not run (needs --gpu on a CUDA machine)")
    record["load_average_end"] = os.getloadavg()
    print("BENCHMARK_JSON " + json.dumps(record, default=str))
    return record


if __name__ == "__main__":
    main()
