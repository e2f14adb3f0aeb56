"""Batched decoding speed on the shipped tiny model: a benchmark that prints figures (not a test).

    python -m reference_decoders.batch_benchmark [--prompts 16 --batch-sizes 1 4 8 --repeats 3 --threads 1]

The prompts are the first examples of each synthetic task (copy, reverse, sort, add; seed 0),
rendered as the harness renders them, so prompt lengths, acceptance and stopping points differ
from row to row. Each mode decodes all of them in consecutive batches of B, as the reference
runner groups samples (runners/reference.py), greedy, until EOS or --max-new-tokens.

Per mode and batch size it prints: wall = host time to decode every prompt, batches one after
another (perf_counter); cpu = this process's CPU time over the same decode (process_time: on a
shared machine it leaves out the time the process waits for a core, which wall time includes);
both are medians over --repeats runs, the batch sizes interleaved, after one warm-up of each.
tok/s w and tok/s c = new tokens of all prompts / wall and / cpu; speedup = batch-1 cpu / cpu;
forwards = model forwards of all batches (each forward of a batch counted once, by the counting
hook); query tok = their rows x query length; = batch 1: every row's tokens equal its batch-1
tokens.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from harness.config import TaskConfig
from harness.tasks.synthetic import SYNTHETIC_TASKS
from reference_decoders import generate_batch
from reference_decoders.loading import load_checkpoint

CHECKPOINT = Path(__file__).resolve().parent.parent / "harness" / "tinymodel" / "checkpoint"
MODES = {
    "ar": ("ar", {}),
    "diffusion t0.9": ("diffusion", {"threshold": 0.9}),
    "linear_spec t0": ("linear_spec", {"threshold": 0.0}),
    "linear_spec t0.9": ("linear_spec", {"threshold": 0.9}),
    "quadratic_spec": ("quadratic_spec", {}),
}


def task_prompts(tokenizer, count: int) -> list[list[int]]:
    """`count` prompts, taken in turn from each synthetic task's examples (seed 0)."""
    names = sorted(SYNTHETIC_TASKS)
    per_task = {name: SYNTHETIC_TASKS[name].examples(TaskConfig(name=name, num_samples=count)) for name in names}
    prompts = []
    for i in range(count):
        name = names[i % len(names)]
        text = SYNTHETIC_TASKS[name].render(per_task[name][i // len(names)], TaskConfig(name=name))
        prompts.append(tokenizer(text, add_special_tokens=False).input_ids)
    return prompts


def decode_all(model, prompts, mode, batch_size, params) -> list:
    results = []
    for start in range(0, len(prompts), batch_size):
        results.extend(generate_batch(model, prompts[start : start + batch_size], mode, time_forwards=False, **params))
    return results


def batch_totals(results, batch_size: int) -> tuple[int, int]:
    """(forwards, query tokens) of all batches: every row of a batch carries its batch's counts."""
    firsts = results[::batch_size]
    return sum(sum(r.forwards.values()) for r in firsts), sum(sum(r.query_tokens.values()) for r in firsts)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(CHECKPOINT))
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    # one thread: on a shared CPU, threads waiting for each other time the machine's load, not the decoder
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if 1 not in args.batch_sizes:
        parser.error("--batch-sizes must include 1: every batch is checked against batch 1")

    loaded = load_checkpoint(args.checkpoint, dtype="float32")
    model = loaded.model
    prompts = task_prompts(loaded.tokenizer, args.prompts)
    block = model.config.block_size
    common = {"max_new_tokens": args.max_new_tokens, "block_length": block, "eos_token_ids": loaded.eos_token_ids}
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.checkpoint} ({n_params / 1e6:.2f}M params, float32), {len(prompts)} prompts of "
          f"{min(map(len, prompts))}-{max(map(len, prompts))} tokens, block length {block}, greedy, up to "
          f"{args.max_new_tokens} new tokens; CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; "
          f"medians of {args.repeats} runs per batch size, interleaved, after a warm-up")
    print(f"{'mode':17s} {'batch':>5s} {'wall ms':>8s} {'cpu ms':>8s} {'tokens':>6s} {'tok/s w':>7s} {'tok/s c':>7s} "
          f"{'speedup':>8s} {'forwards':>8s} {'query tok':>9s} {'= batch 1':>9s}")
    record: dict = {}
    for label in args.modes:
        mode, extra = MODES[label]
        params = {**common, **extra}
        if mode == "ar":
            params.pop("block_length")
        sizes = sorted(args.batch_sizes)
        results = {b: decode_all(model, prompts, mode, b, params) for b in sizes}  # warm-up, and the tokens compared
        walls, cpus = {b: [] for b in sizes}, {b: [] for b in sizes}
        for _ in range(args.repeats):
            for b in sizes:  # interleaved, so that drift in the machine's load hits every batch size alike
                wall, cpu = time.perf_counter(), time.process_time()
                decode_all(model, prompts, mode, b, params)
                walls[b].append(time.perf_counter() - wall)
                cpus[b].append(time.process_time() - cpu)
        reference = [r.tokens for r in results[1]]
        record[label] = {}
        for b in sizes:
            wall, cpu = statistics.median(walls[b]), statistics.median(cpus[b])
            tokens = [r.tokens for r in results[b]]
            new_tokens = sum(map(len, tokens))
            forwards, query = batch_totals(results[b], b)
            same = tokens == reference
            speedup = statistics.median(cpus[1]) / cpu
            record[label][b] = {"wall_s": wall, "cpu_s": cpu, "new_tokens": new_tokens, "tokens_per_wall_s": new_tokens / wall,
                                "tokens_per_cpu_s": new_tokens / cpu, "cpu_speedup": speedup, "forwards": forwards,
                                "query_tokens": query, "tokens_equal_batch_1": same}
            print(f"{label:17s} {b:5d} {wall * 1e3:8.1f} {cpu * 1e3:8.1f} {new_tokens:6d} {new_tokens / wall:7.0f} "
                  f"{new_tokens / cpu:7.0f} {speedup:7.2f}x {forwards:8d} {query:9d} {'yes' if same else 'NO':>9s}")
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
