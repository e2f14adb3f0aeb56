"""SGLang, served: `python -m sglang.launch_server` in the environment of the build the runner
config names (runner.build, runner.venv), with --incremental-streaming-output.

Mode -> flags (dLLM support for Nemotron-Labs-Diffusion: SGLang PR #25803 for FastDiffuser; the
branch upstream/2-dllm-linearspec of the fork hutm/sglang for the rest):
  ar           plain; on Nemotron-Labs-Diffusion the vendor recipe's AR switch,
               --json-model-override-args {"ar_mode": true} (every attention layer causal)
  diffusion    --dllm-algorithm FastDiffuser (runner.diffusion_algorithm) with a
               --dllm-algorithm-config YAML {block_size, causal_context: true, threshold, max_steps}
  linear_spec  --dllm-algorithm LinearSpec with {block_size, causal_context: true} (+ lora_path,
               lora_mode: draft_only for the draft LoRA)
EAGLE-3 is `runner.speculative` ({algorithm: EAGLE3, draft_model_path: ...} -> --speculative-*),
valid with mode ar only. Requests go to /generate by default: its meta_info carries per-request
speculative statistics (spec_verify_ct, spec_accept_length) that /v1/completions does not.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from harness.config import ConfigError
from harness.engine_metrics import accept_length_per_verify
from runners.engines.runner import EngineRunner, Launch, ModelFacts, http_json_or_none, server_flags

NEMOTRON_AR_OVERRIDE = {"ar_mode": True}

COUNTER_RULE = (
    "SGLang per-request meta_info of the final /generate event: engine_spec_verify_ct = spec_verify_ct "
    "(verify forwards of the target model for this request, prefill excluded), "
    "engine_spec_accepted_drafts = spec_num_correct_drafts (spec_accepted_drafts in older builds), "
    "engine_accept_length_reported = spec_accept_length = completion_tokens / spec_verify_ct (bonus token "
    "and the prefill's first token included), engine_accept_length = 1 + accepted drafts / verify steps "
    "(vLLM's convention: the first token left out). No cell counters are differenced "
    "(engine_spec_num_*/engine_diffusion_* stay null); dLLM algorithms report no per-request forward "
    "counts through the API, so their engine TPF is null unless meta_info carries spec_verify_ct."
)


def _yaml(mapping: dict) -> str:
    """A flat mapping as YAML (JSON scalars are valid YAML scalars; keys keep their order)."""
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in mapping.items())


def dllm_config(bench, facts: ModelFacts) -> dict:
    """The --dllm-algorithm-config mapping for the cell's mode (causal_context: true for Nemotron:
    the prompt is prefilled causally and its last logit seeds the first block)."""
    mode, cfg = bench.mode, bench.runner
    config: dict = {"block_size": facts.block_length, "causal_context": True}
    if mode.name == "diffusion":
        config["threshold"] = mode.threshold  # null = the even schedule over max_steps
        config["max_steps"] = mode.steps or facts.block_length
        config["temperature"] = mode.temperature
    if mode.name == "linear_spec" and mode.use_draft_lora:
        config["lora_path"] = draft_lora_path(bench, facts)
        config["lora_mode"] = "draft_only"  # LoRA on draft passes only, as the vendor's linear_spec_generate
    config.update(cfg.dllm_algorithm_config or {})
    return config


def draft_lora_path(bench, facts: ModelFacts) -> str:
    if "lora_path" in (bench.runner.dllm_algorithm_config or {}):
        return bench.runner.dllm_algorithm_config["lora_path"]
    lora = bench.model.draft_lora
    candidates = [Path(lora), Path(facts.source) / lora] if lora else []
    for path in candidates:
        if (path / "adapter_config.json").exists():
            return str(path)
    raise ConfigError(f"runner.dllm_algorithm_config.lora_path: SGLang needs the draft LoRA as a local folder; "
                      f"model.draft_lora={lora!r} is not one under {facts.source}: download it and set lora_path")


def write_algorithm_config(text: str) -> Path:
    """A stable path per content, so consecutive cells with the same config reuse the server."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"dlm-bench-sglang-dllm-{digest}.yaml"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def mode_arguments(bench, facts: ModelFacts) -> tuple[list[str], str | None]:
    mode, cfg = bench.mode, bench.runner
    if cfg.speculative and mode.name != "ar":
        raise ConfigError(f"runner.speculative: engine speculation is an ar baseline; mode {mode.name} "
                          "runs the model's own decoding; drop it or use mode=ar")
    if mode.name == "ar":
        if facts.family == "nemotron_labs_diffusion":
            override = json.dumps(NEMOTRON_AR_OVERRIDE)
            return ["--json-model-override-args", override], override
        return [], None
    if mode.name in ("diffusion", "linear_spec"):
        algorithm = cfg.diffusion_algorithm if mode.name == "diffusion" else "LinearSpec"
        text = _yaml(dllm_config(bench, facts))
        path = write_algorithm_config(text)
        return ["--dllm-algorithm", algorithm, "--dllm-algorithm-config", str(path)], f"# {algorithm}\n{text}"
    raise ConfigError(f"mode.name: SGLang runs modes {', '.join(SglangRunner.modes)}, not {mode.name}")


class SglangRunner(EngineRunner):
    name = "sglang"
    modes = ("ar", "diffusion", "linear_spec")
    counter_rule = COUNTER_RULE

    def launch(self, bench, facts: ModelFacts, python: str) -> Launch:
        cfg, model = bench.runner, bench.model
        command = [python, "-m", "sglang.launch_server", "--model-path", facts.source, *server_flags(model)]
        mode_args, algorithm_config = mode_arguments(bench, facts)
        command += mode_args
        probe: dict = {"flags": []}
        if "--dllm-algorithm" in mode_args:
            probe.update(dllm_algorithm=mode_args[mode_args.index("--dllm-algorithm") + 1],
                         dllm_config=dllm_config(bench, facts), flags=["--dllm-algorithm-config"])
        if "--json-model-override-args" in mode_args:
            probe["model_overrides"] = json.loads(algorithm_config)
        if cfg.speculative:
            for key, value in cfg.speculative.items():
                command += [f"--speculative-{key.replace('_', '-')}", str(value)]
            algorithm_config = json.dumps(dict(cfg.speculative), sort_keys=True)
        command += ["--max-running-requests", str(cfg.max_running_requests)]
        if cfg.incremental_streaming_output:
            command.append("--incremental-streaming-output")
            probe["flags"].append("--incremental-streaming-output")
        command += list(cfg.server_args)
        return Launch(command, algorithm_config, probe)

    def stream_options(self) -> dict:
        if self.protocol != "generate":
            return {}
        return {"incremental": self.runner_cfg.incremental_streaming_output}

    def server_info(self, base_url: str, served: dict) -> dict:
        return {"served_model": served, "server_info": self._server_info(base_url)}

    @staticmethod
    def _server_info(base_url: str) -> dict | None:
        # /server_info first: /get_server_info is its deprecated alias
        return http_json_or_none(f"{base_url}/server_info") or http_json_or_none(f"{base_url}/get_server_info")

    def served_version(self, base_url: str) -> str | None:
        info = self._server_info(base_url) or {}
        return f"sglang=={info['version']}" if info.get("version") else None

    def request_columns(self, result, new_tokens: int | None) -> dict:
        meta = result.engine_meta
        if not meta:
            return {}
        verify = meta.get("spec_verify_ct")
        accepted = meta.get("spec_num_correct_drafts", meta.get("spec_accepted_drafts"))
        return {
            "engine_spec_verify_ct": verify,
            "engine_spec_accepted_drafts": accepted,
            "engine_accept_length": accept_length_per_verify(verify, accepted, new_tokens),
            "engine_accept_length_reported": meta.get("spec_accept_length"),
        }
