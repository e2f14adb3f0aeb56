"""vLLM, served: `<python> -m vllm.entrypoints.cli.main serve` (the `vllm serve` command; the
deprecated api_server module with runner.entrypoint=api_server) in the environment of the build
the runner config names (runner.build, runner.venv).

Mode -> flags (the harness's mode config stays the single source of truth):
  ar         plain; on Nemotron-Labs-Diffusion --hf-overrides {"ar_mode": true} (vLLM PR #48279's
             documented AR switch: causal attention, the standard scheduler and sampler)
  diffusion  --diffusion-config {canvas_length: L, selection_policy, confidence_threshold |
             max_denoising_steps} (PR #48279's nemotron_dllm masked-diffusion sampler)
EAGLE-3 and other engine speculation is a runner option (`runner.speculative_config`), valid
with mode ar only: it is a stronger autoregressive baseline, not one of the model's own modes.
"""

from __future__ import annotations

import json
import logging

from harness.config import ConfigError
from harness.engine_metrics import accept_length_per_verify
from runners.engines.prometheus import Snapshot, counter_delta, fetch_metrics, per_label_delta
from runners.engines.runner import EngineRunner, Launch, ModelFacts, http_json_or_none, server_flags

log = logging.getLogger("dlm-bench")

NEMOTRON_AR_OVERRIDE = {"ar_mode": True}
ENTRYPOINTS = {  # runner.entrypoint -> module and arguments before the model
    "serve": ("vllm.entrypoints.cli.main", "serve"),  # `vllm serve MODEL`
    "api_server": ("vllm.entrypoints.openai.api_server", "--model"),  # deprecated by vLLM
}

# record column -> vLLM counter, per family. vLLM registers the spec-decode family only with a
# speculative config and the diffusion family only for diffusion models: a family absent from
# /metrics was not measured, so its columns stay null (never 0).
FAMILIES = {
    "generation": {"engine_generation_tokens": "vllm:generation_tokens_total"},
    "spec_decode": {
        "engine_spec_num_drafts": "vllm:spec_decode_num_drafts_total",
        "engine_spec_num_draft_tokens": "vllm:spec_decode_num_draft_tokens_total",
        "engine_spec_num_accepted_tokens": "vllm:spec_decode_num_accepted_tokens_total",
    },
    "diffusion": {
        "engine_diffusion_denoising_steps": "vllm:diffusion_num_denoising_steps_total",
        "engine_diffusion_canvas_positions": "vllm:diffusion_num_canvas_positions_total",
        "engine_diffusion_committed_tokens": "vllm:diffusion_num_committed_tokens_total",
    },
}
PER_POSITION = "vllm:spec_decode_num_accepted_tokens_per_pos_total"

COUNTER_RULE = (
    "vLLM /metrics read after the warm-up and after the cell, differenced (cell totals, repeated in "
    "every row of the cell); a counter family absent from /metrics (vLLM registers spec_decode only "
    "with a speculative config, diffusion only for diffusion models) is null, not 0. Speculative: "
    "acceptance length = 1 + accepted / drafts (bonus token included, the prefill's first token "
    "not), one draft = one verify forward of the target model per request; engine TPF = acceptance "
    "length (target forwards, prefill and draft-model forwards excluded). Diffusion: engine TPF = "
    "committed tokens / denoising steps, a denoising step being an engine step that evaluated the "
    "request's canvas (vLLM's scheduler rule; prefill excluded). Per request (engine_spec_verify_ct, "
    "engine_spec_accepted_drafts, engine_accept_length, accept_lengths): vLLM's "
    "metrics.speculative_decoding of the final usage chunk (--per-request-spec-decode-metrics detailed)."
)


def mode_arguments(bench, facts: ModelFacts) -> tuple[list[str], str | None]:
    """Flags that make vLLM decode in the cell's mode, and the config text they carry."""
    mode, cfg = bench.mode, bench.runner
    if cfg.speculative_config and mode.name != "ar":
        raise ConfigError(f"runner.speculative_config: engine speculation is an ar baseline; mode {mode.name} "
                          "runs the model's own decoding; drop the speculative config or use mode=ar")
    if mode.name == "ar":
        if facts.family == "nemotron_labs_diffusion":
            override = json.dumps(NEMOTRON_AR_OVERRIDE)
            return ["--hf-overrides", override], override
        return [], None
    if mode.name == "diffusion":
        config = {"canvas_length": facts.block_length}
        if mode.threshold is not None:
            config.update(selection_policy="confidence_threshold", confidence_threshold=mode.threshold)
        else:  # fixed schedule: the masked count spread evenly over `steps` passes
            config.update(selection_policy="low_confidence", max_denoising_steps=mode.steps or facts.block_length)
        if mode.temperature:
            config["temperature"] = mode.temperature
        config.update(cfg.diffusion_config or {})
        text = json.dumps(config, sort_keys=True)
        return ["--diffusion-config", text], text
    raise ConfigError(f"mode.name: vLLM runs modes {', '.join(VllmRunner.modes)}, not {mode.name}")


class VllmRunner(EngineRunner):
    name = "vllm"
    modes = ("ar", "diffusion")
    counter_rule = COUNTER_RULE

    def launch(self, bench, facts: ModelFacts, python: str) -> Launch:
        cfg, model = bench.runner, bench.model
        command = [python, "-m", *ENTRYPOINTS[cfg.entrypoint], facts.source, *server_flags(model)]
        mode_args, algorithm_config = mode_arguments(bench, facts)
        command += mode_args
        probe: dict = {"entrypoint": cfg.entrypoint}
        if "--diffusion-config" in mode_args:
            probe["diffusion_config"] = json.loads(algorithm_config)
        if "--hf-overrides" in mode_args:
            probe["hf_overrides"] = json.loads(algorithm_config)
        if cfg.speculative_config:
            speculative = json.dumps(dict(cfg.speculative_config), sort_keys=True)
            command += ["--speculative-config", speculative]
            algorithm_config = speculative
            if cfg.per_request_spec_metrics:
                command += ["--per-request-spec-decode-metrics", "detailed"]
        command += ["--max-num-seqs", str(cfg.max_running_requests), *cfg.server_args]
        return Launch(command, algorithm_config, probe)

    def served_version(self, base_url: str) -> str | None:
        reported = http_json_or_none(f"{base_url}/version") or {}
        return f"vllm=={reported['version']}" if reported.get("version") else None

    def read_counters(self, base_url: str) -> Snapshot | None:
        try:
            return Snapshot(fetch_metrics(base_url))
        except OSError:
            return None

    def counter_columns(self, bench, before: Snapshot, after: Snapshot) -> dict:
        columns = {column: counter_delta(before, after, name) for family in FAMILIES.values()
                   for column, name in family.items()}
        columns["engine_spec_accepted_per_pos"] = per_label_delta(before, after, PER_POSITION, "position")
        expected = {"spec_decode": bool(bench.runner.speculative_config), "diffusion": bench.mode.name == "diffusion"}
        for family, configured in expected.items():
            if configured and all(columns[c] is None for c in FAMILIES[family]):
                log.warning("vLLM registered no %s counters although the cell configures it: %s are null "
                            "(is the mechanism on in this build?)", family, ", ".join(FAMILIES[family]))
        return columns

    def request_columns(self, result, new_tokens: int | None) -> dict:
        meta = result.engine_meta
        if not meta:
            return {}
        per_step = meta.get("per_step_accepted")
        verify, accepted = meta.get("num_spec_steps"), meta.get("num_accepted_draft_tokens")
        return {
            "engine_spec_verify_ct": verify,
            "engine_spec_accepted_drafts": accepted,
            "engine_accept_length": accept_length_per_verify(verify, accepted, new_tokens),
            "engine_accept_length_reported": meta.get("mean_acceptance_length"),
            # tokens emitted per verify step = accepted drafts + the bonus token
            "accept_lengths": [int(a) + 1 for a in per_step] if per_step is not None else None,
        }
