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

_ACCURACY = [
    Column("few_shot", pa.int64(), "worked exemplars in the prompt"),
    Column("stop_strings", pa.list_(pa.string()), "strings the completion is cut at before scoring (decoders stop only at EOS)"),
    Column("stop_string_hit", pa.string(), "the stop string that cut the completion (null: none occurred)"),
    Column("chat_template", pa.bool_(), "the prompt went through the tokenizer's chat template"),
    Column("dataset_source", pa.string(), "hub dataset id, local path, or generated:seed=N"),
    Column("dataset_revision", pa.string(), "hub commit, or sha256:<hex> of the local files (null: generated)"),
    Column("dataset_split", pa.string(), "<config>/<split> the examples were read from"),
    Column("sample_category", pa.string(), "the dataset's grouping of the sample (SPEED-Bench category, MATH subject and level, needle depth)"),
    Column("prompt_tokens_o200k", pa.int64(), "prompt text (before any chat template) in tiktoken o200k_base tokens, SPEED-Bench's count (null: o200k_base not loadable)"),
    Column("correct_strict", pa.bool_(), "correct under the task's strict answer format (GSM8K `#### N`); null where it has none"),
    Column("extracted_answer_strict", pa.string(), "the answer read by the strict format"),
]

COLUMNS: list[Column] = _IDENTITY + _SAMPLE + _ENVIRONMENT + _ACCURACY
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
