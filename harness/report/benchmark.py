"""How long `dlm-bench-report` takes on a large sweep folder (goal: 256 tiny cells in under 30 s).

    python -m harness.report.benchmark [--cells 256 --samples 8 --resamples 2000 --repeats 1]

Writes a sweep folder of synthetic cells the way a sweep writes them (one parquet file per cell,
rows through `harness.records.to_table`: per-forward lists, latencies, scores, the CPU profile) to a
temporary folder, then times reading it and building the whole report (aggregates with their
intervals, claims, plots, Markdown, HTML, CSV) with the default bootstrap. Prints, per phase, the
wall time (time.perf_counter) and the CPU time of this process (time.process_time: what the work
costs, whatever else the machine is doing) of each repeat, and their medians. The cells are the embedded default's shapes (every mode
of a tiny model, 24 new tokens, 8 samples, two contexts, four tasks) for eight checkpoints of the
tiny model, as a sweep over training runs would have: 256 distinct cells, each compared with its own
checkpoint's ar cell.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from harness.records import SCHEMA_VERSION, to_table

MODES = {  # mode -> forward kinds of one step after the prefill, tokens emitted per step
    "ar": (["decode"], 1),
    "diffusion": (["denoise", "denoise", "commit"], 3),
    "linear_spec": (["draft", "verify"], 3),
    "quadratic_spec": (["quadratic"], 4),
}
CONTEXTS = {"natural": 0, "ctx128": 128}
TASKS = ("copy", "reverse", "sort", "add")
STARTED = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)


def cell_rows(index: int, mode: str, context: str, task: str, checkpoint: int, samples: int, rng) -> list[dict]:
    step_kinds, per_step = MODES[mode]
    block = None if mode == "ar" else 8
    key = f"bench{index:04d}"
    cell = dict(schema_version=SCHEMA_VERSION, sweep="bench", cell_key=key, status="ok", model=f"tiny-dlm-{checkpoint}",
                model_source=f"checkpoints/{checkpoint}", model_family="qwen3", model_dtype="float32", mode=mode,
                block_length=block, threshold=0.9 if mode == "diffusion" else None, temperature=0.0, batch_size=1,
                runner="reference", hardware="cpu", hardware_detected="cpu", context=context,
                context_tokens=CONTEXTS[context], task=task, task_version="1", seed=0, timing_only=False,
                max_new_tokens=24, env_python="3.11", env_torch="2.13.0", env_transformers="5.24.0",
                env_git_sha="0" * 40, env_git_dirty=False, env_host="bench", env_cpu="cpu", env_cpu_count=2,
                env_platform="Linux", started_at=STARTED, hw_gpus=1, model_num_layers=2,
                model_num_attention_heads=4, model_head_dim=32, model_kv_bytes_per_token=2048,
                model_forward_weight_bytes=4_000_000, model_block_parameters=800_000,
                dataset_source="generated:seed=0")
    rows = []
    prompt = 20 + CONTEXTS[context]
    for i in range(samples):
        steps = int(np.ceil(24 / per_step))
        kinds = ["prefill"] + step_kinds * steps
        query = [prompt] + [1 if k == "decode" else (72 if k == "quadratic" else 8) for k in kinds[1:]]
        cache = [0] + [prompt + j for j in range(len(kinds) - 1)]
        seconds = list(rng.uniform(0.0008, 0.0015, size=len(kinds)))
        emit = list(np.cumsum(seconds)[[0] + list(range(len(step_kinds), len(kinds), len(step_kinds)))])
        counts = {k: kinds.count(k) for k in set(kinds)}
        row = dict(cell, sample_id=f"{task}-{i:03d}", repetition=0, prompt_tokens=prompt, new_tokens=24,
                   tokens_untrimmed=24, finish_reason="length", output_token_ids=list(range(24)),
                   output_text="x" * 24, vendor_nfe=len(kinds), vendor_nfe_rule="rule",
                   forward_kinds=kinds, forward_query_tokens=query, forward_cache_tokens=cache,
                   forward_seconds=seconds, forward_timing_method="perf_counter", emit_seconds=emit,
                   emit_counts=[min(24, per_step * (j + 1)) for j in range(len(emit))], ttft_s=emit[0],
                   e2e_s=emit[-1], timing_method="perf_counter", reference_answer="a",
                   extracted_answer="a", correct=bool(rng.random() < 0.8),
                   accept_lengths=[per_step] * steps if mode in ("linear_spec", "quadratic_spec") else None)
        for kind in set(kinds):
            row[f"forwards_{kind}"] = counts[kind]
            row[f"query_tokens_{kind}"] = sum(q for k, q in zip(kinds, query) if k == kind)
        rows.append(row)
    return rows


def write_folder(folder: Path, cells: int, samples: int) -> int:
    rng = np.random.default_rng(0)
    combos = [(m, c, t) for m in MODES for c in CONTEXTS for t in TASKS]
    written = 0
    for index in range(cells):
        mode, context, task = combos[index % len(combos)]
        rows = cell_rows(index, mode, context, task, index // len(combos), samples, rng)
        pq.write_table(to_table(rows), folder / f"{index // len(combos)}_{mode}_{task}_{context}-bench{index:04d}.parquet")
        written += len(rows)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=256)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)

    from harness.report import build_report
    from harness.report.aggregate import Bootstrap
    from harness.store import read_results

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bench"
        folder.mkdir()
        rows = write_folder(folder, args.cells, args.samples)
        print(f"{args.cells} cells x {args.samples} samples ({rows} records) in {folder}; bootstrap "
              f"{args.resamples} resamples; wall time per phase (time.perf_counter), {args.repeats} repeat(s)")
        phases = {"read parquet": ([], []), "build report": ([], [])}
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            records = read_results(folder)
            phases["read parquet"][0].append(time.perf_counter() - wall)
            phases["read parquet"][1].append(time.process_time() - cpu)
            wall, cpu = time.perf_counter(), time.process_time()
            build_report(folder, records=records, boot=Bootstrap(resamples=args.resamples))
            phases["build report"][0].append(time.perf_counter() - wall)
            phases["build report"][1].append(time.process_time() - cpu)
        for name, (walls, cpus) in phases.items():
            print(f"  {name:13s} wall median {statistics.median(walls):7.2f} s ({', '.join(f'{t:.2f}' for t in walls)}), "
                  f"CPU median {statistics.median(cpus):7.2f} s ({', '.join(f'{t:.2f}' for t in cpus)})")
        wall = sum(statistics.median(w) for w, _ in phases.values())
        cpu = sum(statistics.median(c) for _, c in phases.values())
        print(f"  total         wall {wall:7.2f} s, CPU {cpu:7.2f} s  (goal: under 30 s for 256 cells)")


if __name__ == "__main__":
    main()
