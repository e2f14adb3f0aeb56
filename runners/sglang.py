"""SGLang, served: `python -m sglang.launch_server` in SGLang's own environment.

Mode -> flags (dLLM support for Nemotron-Labs-Diffusion: SGLang PR #25803 and its stack):
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
from runners.engines.runner import EngineRunner, Launch, ModelFacts, http_json_or_none, package_version, server_flags

COUNTER_RULE = (
    "SGLang per-request meta_info of the final /generate event: engine_spec_verify_ct = spec_verify_ct "
    "(verify forwards of the target model for this request, prefill excluded), engine_accept_length = "
    "spec_accept_length = completion_tokens / spec_verify_ct (bonus token and the prefill's first token "
    "included); engine TPF = completion_tokens / spec_verify_ct. No cell counters are differenced "
    "(engine_spec_*/engine_diffusion_* stay null); dLLM algorithms report no per-request forward "
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
            override = json.dumps({"ar_mode": True})
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
    distributions = ("sglang",)
    counter_rule = COUNTER_RULE

    def launch(self, bench, facts: ModelFacts, python: str) -> Launch:
        cfg, model = bench.runner, bench.model
        command = [python, "-m", "sglang.launch_server", "--model-path", facts.source, *server_flags(model)]
        mode_args, algorithm_config = mode_arguments(bench, facts)
        command += mode_args
        if cfg.speculative:
            for key, value in cfg.speculative.items():
                command += [f"--speculative-{key.replace('_', '-')}", str(value)]
            algorithm_config = json.dumps(dict(cfg.speculative), sort_keys=True)
        command += list(cfg.server_args)
        return Launch(command, algorithm_config)

    def server_info(self, base_url: str, served: dict) -> dict:
        info = http_json_or_none(f"{base_url}/get_server_info") or http_json_or_none(f"{base_url}/server_info")
        return {"served_model": served, "server_info": info}

    def engine_version(self, base_url: str, python: str | None) -> str | None:
        for path in ("/get_server_info", "/server_info"):
            info = http_json_or_none(f"{base_url}{path}") or {}
            if info.get("version"):
                return f"sglang=={info['version']}"
        return package_version(python, self.distributions) if python else None

    def request_columns(self, result) -> dict:
        meta = result.engine_meta
        if not meta:
            return {}
        return {"engine_spec_verify_ct": meta.get("spec_verify_ct"), "engine_accept_length": meta.get("spec_accept_length")}
