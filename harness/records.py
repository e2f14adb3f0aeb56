"""The record schema: one parquet row per (cell, sample, repetition), tidy and versioned.

`COLUMNS` is the single source of truth for names, Arrow types and meanings; the README's
schema table is checked against it by the tests. Raw values only: TPF, TPOT, throughput and
every other statistic are derived from these columns by `harness.figures` (per row) and
`harness.report.aggregate` (per cell), never stored.
Bump `SCHEMA_VERSION` when a column changes meaning or type (adding a nullable column is a minor
bump: old files still read, the new column is null).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from harness.contracts import FORWARD_KINDS

# 2.0: engine_steps and crosscheck_flag removed; protocol, sandbox, draft-LoRA, acceptance-rule,
# engine-build and split-ITL columns added (issues 12 to 16).
SCHEMA_VERSION = "2.0"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str


_IDENTITY = [
    Column("schema_version", pa.string(), "version of this schema"),
    Column("sweep", pa.string(), "sweep name (results/<sweep>/)"),
    Column("cell_key", pa.string(), "16 hex digits hashing the resolved cell config (output paths excluded), then 8 hashing "
           "the task version and the content of a local data source and checkpoint (harness/README.md)"),
    Column("status", pa.string(), "ok | error (sample failed) | skipped (cell cannot run) | failed (cell failed)"),
    Column("error", pa.string(), "error text (or skip reason) when status is not ok"),
    Column("model", pa.string(), "model config name"),
    Column("model_source", pa.string(), "hub id, local path or builtin:<name>"),
    Column("model_revision", pa.string(), "the checkpoint loaded: a hub id's commit, as its revision (configured value in the "
           "file's cell_config) resolved in the local hub cache (null: not visible there); a local folder's "
           "sha256:<content fingerprint> (harness/README.md)"),
    Column("model_family", pa.string(), "architecture the weights ran on (qwen3, ministral3, nemotron_labs_diffusion)"),
    Column("model_dtype", pa.string(), "weight dtype"),
    Column("model_parameters", pa.int64(), "parameter count of the loaded model (draft LoRA included)"),
    Column("model_weight_bytes", pa.int64(), "bytes of all parameters (roofline numerator)"),
    Column("mode", pa.string(), "ar | diffusion | linear_spec | quadratic_spec"),
    Column("block_length", pa.int64(), "block length L actually used (null for ar)"),
    Column("threshold", pa.float64(), "diffusion commit / linear_spec draft threshold (null = fixed schedule)"),
    Column("steps", pa.int64(), "diffusion passes per block for the fixed schedule (null otherwise)"),
    Column("temperature", pa.float64(), "sampling temperature (0 = greedy)"),
    Column("acceptance_rule", pa.string(), "how drafts were verified: greedy (T = 0: argmax equals the draft) | speculative "
           "(accept with min(1, p/q), resample the residual) | sample_match (the vendor's T > 0 rule: accept while the "
           "AR sample equals the draft); null for modes without drafts"),
    Column("batch_size", pa.int64(), "sequences decoded together"),
    Column("draft_lora", pa.string(), "configured draft LoRA (null = none)"),
    Column("draft_adapter_active", pa.bool_(), "a draft pass ran with the LoRA on (null = no adapter loaded)"),
    Column("draft_lora_tensors", pa.int64(), "saved tensors of the draft LoRA loaded onto the model: all of them, or the cell "
           "fails before its first sample (null = no adapter loaded)"),
    Column("runner", pa.string(), "reference | vendor | vllm | sglang"),
    Column("backend", pa.string(), "how the reference runner ran the model (runner.backend): eager (transformers, "
           "DynamicCache; the reference) | compiled (static KV cache, forwards compiled per query shape; same tokens "
           "and forward counts); null for other runners"),
    Column("hardware", pa.string(), "configured hardware profile"),
    Column("hardware_detected", pa.string(), "device name detected at run time"),
    Column("hardware_mismatch_allowed", pa.bool_(), "the run was allowed on a device not matching the profile"),
    Column("context", pa.string(), "context config name"),
    Column("context_tokens", pa.int64(), "configured prompt length in model tokens (0 = the task's own)"),
    Column("task", pa.string(), "task name"),
    Column("task_version", pa.string(), "task version (data, prompt and scorer)"),
    Column("task_protocol", pa.string(), "whose prompts and scorer the task ran under (task.protocol): lm-eval | nemo-skills | ruler | harness"),
    Column("task_protocol_version", pa.string(), "version of that protocol in this harness (bumped when its prompt or scorer changes)"),
    Column("task_protocol_reference", pa.string(), "the reference code and version the protocol reproduces (harness/tasks/README.md)"),
    Column("seed", pa.int64(), "decode seed"),
    Column("timing_only", pa.bool_(), "random weights with real shapes: TPF and accuracy are not meaningful"),
]

_SAMPLE = [
    Column("sample_id", pa.string(), "task example id"),
    Column("repetition", pa.int64(), "0-based timed repetition of the sample (warm-up runs are not recorded)"),
    Column("prompt_tokens", pa.int64(), "prompt length in the model's tokens"),
    Column("new_tokens", pa.int64(), "tokens emitted up to and including the first EOS, at most max_new_tokens"),
    Column("max_new_tokens", pa.int64(), "generation limit"),
    Column("tokens_untrimmed", pa.int64(), "tokens the mode's vendor function returns: emitted up to the first EOS, the "
           "last accepted run or block whole (linear_spec, diffusion); at most max_new_tokens for quadratic_spec"),
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
    Column("score", pa.float64(), "the protocol's per-sample score in [0, 1]: 1/0 for a verdict, the fraction of "
           "reference strings found for RULER's string_match_all (partial credit); correct = (score == 1); null when not scored"),
    Column("score_detail", pa.string(), "why the scorer failed the sample, when not obvious"),
]

# Served engines (runners/vllm.py, runners/sglang.py). Per-request timing follows vLLM's
# `vllm bench serve`; `engine_*` counters are cell totals (read before and after the cell and
# differenced), repeated in every row of the cell; a counter the engine did not register is null,
# not 0. Reference rows leave these null.
_ENGINE = [
    Column("concurrency", pa.int64(), "requests in flight for the cell (engines; reference rows: null)"),
    Column("request_start_s", pa.float64(), "request start, seconds from the cell's benchmark start"),
    Column("cell_duration_s", pa.float64(), "the cell's benchmark duration: first request sent to last response done"),
    Column("itl_s", pa.list_(pa.float64()), "ITL as vLLM defines it: gaps between consecutive token-bearing stream chunks (one per chunk, not per token)"),
    Column("itl_split_s", pa.list_(pa.float64()), "ITL as SGLang's bench_serving defines it: each chunk's gap split evenly over its tokens (n values of gap / n)"),
    Column("chunk_tokens", pa.list_(pa.int64()), "output tokens carried by each token-bearing chunk (first chunk included)"),
    Column("engine_version", pa.string(), "engine distribution==version in the engine's venv (probe), else as the server reports it"),
    Column("engine_commit", pa.string(), "source builds: the VCS commit the engine was installed from (direct_url.json)"),
    Column("engine_source", pa.string(), "source builds: where the engine was installed from (direct_url.json url)"),
    Column("engine_build_required", pa.string(), "the build the runner config names (runner.build); on a skipped row: the build the cell needs"),
    Column("engine_capabilities", pa.string(), "JSON list of the capability probe's checks on the build ({name, ok, detail})"),
    Column("engine_max_running_requests", pa.int64(), "requests the server runs at once (--max-num-seqs / --max-running-requests, as the build keeps it)"),
    Column("engine_command", pa.string(), "full server launch command (or external:<base_url>)"),
    Column("engine_algorithm_config", pa.string(), "mode config handed to the engine (--diffusion-config JSON, --dllm-algorithm-config YAML)"),
    Column("engine_server_info", pa.string(), "the server's self-description (JSON: served model, max length; SGLang's server info)"),
    Column("engine_prompt_tokens", pa.int64(), "prompt tokens as the engine counted them (usage / meta_info)"),
    Column("engine_generation_tokens", pa.int64(), "output tokens the engine counted in the cell (vllm:generation_tokens_total delta)"),
    Column("engine_spec_num_drafts", pa.int64(), "speculative verify steps in the cell (vllm:spec_decode_num_drafts_total delta)"),
    Column("engine_spec_num_draft_tokens", pa.int64(), "draft tokens proposed in the cell (vllm:spec_decode_num_draft_tokens_total delta)"),
    Column("engine_spec_num_accepted_tokens", pa.int64(), "draft tokens accepted in the cell (vllm:spec_decode_num_accepted_tokens_total delta)"),
    Column("engine_spec_accepted_per_pos", pa.list_(pa.int64()), "accepted draft tokens per draft position in the cell (..._per_pos_total deltas)"),
    Column("engine_diffusion_denoising_steps", pa.int64(), "denoising steps in the cell (vllm:diffusion_num_denoising_steps_total delta)"),
    Column("engine_diffusion_canvas_positions", pa.int64(), "canvas positions evaluated in the cell (vllm:diffusion_num_canvas_positions_total delta)"),
    Column("engine_diffusion_committed_tokens", pa.int64(), "tokens committed in the cell (vllm:diffusion_num_committed_tokens_total delta)"),
    Column("engine_spec_verify_ct", pa.int64(), "verify steps of this request (SGLang meta_info spec_verify_ct; vLLM per-request num_spec_steps)"),
    Column("engine_spec_accepted_drafts", pa.int64(), "draft tokens accepted for this request (vLLM num_accepted_draft_tokens; SGLang spec_num_correct_drafts)"),
    Column("engine_accept_length", pa.float64(), "this request's tokens per verify step, bonus included, the prefill's first token not: 1 + accepted drafts / verify steps, both engines"),
    Column("engine_accept_length_reported", pa.float64(), "the engine's own figure (vLLM mean_acceptance_length, as above; SGLang spec_accept_length = completion tokens / verify steps)"),
    Column("engine_counter_rule", pa.string(), "how the engine_* counters were read and what they count"),
]

_ENVIRONMENT = [
    Column("env_git_sha", pa.string(), "commit of the harness"),
    Column("env_git_dirty", pa.bool_(), "uncommitted changes in the harness checkout"),
    Column("env_python", pa.string(), "Python version"),
    Column("env_torch", pa.string(), "torch version"),
    Column("env_transformers", pa.string(), "transformers version"),
    Column("env_vllm", pa.string(), "vllm version (null when not installed)"),
    Column("env_sglang", pa.string(), "sglang version (null when not installed)"),
    Column("env_nvidia_ml_py", pa.string(), "nvidia-ml-py (pynvml) version"),
    Column("env_cuda", pa.string(), "CUDA version torch was built with (null on CPU builds)"),
    Column("env_driver", pa.string(), "NVIDIA driver version (null without NVML)"),
    Column("env_cuda_driver", pa.string(), "highest CUDA version the driver supports (null without NVML)"),
    Column("env_gpu_name", pa.string(), "GPU name (null without a GPU)"),
    Column("env_gpu_count", pa.int64(), "CUDA devices visible to the process"),
    Column("env_cpu", pa.string(), "CPU model"),
    Column("env_cpu_count", pa.int64(), "logical CPUs of the host"),
    Column("env_host", pa.string(), "host name"),
    Column("env_platform", pa.string(), "OS and architecture"),
    Column("started_at", pa.timestamp("us", tz="UTC"), "when the cell started"),
    Column("shard", pa.string(), "i/N: the shard of the cell this row's job ran, 0-based (harness/shards.py); "
           "null = the cell ran as one job"),
]

_ACCURACY = [
    Column("few_shot", pa.int64(), "worked exemplars in the prompt"),
    Column("stop_strings", pa.list_(pa.string()), "strings the completion is cut at before scoring (decoders stop only at EOS)"),
    Column("stop_string_hit", pa.string(), "the stop string that cut the completion (null: none occurred)"),
    Column("chat_template", pa.bool_(), "the prompt went through the tokenizer's chat template"),
    Column("dataset_source", pa.string(), "hub dataset id, local path, or generated:seed=N"),
    Column("dataset_revision", pa.string(), "hub commit, or sha256:<hex> of the local files (null: generated)"),
    Column("dataset_split", pa.string(), "<config>/<split> the examples were read from"),
    Column("task_rows_skipped", pa.int64(), "data rows left out because they did not parse or lacked a column the task "
           "reads (task.on_bad_row=skip; 0 = none; null: the runner read no task data)"),
    Column("sample_category", pa.string(), "the dataset's grouping of the sample (SPEED-Bench category, MATH subject and level, needle depth)"),
    Column("prompt_tokens_o200k", pa.int64(), "prompt text (before any chat template) in tiktoken o200k_base tokens, SPEED-Bench's count (null: o200k_base not loadable)"),
    Column("correct_strict", pa.bool_(), "the protocol's second verdict: lm-eval GSM8K strict-match (`#### N`; `correct` is "
           "flexible-extract); null where the protocol has none"),
    Column("extracted_answer_strict", pa.string(), "the answer read for that second verdict"),
    Column("sandbox_level", pa.string(), "how generated code was isolated when it ran (harness/sandbox.py): bwrap (namespaces, "
           "seccomp, rlimits, audit hook) | unsafe (task.allow_unsafe_code=true without a kernel sandbox: rlimits and "
           "audit hook only); null where no code ran"),
]

# How each time was taken (harness/README "Timing, hardware and cost"); raw, per row.
_TIMING = [
    Column("timing_method", pa.string(), "how ttft_s / e2e_s / emit_seconds were taken: perf_counter (host) | "
           "perf_counter+cuda_sync (host, device synchronised at request start; tokens final on host readback)"),
    Column("forward_timing_method", pa.string(), "how forward_seconds were taken: cuda_event | perf_counter (null = not timed)"),
    Column("forward_cache_tokens", pa.list_(pa.int64()), "KV-cache entries each forward read (batch rows x cached length)"),
    Column("timing_warmup", pa.int64(), "untimed warm-up runs before timing (runner.warmup; not recorded)"),
    Column("compile_s", pa.float64(), "compiled backend: seconds spent compiling since the previous recorded decode (in "
           "untimed warm-up decodes: runner.warmup, and one before any decode that is the first to need a shape), in "
           "none of this row's times; rows of one batch share it, and a cell's first decode carries its warm-up's; "
           "0 = every shape was already compiled; null = eager or another runner"),
    Column("timing_min_repetitions", pa.int64(), "timed repetitions: at least this many (runner.min_repetitions) ..."),
    Column("timing_min_duration_s", pa.float64(), "... and until this many seconds were spent (runner.min_duration_s)"),
    Column("timing_max_repetitions", pa.int64(), "cap on timed repetitions (runner.max_repetitions)"),
]

# The configured hardware profile's figures: roofline and cost re-derive from the rows alone.
_HARDWARE = [
    Column("hardware_mismatch", pa.string(), "why the detected device does not match the profile (null = it matches; "
           "non-null only with hardware.allow_mismatch=true)"),
    Column("hw_device_pattern", pa.string(), "regex the profile expects the device name to match"),
    Column("hw_memory_gb", pa.float64(), "profile: memory per GPU, GB"),
    Column("hw_memory_bandwidth_gbs", pa.float64(), "profile: memory bandwidth per GPU, GB/s (roofline memory floor)"),
    Column("hw_bf16_tflops", pa.float64(), "profile: dense BF16 TFLOP/s per GPU (roofline compute floor)"),
    Column("hw_price_per_gpu_hour", pa.float64(), "profile: USD per GPU-hour (cost)"),
    Column("hw_gpus", pa.int64(), "GPUs the cell uses (cost multiplier)"),
]

# The model facts the roofline needs (harness.costs.ModelShape).
_MODEL_SHAPE = [
    Column("model_num_layers", pa.int64(), "transformer layers"),
    Column("model_num_attention_heads", pa.int64(), "query heads per layer"),
    Column("model_head_dim", pa.int64(), "dimension per head"),
    Column("model_kv_bytes_per_token", pa.int64(), "bytes of K and V of one token over all layers, at the cache dtype"),
    Column("model_forward_weight_bytes", pa.int64(), "weight bytes every forward reads (all but the input-embedding table)"),
    Column("model_block_parameters", pa.int64(), "parameters of the transformer layers (each query token multiplies through them)"),
]

# NVML telemetry of the cell (harness/telemetry.py): the same on every row of a cell; null without NVML.
_TELEMETRY = [
    Column("gpu_name", pa.string(), "GPU name reported by NVML"),
    Column("gpu_uuid", pa.string(), "GPU UUID reported by NVML (which physical GPU ran the cell)"),
    Column("gpu_memory_total_bytes", pa.int64(), "GPU memory, bytes"),
    Column("gpu_memory_used_max_bytes", pa.int64(), "highest memory in use over the cell's samples, bytes"),
    Column("gpu_power_limit_w", pa.float64(), "enforced power limit, W"),
    Column("gpu_power_draw_mean_w", pa.float64(), "mean power draw over the cell's samples, W"),
    Column("gpu_power_draw_max_w", pa.float64(), "highest power draw sampled, W"),
    Column("gpu_sm_clock_limit_mhz", pa.int64(), "maximum SM clock of the GPU, MHz"),
    Column("gpu_sm_clock_mean_mhz", pa.float64(), "mean SM clock over the samples, MHz"),
    Column("gpu_sm_clock_min_mhz", pa.int64(), "lowest SM clock sampled, MHz"),
    Column("gpu_mem_clock_mean_mhz", pa.float64(), "mean memory clock over the samples, MHz"),
    Column("gpu_temperature_max_c", pa.int64(), "highest GPU temperature sampled, C"),
    Column("gpu_throttle_reasons", pa.list_(pa.string()), "NVML clock-event (throttle) reasons seen in any sample"),
    Column("gpu_energy_j", pa.float64(), "total-energy counter delta over gpu_energy_region, J"),
    Column("gpu_energy_region_s", pa.float64(), "seconds the energy covers"),
    Column("gpu_energy_region", pa.string(), "timed (the runner's timed work only, warm-up excluded) | cell (the whole run)"),
    Column("gpu_telemetry_samples", pa.int64(), "NVML samples taken (raw series in the file's gpu_telemetry metadata)"),
]

COLUMNS: list[Column] = (
    _IDENTITY + _SAMPLE + _ENGINE + _ENVIRONMENT + _ACCURACY + _TIMING + _HARDWARE + _MODEL_SHAPE + _TELEMETRY
)
COLUMN_NAMES = [c.name for c in COLUMNS]

# What a cell measured: the columns that hold one value in every row of a cell (they come from its
# resolved config or from what its runner found while preparing it). Rows are grouped into cells by
# `cell_key` alone; these columns describe a cell, taken from its rows. Every column of the identity
# group counts, so a column added there is part of every cell's description and of the pairing rule
# below without further change.
_BOOKKEEPING = ("schema_version", "cell_key", "status", "error")
CELL_IDENTITY: tuple[str, ...] = (
    *(c.name for c in _IDENTITY if c.name not in _BOOKKEEPING),
    "max_new_tokens", "concurrency", "few_shot", "chat_template", "stop_strings", "dataset_source",
    "dataset_revision", "dataset_split",
)

# The columns a subject cell and its baseline may differ in when they are compared (a mode against
# ar, one model against another): the model and how it decodes. Every other CELL_IDENTITY column
# (sweep, hardware, runner, task and its version, context, generation limit, temperature, batch size,
# seed, data, prompt format, concurrency, ...) must be equal, or the two cells are not compared.
BASELINE_MAY_DIFFER: tuple[str, ...] = (
    "model", "model_source", "model_revision", "model_family", "model_parameters", "model_weight_bytes",
    "mode", "block_length", "threshold", "steps", "acceptance_rule", "draft_lora", "draft_adapter_active",
    "draft_lora_tensors",
)
PAIRING_KEYS: tuple[str, ...] = tuple(c for c in CELL_IDENTITY if c not in BASELINE_MAY_DIFFER)

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
