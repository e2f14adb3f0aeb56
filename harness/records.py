"""The record schema: one parquet row per (cell, sample, repetition), tidy and versioned.

`COLUMNS` is the single source of truth for names, Arrow types and meanings; the README's
schema table is checked against it by the tests. Raw values only: TPF, TPOT, throughput and
every other statistic are derived from these columns by `harness.metrics`, never stored.
Bump `SCHEMA_VERSION` when a column changes meaning or type (adding a nullable column is a minor
bump: old files still read, the new column is null).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from reference_decoders.counting import FORWARD_KINDS

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str


_IDENTITY = [
    Column("schema_version", pa.string(), "version of this schema"),
    Column("sweep", pa.string(), "sweep name (results/<sweep>/)"),
    Column("cell_key", pa.string(), "hash of the resolved cell config, output paths excluded"),
    Column("status", pa.string(), "ok | error (sample failed) | skipped (cell cannot run) | failed (cell failed)"),
    Column("error", pa.string(), "error text (or skip reason) when status is not ok"),
    Column("model", pa.string(), "model config name"),
    Column("model_source", pa.string(), "hub id, local path or builtin:<name>"),
    Column("model_revision", pa.string(), "configured revision (null = default branch)"),
    Column("model_family", pa.string(), "architecture the weights ran on (qwen3, ministral3, nemotron_labs_diffusion)"),
    Column("model_dtype", pa.string(), "weight dtype"),
    Column("model_parameters", pa.int64(), "parameter count of the loaded model (draft LoRA included)"),
    Column("model_weight_bytes", pa.int64(), "bytes of all parameters (roofline numerator)"),
    Column("mode", pa.string(), "ar | diffusion | linear_spec | quadratic_spec"),
    Column("block_length", pa.int64(), "block length L actually used (null for ar)"),
    Column("threshold", pa.float64(), "diffusion commit / linear_spec draft threshold (null = fixed schedule)"),
    Column("steps", pa.int64(), "diffusion passes per block for the fixed schedule (null otherwise)"),
    Column("temperature", pa.float64(), "sampling temperature (0 = greedy)"),
    Column("batch_size", pa.int64(), "sequences decoded together"),
    Column("draft_lora", pa.string(), "configured draft LoRA (null = none)"),
    Column("draft_adapter_active", pa.bool_(), "a draft pass ran with the LoRA on (null = no adapter loaded)"),
    Column("runner", pa.string(), "reference | vendor | vllm | sglang"),
    Column("hardware", pa.string(), "configured hardware profile"),
    Column("hardware_detected", pa.string(), "device name detected at run time"),
    Column("hardware_mismatch_allowed", pa.bool_(), "the run was allowed on a device not matching the profile"),
    Column("context", pa.string(), "context config name"),
    Column("context_tokens", pa.int64(), "configured prompt length in model tokens (0 = the task's own)"),
    Column("task", pa.string(), "task name"),
    Column("task_version", pa.string(), "task version (data, prompt and scorer)"),
    Column("seed", pa.int64(), "decode seed"),
    Column("timing_only", pa.bool_(), "random weights with real shapes: TPF and accuracy are not meaningful"),
]

_SAMPLE = [
    Column("sample_id", pa.string(), "task example id"),
    Column("repetition", pa.int64(), "0-based timed repetition of the sample (warm-up runs are not recorded)"),
    Column("prompt_tokens", pa.int64(), "prompt length in the model's tokens"),
    Column("new_tokens", pa.int64(), "tokens emitted up to and including the first EOS, at most max_new_tokens"),
    Column("max_new_tokens", pa.int64(), "generation limit"),
    Column("tokens_untrimmed", pa.int64(), "tokens the decoder emitted before trimming (vendor linear_spec returns these)"),
    Column("finish_reason", pa.string(), "eos | length"),
    Column("output_token_ids", pa.list_(pa.int64()), "the new tokens"),
    Column("output_text", pa.string(), "decoded new tokens (special tokens skipped)"),
    *[Column(f"forwards_{kind}", pa.int64(), f"model forwards of kind {kind}, counted by a hook") for kind in FORWARD_KINDS],
    *[Column(f"query_tokens_{kind}", pa.int64(), f"query tokens (batch rows x length) processed by {kind} forwards") for kind in FORWARD_KINDS],
    Column("accept_lengths", pa.list_(pa.int64()), "tokens emitted per verify step (speculative modes)"),
    Column("vendor_nfe", pa.int64(), "the vendor's nfe for this mode, reproduced from our counts"),
    Column("vendor_nfe_rule", pa.string(), "what that vendor nfe counts"),
    Column("forward_kinds", pa.list_(pa.string()), "kind of each forward, in call order"),
    Column("forward_query_tokens", pa.list_(pa.int64()), "query tokens of each forward"),
    Column("forward_seconds", pa.list_(pa.float64()), "wall time of each forward (device synchronised)"),
    Column("emit_seconds", pa.list_(pa.float64()), "seconds from request start at which tokens became final"),
    Column("emit_counts", pa.list_(pa.int64()), "tokens final at each of those moments (cumulative)"),
    Column("ttft_s", pa.float64(), "request start to first token final"),
    Column("e2e_s", pa.float64(), "request start to last token final"),
    Column("reference_answer", pa.string(), "the task's expected answer"),
    Column("extracted_answer", pa.string(), "the answer read from the completion"),
    Column("correct", pa.bool_(), "scored correct (null when not scored)"),
    Column("score_detail", pa.string(), "why the scorer failed the sample, when not obvious"),
]

# Served engines (runners/vllm.py, runners/sglang.py). Per-request timing follows vLLM's
# `vllm bench serve`; `engine_*` counters are cell totals (read before and after the cell and
# differenced), repeated in every row of the cell. Reference rows leave these null.
_ENGINE = [
    Column("concurrency", pa.int64(), "requests in flight for the cell (engines; reference rows: null)"),
    Column("request_start_s", pa.float64(), "request start, seconds from the cell's benchmark start"),
    Column("cell_duration_s", pa.float64(), "the cell's benchmark duration: first request sent to last response done"),
    Column("itl_s", pa.list_(pa.float64()), "gaps between consecutive token-bearing stream chunks (one per chunk, not per token)"),
    Column("chunk_tokens", pa.list_(pa.int64()), "output tokens carried by each token-bearing chunk (first chunk included)"),
    Column("engine_version", pa.string(), "engine package version as the server reports it"),
    Column("engine_command", pa.string(), "full server launch command (or external:<base_url>)"),
    Column("engine_algorithm_config", pa.string(), "mode config handed to the engine (--diffusion-config JSON, --dllm-algorithm-config YAML)"),
    Column("engine_server_info", pa.string(), "the server's self-description (JSON: served model, max length; SGLang's server info)"),
    Column("engine_prompt_tokens", pa.int64(), "prompt tokens as the engine counted them (usage / meta_info)"),
    Column("engine_steps", pa.int64(), "engine scheduler steps in the cell (vllm:iteration_tokens_total count delta; one batched forward each)"),
    Column("engine_generation_tokens", pa.int64(), "output tokens the engine counted in the cell (vllm:generation_tokens_total delta)"),
    Column("engine_spec_num_drafts", pa.int64(), "speculative verify steps in the cell (vllm:spec_decode_num_drafts_total delta)"),
    Column("engine_spec_num_draft_tokens", pa.int64(), "draft tokens proposed in the cell (vllm:spec_decode_num_draft_tokens_total delta)"),
    Column("engine_spec_num_accepted_tokens", pa.int64(), "draft tokens accepted in the cell (vllm:spec_decode_num_accepted_tokens_total delta)"),
    Column("engine_spec_accepted_per_pos", pa.list_(pa.int64()), "accepted draft tokens per draft position in the cell (..._per_pos_total deltas)"),
    Column("engine_diffusion_denoising_steps", pa.int64(), "denoising steps in the cell (vllm:diffusion_num_denoising_steps_total delta)"),
    Column("engine_diffusion_canvas_positions", pa.int64(), "canvas positions evaluated in the cell (vllm:diffusion_num_canvas_positions_total delta)"),
    Column("engine_diffusion_committed_tokens", pa.int64(), "tokens committed in the cell (vllm:diffusion_num_committed_tokens_total delta)"),
    Column("engine_spec_verify_ct", pa.int64(), "verify steps of this request (SGLang meta_info spec_verify_ct; vLLM per-request num_spec_steps)"),
    Column("engine_accept_length", pa.float64(), "this request's mean tokens per verify step, bonus included, as the engine reports it"),
    Column("engine_counter_rule", pa.string(), "how the engine_* counters were read and what they count"),
    Column("crosscheck_flag", pa.string(), "engine vs reference TPF / acceptance length: ok | mismatch: ... | no_reference | not_comparable: ..."),
]

_ENVIRONMENT = [
    Column("env_git_sha", pa.string(), "commit of the harness"),
    Column("env_git_dirty", pa.bool_(), "uncommitted changes in the harness checkout"),
    Column("env_python", pa.string(), "Python version"),
    Column("env_torch", pa.string(), "torch version"),
    Column("env_transformers", pa.string(), "transformers version"),
    Column("env_cuda", pa.string(), "CUDA version torch was built with (null on CPU builds)"),
    Column("env_driver", pa.string(), "NVIDIA driver version (null without NVML)"),
    Column("env_gpu_name", pa.string(), "GPU name (null without a GPU)"),
    Column("env_cpu", pa.string(), "CPU model"),
    Column("env_host", pa.string(), "host name"),
    Column("env_platform", pa.string(), "OS and architecture"),
    Column("started_at", pa.timestamp("us", tz="UTC"), "when the cell started"),
]

COLUMNS: list[Column] = _IDENTITY + _SAMPLE + _ENGINE + _ENVIRONMENT
COLUMN_NAMES = [c.name for c in COLUMNS]
SCHEMA = pa.schema(
    [pa.field(c.name, c.type, nullable=True, metadata={"doc": c.doc}) for c in COLUMNS],
    metadata={"dlm_bench_schema_version": SCHEMA_VERSION},
)


class SchemaError(ValueError):
    pass


def to_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts keyed by column name) -> an Arrow table with exactly `SCHEMA`."""
    known = set(COLUMN_NAMES)
    for row in rows:
        unknown = set(row) - known
        if unknown:
            raise SchemaError(f"unknown record column(s) {sorted(unknown)}; the schema is harness.records.COLUMNS")
    full = [{name: row.get(name) for name in COLUMN_NAMES} for row in rows]
    return pa.Table.from_pylist(full, schema=SCHEMA)


def markdown_table() -> str:
    """The schema as the Markdown table in results/README.md (`python -m harness.records`)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {c.doc.replace('|', '/')} |" for c in COLUMNS]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
