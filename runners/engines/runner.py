"""What vLLM and SGLang runners share: launch or reach the server, send the cell, build records.

One cell: warm-up requests (not recorded), read the engine's counters, send `num_requests`
requests with `concurrency` in flight, read the counters again, difference them. Every row
carries the engine version, the full launch command and the cell's counter deltas. A server that
fails to start or dies during the cell raises `EngineServerError` with its log tail, which the
harness records as a failed cell before going on with the sweep.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import zlib
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.config import ConfigError
from harness.models import resolve_source
from harness.prompts import Unfittable
from reference_decoders.loading import load_tokenizer, read_checkpoint_config
from reference_decoders.params import DEFAULT_BLOCK_LENGTH
from runners.base import CellInfo, Runner, SampleResult
from runners.engines.client import RequestSpec, StreamResult, run_requests
from runners.engines.server import SERVERS, EngineServer, EngineServerError, http_json, http_ok, served_models

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ModelFacts:
    source: str  # resolved: a local path or a hub id
    family: str | None  # nemotron_labs_diffusion, qwen3, ... (None: unknown)
    block_length: int | None  # resolved for the non-ar modes


@dataclass
class Launch:
    command: list[str]  # without --port (the server picks a free port at start)
    algorithm_config: str | None = None  # what the mode handed the engine (JSON / YAML text)


def engine_python(runner_cfg) -> str:
    """runner.python, else the project's convention <repo>/.venv-<engine>/bin/python, else python3."""
    if runner_cfg.python:
        return runner_cfg.python
    venv = REPO_ROOT / f".venv-{runner_cfg.name}" / "bin" / "python"
    return str(venv) if venv.exists() else "python3"


def package_version(python: str, names: tuple[str, ...]) -> str | None:
    """Version of the first installed distribution among `names`, asked of the engine's interpreter."""
    script = ("import importlib.metadata as m, sys\nfor n in sys.argv[1:]:\n    try:\n"
              "        print(n + '==' + m.version(n)); break\n    except m.PackageNotFoundError: pass")
    try:
        out = subprocess.run([python, "-c", script, *names], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


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
    return ModelFacts(source=source, family=family, block_length=block_length)


class EngineRunner(Runner):
    """Subclasses say how to launch their engine and what its counters and per-request fields mean."""

    name: str
    modes: tuple[str, ...]
    distributions: tuple[str, ...]  # package names to ask for the engine's version
    counter_rule: str

    def __init__(self):
        self.base_url: str | None = None
        self.server: EngineServer | None = None
        self.model_id: str | None = None
        self.protocol: str = "openai"
        self.cell_columns: dict = {}
        self.tokenizer = None

    # -- engine specifics -------------------------------------------------------------------
    @abstractmethod
    def launch(self, bench, facts: ModelFacts, python: str) -> Launch:
        """The server command (no port) for this cell's model and mode."""

    @abstractmethod
    def engine_version(self, base_url: str, python: str | None) -> str | None: ...

    def server_info(self, base_url: str, served: dict) -> dict:
        return {"served_model": served}

    def read_counters(self, base_url: str):
        """A snapshot of the engine's counters (None: this engine has none to difference)."""
        return None

    def counter_columns(self, before, after) -> dict:
        return {}

    def request_columns(self, result: StreamResult) -> dict:
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
        self.tokenizer = load_tokenizer(facts.source, bench.model.revision)
        python = None
        algorithm_config = None
        if cfg.base_url:
            self.server = None
            self.base_url = cfg.base_url.rstrip("/")
            command_text = f"external:{self.base_url}"
            if not http_ok(f"{self.base_url}/health"):
                raise EngineServerError(f"no engine answers /health at runner.base_url={self.base_url}")
        else:
            python = engine_python(cfg)
            launch = self.launch(bench, facts, python)
            algorithm_config = launch.algorithm_config
            env = {str(k): str(v) for k, v in (cfg.env or {}).items()}
            self.server = SERVERS.get(launch.command, env, cfg.startup_timeout_s, cfg.log_tail_lines)
            self.base_url = self.server.base_url
            command_text = self.server.command_line()
        served = served_models(self.base_url)
        if not served:
            raise EngineServerError(f"{self.base_url}/v1/models lists no model{self.log_tail()}")
        self.model_id = served[0]["id"]
        self.cell_columns = {
            "concurrency": cfg.concurrency,
            "engine_version": self.engine_version(self.base_url, python),
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
        counters = self.counter_columns(before, after) if before is not None and after is not None else {}
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

    def send(self, specs: list[RequestSpec], concurrency: int, timeout_s: float) -> tuple[list[StreamResult], float]:
        return asyncio.run(run_requests(self.base_url, self.protocol, self.model_id, specs, concurrency, timeout_s))

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
        extra.update(itl_s=result.itl_s, chunk_tokens=chunk_tokens, engine_prompt_tokens=result.prompt_tokens,
                     **self.request_columns(result))
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
