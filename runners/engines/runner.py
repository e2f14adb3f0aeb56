"""What vLLM and SGLang runners share: launch or reach the server, send the cell, build records.

One cell: probe the engine build (runners/engines/builds.py; a build that cannot serve the cell
skips it before anything loads), warm-up requests (not recorded), read the engine's counters, send
`num_requests` requests with `concurrency` in flight, read the counters again, difference them.
Every row carries the engine build, the full launch command and the cell's counter deltas. A
server that fails to start or dies during the cell raises `EngineServerError` with its log tail,
which the harness records as a failed cell before going on with the sweep.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import zlib
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness.config import ConfigError
from harness.engine_metrics import itl_per_chunk, itl_split_per_token
from harness.models import resolve_source
from harness.prompts import Unfittable
from reference_decoders.loading import load_tokenizer, read_checkpoint_config
from reference_decoders.params import DEFAULT_BLOCK_LENGTH
from runners.base import CellInfo, Runner, SampleResult
from runners.engines.builds import build_columns, engine_python, require_build, run_probe
from runners.engines.client import RequestSpec, StreamResult, run_requests
from runners.engines.server import SERVERS, EngineServer, EngineServerError, http_json, http_ok, served_models


@dataclass(frozen=True)
class ModelFacts:
    source: str  # resolved: a local path or a hub id
    family: str | None  # nemotron_labs_diffusion, qwen3, ... (None: unknown)
    block_length: int | None  # resolved for the non-ar modes
    architecture: str | None = None  # the checkpoint's architectures[0] (what the engine's registry must know)


@dataclass
class Launch:
    command: list[str]  # without --port (the server picks a free port at start)
    algorithm_config: str | None = None  # what the mode handed the engine (JSON / YAML text)
    probe: dict = field(default_factory=dict)  # what probe.py must confirm the build serves


def model_facts(bench) -> ModelFacts:
    source = resolve_source(bench.model.source)
    try:
        raw = read_checkpoint_config(source, bench.model.revision)
    except (OSError, ValueError):
        raw = {}
    family = bench.model.family if bench.model.family != "auto" else raw.get("model_type")
    block_length = None
    if bench.mode.name != "ar":
        block_length = bench.mode.block_length or raw.get("block_size") or DEFAULT_BLOCK_LENGTH
    architecture = (raw.get("architectures") or [None])[0]
    return ModelFacts(source=source, family=family, block_length=block_length, architecture=architecture)


class EngineRunner(Runner):
    """Subclasses say how to launch their engine and what its counters and per-request fields mean."""

    name: str
    modes: tuple[str, ...]
    counter_rule: str

    def __init__(self):
        self.base_url: str | None = None
        self.server: EngineServer | None = None
        self.model_id: str | None = None
        self.protocol: str = "openai"
        self.cell_columns: dict = {}
        self.tokenizer = None
        self.runner_cfg = None

    # -- engine specifics -------------------------------------------------------------------
    @abstractmethod
    def launch(self, bench, facts: ModelFacts, python: str) -> Launch:
        """The server command (no port) for this cell's model and mode."""

    @abstractmethod
    def served_version(self, base_url: str) -> str | None:
        """The version the running server reports (for runner.base_url servers and probe=false)."""

    def server_info(self, base_url: str, served: dict) -> dict:
        return {"served_model": served}

    def read_counters(self, base_url: str):
        """A snapshot of the engine's counters (None: this engine has none to difference)."""
        return None

    def counter_columns(self, bench, before, after) -> dict:
        return {}

    def request_columns(self, result: StreamResult, new_tokens: int | None) -> dict:
        """Per-request engine statistics -> record columns (accept_lengths, engine_*)."""
        return {}

    # -- the runner contract ----------------------------------------------------------------
    def prepare(self, bench) -> CellInfo:
        cfg = bench.runner
        if bench.mode.batch_size != 1:
            raise ConfigError("mode.batch_size: engines batch requests themselves; "
                              "set runner.concurrency instead and leave mode.batch_size at 1")
        facts = model_facts(bench)
        self.protocol = cfg.protocol
        self.runner_cfg = cfg
        algorithm_config = None
        report = None
        if cfg.base_url:
            self.server = None
            self.base_url = cfg.base_url.rstrip("/")
            command_text = f"external:{self.base_url}"
            if not http_ok(f"{self.base_url}/health"):
                raise EngineServerError(f"no engine answers /health at runner.base_url={self.base_url}")
        else:
            python = engine_python(cfg)
            launch = self.launch(bench, facts, python)
            env = {str(k): str(v) for k, v in (cfg.env or {}).items()}
            if cfg.probe:  # before the tokenizer, the server and the weights: a skip costs seconds
                report = run_probe(python, {"engine": self.name, "architecture": facts.architecture,
                                            "max_running_requests": cfg.max_running_requests, **launch.probe}, env)
                require_build(cfg, report)
            algorithm_config = launch.algorithm_config
        self.tokenizer = load_tokenizer(facts.source, bench.model.revision)
        if not cfg.base_url:
            self.server = SERVERS.get(launch.command, env, cfg.startup_timeout_s, cfg.log_tail_lines)
            self.base_url = self.server.base_url
            command_text = self.server.command_line()
        served = served_models(self.base_url)
        if not served:
            raise EngineServerError(f"{self.base_url}/v1/models lists no model{self.log_tail()}")
        self.model_id = served[0]["id"]
        kept = report.value("max_running_requests") if report is not None else None
        self.cell_columns = {
            "concurrency": cfg.concurrency,
            "engine_version": self.served_version(self.base_url),
            **build_columns(cfg, report),
            "engine_max_running_requests": None if cfg.base_url else (kept or cfg.max_running_requests),
            "engine_command": command_text,
            "engine_algorithm_config": algorithm_config,
            "engine_server_info": json.dumps(self.server_info(self.base_url, served[0]), default=str),
        }
        return CellInfo(
            model_family=facts.family,
            block_length=facts.block_length,
            max_positions=served[0].get("max_model_len"),
            timing_only=bench.model.random_weights,
            tokenizer=self.tokenizer,
        )

    def run(self, bench, info: CellInfo, samples: list) -> Iterator[SampleResult]:
        cfg = bench.runner
        fitted = [s for s in samples if not isinstance(s, Unfittable)]
        for sample in samples:
            if isinstance(sample, Unfittable):
                yield SampleResult(sample_id=sample.example.id, status="error", error=sample.reason,
                                   forwards=None, query_tokens=None, extra=dict(self.cell_columns))
        if not fitted:
            return
        specs = self.plan_requests(bench, fitted)
        if cfg.warmup_requests:
            warmup = [RequestSpec(s.sample_id, -1, s.prompt_ids, s.max_new_tokens, s.temperature, s.seed, s.ignore_eos)
                      for s in itertools.islice(itertools.cycle(specs), cfg.warmup_requests)]
            done, _ = self.send(warmup, min(cfg.concurrency, len(warmup)), cfg.request_timeout_s)
            failed = [r for r in done if not r.ok]
            if failed:
                raise EngineServerError(f"warm-up request failed: {failed[0].error}{self.log_tail()}")
        before = self.read_counters(self.base_url)
        results, duration = self.send(specs, cfg.concurrency, cfg.request_timeout_s)
        after = self.read_counters(self.base_url)
        if self.server is not None and not self.server.alive():
            raise EngineServerError(f"engine server died during the cell (exit code {self.server.process.returncode})"
                                    f"{self.log_tail()}")
        counters = self.counter_columns(bench, before, after) if before is not None and after is not None else {}
        cell = {**self.cell_columns, **counters, "cell_duration_s": duration, "engine_counter_rule": self.counter_rule}
        for result in results:
            yield self.to_sample_result(result, cell)

    # -- helpers ------------------------------------------------------------------------------
    def plan_requests(self, bench, fitted: list) -> list[RequestSpec]:
        """`num_requests` requests cycling over the samples (repetition = completed cycles)."""
        cfg = bench.runner
        count = cfg.num_requests or len(fitted)
        specs = []
        for i in range(count):
            sample, repetition = fitted[i % len(fitted)], i // len(fitted)
            seed = zlib.crc32(f"{bench.seed}-{sample.id}-{repetition}".encode())
            specs.append(RequestSpec(sample.id, repetition, list(sample.prompt_ids), bench.task.max_new_tokens,
                                     bench.mode.temperature, seed, cfg.ignore_eos))
        return specs

    def stream_options(self) -> dict:
        """Options of the protocol's stream parser (the engine's output format)."""
        return {}

    def send(self, specs: list[RequestSpec], concurrency: int, timeout_s: float) -> tuple[list[StreamResult], float]:
        return asyncio.run(run_requests(self.base_url, self.protocol, self.model_id, specs, concurrency, timeout_s,
                                        self.stream_options()))

    def log_tail(self) -> str:
        return f"\n{self.server.log_tail()}" if self.server is not None else ""

    def to_sample_result(self, result: StreamResult, cell: dict) -> SampleResult:
        spec = result.spec
        extra = {**cell, "request_start_s": result.start_s}
        common = dict(sample_id=spec.sample_id, repetition=spec.repetition, prompt_tokens=len(spec.prompt_ids),
                      max_new_tokens=spec.max_new_tokens, forwards=None, query_tokens=None)
        if not result.ok:
            return SampleResult(status="error", error=result.error, extra=extra, **common)
        ids = result.output_token_ids
        chunk_tokens = result.chunk_tokens if all(n is not None for n in result.chunk_tokens) else None
        new_tokens = result.completion_tokens
        if new_tokens is None:
            new_tokens = len(ids) if ids is not None else (sum(chunk_tokens) if chunk_tokens else None)
        text = self.tokenizer.decode(ids, skip_special_tokens=True) if ids is not None and self.tokenizer else result.text
        extra.update(itl_s=itl_per_chunk(result.chunk_times_s),
                     itl_split_s=itl_split_per_token(result.chunk_times_s, chunk_tokens) if chunk_tokens else None,
                     chunk_tokens=chunk_tokens, engine_prompt_tokens=result.prompt_tokens,
                     **self.request_columns(result, new_tokens))
        accept_lengths = extra.pop("accept_lengths", None)
        return SampleResult(
            new_tokens=new_tokens,
            tokens_untrimmed=new_tokens,
            finish_reason=result.finish_reason,
            output_token_ids=ids,
            output_text=text,
            accept_lengths=accept_lengths,
            emit_seconds=list(result.chunk_times_s),
            emit_counts=list(itertools.accumulate(chunk_tokens)) if chunk_tokens else None,
            ttft_s=result.ttft_s,
            e2e_s=result.e2e_s,
            extra=extra,
            **common,
        )


def http_json_or_none(url: str) -> dict | None:
    try:
        return http_json(url)
    except Exception:  # noqa: BLE001 - optional endpoints differ between engine versions
        return None


def server_flags(model) -> list[str]:
    """Flags both engines spell the same way: loopback host, dtype, revision, weights, remote code."""
    from runners.engines.server import HOST

    flags = ["--host", HOST, "--dtype", model.dtype]
    if model.revision:
        flags += ["--revision", model.revision]
    if model.random_weights:  # timing-only: the checkpoint's shapes, random weights
        flags += ["--load-format", "dummy"]
    if model.trust_remote_code:
        flags += ["--trust-remote-code"]
    return flags
