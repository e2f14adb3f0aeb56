"""`python -m harness.gpu_check`: one short check of everything in the harness that needs a GPU.

In a single call of a few minutes on a GPU machine it

1. captures the environment and picks the hardware profile whose ``device_pattern`` matches the GPU;
2. reads NVML once (name, clocks, power, temperature, energy counter, throttle reasons);
3. runs the four reference decoders on CUDA on a tiny random model (float64, greedy) with CUDA-event
   forward timing, and checks that linear_spec and quadratic_spec reproduce ar's tokens exactly;
4. times an 8B-shaped model (Qwen3-8B's published config, random bf16 weights) at batch 1 for
   query lengths 1, 8 and 32 over a 1K-token cache through the timing runner, next to the
   profile's memory-bandwidth and compute floors;
5. runs a two-cell sweep (ar, linear_spec on the tiny model) through the real CLI, with telemetry;
6. runs the four decoders with ``backend="compiled"`` (static KV cache, CUDA graphs) against eager
   on the tiny model: float64 must give the same tokens and forward counts; bf16 is reported as
   the share of tokens before the first disagreement (tolerance: informational, no verdict);
7. runs `reference_decoders.benchmark` (ar and linear_spec on the tiny model, eager and compiled;
   then the 8B shapes with random bf16 weights at q = 1, 8, 32, batch 1, against the bandwidth floor);

and prints a short human table, then one machine-readable line ``GPU_CHECK_JSON {...}``.

``--dry-run`` runs the same steps on the CPU with tiny shapes and without NVML (the tests run it):
the roofline step then uses nominal CPU figures (20 GB/s, 1 TFLOP/s) that are stated in the output.
Steps 6 and 7 are skipped in the dry run, saying so: compiling on two CPU cores takes minutes, and
tests/test_compiled_backend.py covers the compiled backend on the CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import yaml

from harness import environment
from harness.models import BUILTIN_MODELS, SHAPES_DIR

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "configs"
ROOFLINE_CELLS = [("ar", None), ("linear_spec", 8), ("linear_spec", 32)]  # query lengths 1, 8, 32
DRY_HARDWARE = ["hardware.memory_bandwidth_gbs=20", "hardware.bf16_tflops=1"]  # nominal, stated in the output


# -- 1. environment and profile ----------------------------------------------------------------


def check_environment(dry_run: bool) -> dict:
    env = environment.capture()
    cuda = torch.cuda.is_available() and not dry_run
    detected = environment.detected_device("cuda" if cuda else "cpu")
    profile, note = ("cpu", "dry run: CPU") if not cuda else pick_profile(detected)
    return {"device": "cuda" if cuda else "cpu", "detected": detected, "profile": profile, "profile_note": note,
            "torch": env["env_torch"], "cuda": env["env_cuda"], "driver": env["env_driver"],
            "transformers": env["env_transformers"], "git_sha": env["env_git_sha"], "git_dirty": env["env_git_dirty"]}


def pick_profile(detected: str) -> tuple[str, str]:
    """The CUDA hardware profile whose pattern matches the GPU; else h100 with the mismatch allowed."""
    for path in sorted((CONFIG_DIR / "hardware").glob("*.yaml")):
        profile = yaml.safe_load(path.read_text())
        if profile.get("device_type") == "cuda" and re.search(profile["device_pattern"], detected, re.IGNORECASE):
            return path.stem, f"matches /{profile['device_pattern']}/"
    return "h100", "no profile matches: h100 with hardware.allow_mismatch=true (roofline figures are the H100's)"


def profile_overrides(env: dict) -> list[str]:
    overrides = [f"hardware={env['profile']}", f"runner.device={env['device']}"]
    if env["profile_note"].startswith("no profile"):
        overrides.append("hardware.allow_mismatch=true")
    return overrides + (DRY_HARDWARE if env["device"] == "cpu" else [])


# -- 2. NVML -------------------------------------------------------------------------------------


def check_nvml(dry_run: bool) -> dict:
    if dry_run:
        return {"read": False, "why": "dry run: NVML not read"}
    from harness.telemetry import NvmlDevice, throttle_reasons

    device = NvmlDevice.open(0)
    if device is None:
        return {"read": False, "why": "NVML unavailable"}
    try:
        static, reading, energy = device.static(), device.sample(0.0), device.energy_mj()
    finally:
        device.close()
    return {"read": True, **static, "power_w": reading.power_w, "sm_clock_mhz": reading.sm_clock_mhz,
            "mem_clock_mhz": reading.mem_clock_mhz, "temperature_c": reading.temperature_c,
            "energy_counter_j": energy / 1e3 if energy is not None else None,
            "throttle_reasons": throttle_reasons(reading.throttle_mask or 0)}


# -- 3. reference decoders on the device ---------------------------------------------------------


def check_decoders(device: str, new_tokens: int = 32) -> list[dict]:
    from reference_decoders import generate
    from reference_decoders.tiny import tiny_model

    # float64: the speculative modes must reproduce ar exactly, with no rounding to blame
    model = tiny_model("qwen3", vocab_size=128, block_size=8, peakiness=5.0, dtype=torch.float64).to(device)
    prompt = torch.randint(2, 120, (1, 16), generator=torch.Generator().manual_seed(0)).to(device)
    params = {"max_new_tokens": new_tokens, "eos_token_ids": ()}
    modes = [("ar", {}), ("diffusion", {"block_length": 8, "threshold": 0.9}),
             ("linear_spec", {"block_length": 8}), ("quadratic_spec", {"block_length": 4})]
    rows, reference = [], None
    for mode, extra in modes:
        generate(model, prompt, mode, **params, **extra)  # warm-up: kernels, allocator
        result = generate(model, prompt, mode, **params, **extra)
        if mode == "ar":
            reference = result.tokens
        forwards = sum(result.forwards.values())
        rows.append({
            "mode": mode, "tokens": len(result.tokens), "forwards": forwards, "tpf": len(result.tokens) / forwards,
            "e2e_ms": result.emit_seconds[-1] * 1e3, "forward_ms_sum": sum(result.forward_log.seconds) * 1e3,
            "forward_timing": result.forward_log.timing_method, "request_timing": result.timing_method,
            "lossless_vs_ar": None if mode in ("ar", "diffusion") else result.tokens == reference,
        })
    return rows


# -- 4. 8B shapes against the roofline -----------------------------------------------------------


def tiny_shapes_dir(workdir: Path) -> Path:
    """Qwen3-8B's published config scaled down to a few layers (the dry run's stand-in)."""
    config = json.loads((SHAPES_DIR / "qwen3-8b" / "config.json").read_text())
    config.update(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, vocab_size=512, max_window_layers=2, bos_token_id=0, eos_token_id=1)
    path = workdir / "qwen3-tiny-shapes"
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


def check_roofline(env: dict, workdir: Path) -> list[dict]:
    from hydra import compose, initialize_config_dir

    from harness.config import register_configs, to_bench_config
    from harness.execute import run_cell
    from harness.figures import derive
    from harness.store import read_results

    register_configs()
    dry = env["device"] == "cpu"
    model = [f"model.source={tiny_shapes_dir(workdir)}"] if dry else []
    common = ["sweep=single", "model=qwen3-8b-shapes", *model, "runner=timing", "context=ctx128" if dry else "context=ctx1k",
              f"results_dir={workdir / 'results'}", "sweep.name=gpu-check-roofline", "force=true",
              *profile_overrides(env)]
    if dry:
        common += ["runner.min_repetitions=3", "runner.min_duration_s=0", "runner.warmup=1"]
    for mode, block in ROOFLINE_CELLS:
        overrides = common + [f"mode={mode}"] + ([f"mode.block_length={block}"] if block else [])
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            bench = to_bench_config(compose(config_name="config", overrides=overrides))
        summary = run_cell(bench)
        if summary["status"] != "ok":
            raise RuntimeError(f"roofline cell {mode} block {block}: {summary['status']}: {summary.get('reason')}")
    df = derive(read_results(workdir / "results" / "gpu-check-roofline"))
    df = df[df["status"] == "ok"]
    rows = []
    shape = [df["forward_kinds"].map(lambda kinds: kinds[0]), df["forward_query_tokens"].map(lambda q: int(q[0]))]
    for (kind, query), group in df.groupby(shape, sort=False):
        rows.append({
            "kind": kind, "query_tokens": int(query), "batch": int(group["batch_size"].iloc[0]),
            "context": int(group["prompt_tokens"].iloc[0]), "repetitions": len(group),
            "median_ms": float(group["forward_time_s"].median() * 1e3),
            "memory_floor_ms": float(group["roofline_memory_floor_s"].iloc[0] * 1e3),
            "compute_floor_ms": float(group["roofline_compute_floor_s"].iloc[0] * 1e3),
            "ratio": float(group["forward_time_s"].median() / group["roofline_floor_s"].iloc[0]),
            "timing": group["forward_timing_method"].iloc[0],
            "energy_j_per_forward": _float(group["energy_j"].sum() / group["forwards_total"].sum()),
        })
    return sorted(rows, key=lambda r: (r["query_tokens"], r["kind"]))


# -- 5. a two-cell sweep through the CLI ---------------------------------------------------------


def tiny_checkpoint(workdir: Path) -> str:
    """The shipped tiny model when its checkpoint is here, else a random one with its tokenizer."""
    if (BUILTIN_MODELS["tiny-dlm"] / "config.json").exists():
        return "builtin:tiny-dlm"
    from harness.tinymodel.tokenizer import build_tokenizer
    from reference_decoders.tiny import tiny_model

    path = workdir / "tiny-checkpoint"
    tokenizer = build_tokenizer()
    model = tiny_model("qwen3", vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
                       eos_token_id=tokenizer.eos_token_id, block_size=4, max_positions=512, peakiness=5.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def check_sweep(env: dict, workdir: Path) -> dict:
    from harness.report.aggregate import aggregate
    from harness.store import read_results

    results = workdir / "results"
    overrides = [x for x in profile_overrides(env) if not x.startswith("hardware.memory") and not x.startswith("hardware.bf16")]
    samples = 1 if env["device"] == "cpu" else 2
    args = ["-m", "mode=ar,linear_spec", f"model.source={tiny_checkpoint(workdir)}", "task=copy", "context=natural",
            f"task.num_samples={samples}", f"runner.min_repetitions={samples}", f"results_dir={results}",
            "sweep.name=gpu-check-sweep", *overrides]
    run_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, env=run_env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"dlm-bench exited {proc.returncode}: {proc.stderr[-2000:]}")
    ag = aggregate(read_results(results / "gpu-check-sweep"), boot=None)
    df, figures = ag.prepared, ag.cells.set_index("cell_id")
    cells = []
    for mode, group in df.groupby("mode", sort=False):
        cell = figures.loc[group["cell_id"].iloc[0]]
        cells.append({
            "mode": mode, "status": ",".join(sorted(set(group["status"]))), "rows": len(group),
            "tpf": _float(cell["tpf"]), "tokens_per_s": _float(cell["tok_s_system"]),
            "e2e_ms_median": _float(cell["e2e_p50"]),
            "timing": f"{group['timing_method'].iloc[0]} / {group['forward_timing_method'].iloc[0]}",
            "energy_j": _float(group["gpu_energy_j"].iloc[0]), "energy_region": group["gpu_energy_region"].iloc[0],
            "joules_per_token": _float(cell["joules_per_token"]),
            "power_mean_w": _float(group["gpu_power_draw_mean_w"].iloc[0]),
            "sm_clock_mean_mhz": _float(group["gpu_sm_clock_mean_mhz"].iloc[0]),
            "throttle_reasons": list(group["gpu_throttle_reasons"].iloc[0]) if group["gpu_throttle_reasons"].iloc[0] is not None else None,
            "hardware": group["hardware"].iloc[0], "hardware_mismatch": group["hardware_mismatch"].iloc[0],
        })
    return {"seconds": time.perf_counter() - started, "cells": cells}


# -- the report ----------------------------------------------------------------------------------


# -- 6. the compiled backend against eager ----------------------------------------------------------


def check_compiled(device: str, new_tokens: int = 32) -> list[dict]:
    from reference_decoders import generate
    from reference_decoders.tiny import tiny_model

    prompt = torch.randint(2, 120, (1, 16), generator=torch.Generator().manual_seed(0)).to(device)
    params = {"max_new_tokens": new_tokens, "eos_token_ids": ()}
    modes = [("ar", {}), ("diffusion", {"block_length": 8, "threshold": 0.9}),
             ("linear_spec", {"block_length": 8}), ("quadratic_spec", {"block_length": 4})]
    rows = []
    for dtype in (torch.float64, torch.bfloat16):
        model = tiny_model("qwen3", vocab_size=128, block_size=8, peakiness=5.0, dtype=dtype).to(device)
        for mode, extra in modes:
            eager = generate(model, prompt, mode, **params, **extra)
            compiled = generate(model, prompt, mode, backend="compiled", **params, **extra)
            timed = generate(model, prompt, mode, backend="compiled", **params, **extra)  # all shapes warm
            eager_timed = generate(model, prompt, mode, **params, **extra)
            agree = next((i for i, (a, b) in enumerate(zip(eager.tokens, compiled.tokens)) if a != b),
                         min(len(eager.tokens), len(compiled.tokens)))
            rows.append({
                "mode": mode, "dtype": str(dtype).removeprefix("torch."), "tokens": len(eager.tokens),
                "same_tokens": compiled.tokens == eager.tokens, "same_forwards": compiled.forwards == eager.forwards,
                "agreeing_prefix": agree / max(1, len(eager.tokens)), "compile_s": compiled.compile_seconds,
                "eager_e2e_ms": eager_timed.emit_seconds[-1] * 1e3, "compiled_e2e_ms": timed.emit_seconds[-1] * 1e3,
            })
    return rows


# -- 7. the decoder benchmark ----------------------------------------------------------------------


def check_benchmark(device: str) -> dict:
    from reference_decoders import benchmark

    return benchmark.main(["--device", device, "--gpu", "--modes", "ar", "linear_spec", "--repeats", "5"])


def run_checks(dry_run: bool, workdir: Path) -> dict:
    record: dict = {"dry_run": dry_run, "errors": {}}
    steps = [("environment", lambda: check_environment(dry_run)), ("nvml", lambda: check_nvml(dry_run)),
             ("decoders", lambda: check_decoders(record["environment"]["device"], 12 if dry_run else 32)),
             ("roofline", lambda: check_roofline(record["environment"], workdir)),
             ("sweep", lambda: check_sweep(record["environment"], workdir))]
    skipped = {"skipped": "dry run: compiling on the CPU is covered by tests/test_compiled_backend.py"}
    steps += [("compiled", lambda: skipped if dry_run else check_compiled(record["environment"]["device"])),
              ("benchmark", lambda: skipped if dry_run else check_benchmark(record["environment"]["device"]))]
    for name, step in steps:
        started = time.perf_counter()
        try:
            record[name] = step()
        except Exception as exc:  # one failing step must not hide the others' figures
            record[name] = None
            record["errors"][name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()[-1500:]
        record.setdefault("step_seconds", {})[name] = round(time.perf_counter() - started, 2)
    compiled = record.get("compiled") if isinstance(record.get("compiled"), list) else []
    record["ok"] = not record["errors"] and all(
        r["lossless_vs_ar"] is not False for r in record.get("decoders") or []) and all(
        r["same_tokens"] and r["same_forwards"] for r in compiled if r["dtype"] == "float64")
    return record


def format_report(record: dict) -> str:
    env, lines = record.get("environment") or {}, []
    lines.append(f"== dlm-bench GPU check{' (DRY RUN: CPU, tiny shapes, no NVML)' if record['dry_run'] else ''} ==")
    if env:
        lines.append(f"device {env['device']}: {env['detected']}; profile {env['profile']} ({env['profile_note']})")
        lines.append(f"torch {env['torch']}, CUDA {env['cuda']}, driver {env['driver']}, transformers {env['transformers']}, "
                     f"git {str(env['git_sha'])[:12]}{' (dirty)' if env['git_dirty'] else ''}")
    nvml = record.get("nvml") or {}
    if nvml.get("read"):
        lines.append(f"NVML (one read, idle): {nvml['gpu_name']}, {_fmt(nvml['power_w'])}/{_fmt(nvml['gpu_power_limit_w'])} W, "
                     f"SM {nvml['sm_clock_mhz']}/{nvml['gpu_sm_clock_limit_mhz']} MHz, mem {nvml['mem_clock_mhz']} MHz, "
                     f"{nvml['temperature_c']} C, energy counter {_fmt(nvml['energy_counter_j'])} J, "
                     f"reasons {nvml['throttle_reasons']}")
    elif nvml:
        lines.append(f"NVML: {nvml['why']}")
    if record.get("decoders"):
        lines.append("")
        lines.append(f"reference decoders, tiny qwen3 (float64, greedy, {record['decoders'][0]['tokens']} new tokens; "
                     "one warm-up, one timed run):")
        lines.append(f"  {'mode':15s} {'tokens':>6s} {'fwds':>5s} {'TPF':>5s} {'E2E ms':>8s} {'sum fwd ms':>10s}  lossless vs ar  timing (request / forward)")
        for r in record["decoders"]:
            lossless = "-" if r["lossless_vs_ar"] is None else ("yes" if r["lossless_vs_ar"] else "NO")
            lines.append(f"  {r['mode']:15s} {r['tokens']:6d} {r['forwards']:5d} {r['tpf']:5.2f} {r['e2e_ms']:8.2f} "
                         f"{r['forward_ms_sum']:10.2f}  {lossless:14s}  {r['request_timing']} / {r['forward_timing']}")
    if record.get("roofline"):
        lines.append("")
        nominal = " (nominal CPU figures 20 GB/s, 1 TFLOP/s)" if record["dry_run"] else ""
        lines.append(f"8B shapes (Qwen3-8B config, random bf16), timing runner, profile {env.get('profile')}{nominal}:")
        lines.append("  floor = max(memory: (weights read + KV read) / bandwidth, compute: 2 x layer params x q + attention / dense bf16 rate)")
        lines.append(f"  {'kind':8s} {'q':>4s} {'batch':>5s} {'ctx':>5s} {'reps':>4s} {'median ms':>9s} {'mem floor':>9s} {'cmp floor':>9s} {'x floor':>7s} {'J/fwd':>7s}  (J/fwd: the cell's energy over its forwards)")
        for r in record["roofline"]:
            lines.append(f"  {r['kind']:8s} {r['query_tokens']:4d} {r['batch']:5d} {r['context']:5d} {r['repetitions']:4d} "
                         f"{r['median_ms']:9.3f} {r['memory_floor_ms']:9.3f} {r['compute_floor_ms']:9.3f} {r['ratio']:7.2f} "
                         f"{_fmt(r['energy_j_per_forward']):>7s}")
    if record.get("sweep"):
        lines.append("")
        lines.append(f"two-cell sweep through dlm-bench ({record['sweep']['seconds']:.0f} s; ar, linear_spec on the tiny model, "
                     f"task copy; rows per cell {[c['rows'] for c in record['sweep']['cells']]}):")
        lines.append(f"  {'mode':12s} {'status':7s} {'TPF':>5s} {'tok/s':>8s} {'E2E ms':>8s} {'J':>8s} {'J/token':>8s} {'W mean':>7s} {'SM MHz':>7s}  timing (request / forward)")
        for c in record["sweep"]["cells"]:
            lines.append(f"  {c['mode']:12s} {c['status']:7s} {_fmt(c['tpf']):>5s} {_fmt(c['tokens_per_s']):>8s} {_fmt(c['e2e_ms_median']):>8s} "
                         f"{_fmt(c['energy_j']):>8s} {_fmt(c['joules_per_token']):>8s} {_fmt(c['power_mean_w']):>7s} "
                         f"{_fmt(c['sm_clock_mean_mhz']):>7s}  {c['timing']}")
    if isinstance(record.get("compiled"), list):
        lines.append("")
        lines.append("compiled backend vs eager, tiny qwen3 (static KV cache + torch.compile; E2E of a second, warm run; "
                     "float64 must match exactly, bf16 agreement is informational):")
        lines.append(f"  {'mode':15s} {'dtype':9s} {'same tokens':>11s} {'same fwds':>9s} {'agree':>6s} {'compile s':>9s} "
                     f"{'eager ms':>9s} {'compiled ms':>11s}")
        for r in record["compiled"]:
            lines.append(f"  {r['mode']:15s} {r['dtype']:9s} {str(r['same_tokens']):>11s} {str(r['same_forwards']):>9s} "
                         f"{r['agreeing_prefix']:6.0%} {_fmt(r['compile_s']):>9s} {r['eager_e2e_ms']:9.2f} "
                         f"{r['compiled_e2e_ms']:11.2f}")
    for name in ("compiled", "benchmark"):
        if isinstance(record.get(name), dict) and "skipped" in record[name]:
            lines.append(f"{name}: skipped ({record[name]['skipped']})")
    if isinstance(record.get("benchmark"), dict) and "gpu_roofline" in record["benchmark"]:
        lines.append("benchmark: its own tables are printed above this report; 8B-shape floor fractions "
                     + ", ".join(f"q={q}: {r['floor_fraction']:.0%}" for q, r in record["benchmark"]["gpu_roofline"]["rows"].items()))
    for name, error in record["errors"].items():
        lines.append(f"FAILED {name}: {error.splitlines()[-1] if error else ''}")
    lines.append(f"overall: {'ok' if record['ok'] else 'NOT OK'}; step seconds {record.get('step_seconds')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, no NVML (what the tests run)")
    parser.add_argument("--json-out", help="also write the JSON record to this file")
    parser.add_argument("--workdir", help="keep the records here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dlm-gpu-check-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        record = run_checks(args.dry_run, workdir)
    print(format_report(record))
    line = json.dumps(_jsonable(record), allow_nan=False)
    print(f"GPU_CHECK_JSON {line}")
    if args.json_out:
        Path(args.json_out).write_text(line + "\n")
    return 0 if record["ok"] else 1


def _float(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _jsonable(value):
    """Plain JSON values: NaN (pandas' missing value) becomes null, numpy scalars and arrays plain."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _jsonable(value.tolist())
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


if __name__ == "__main__":
    sys.exit(main())
