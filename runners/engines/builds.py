"""Which engine build a cell runs on: its interpreter, the capability probe before the load, and
the build's identity for the records.

Nemotron-Labs-Diffusion is served by no released engine: its paths exist only in unmerged pull
requests and a fork, whose earlier commits take the same flags with other meanings. So each runner
config names the build it needs (`runner.build`, installed into `runner.venv`), and before a
server starts the engine's own interpreter runs `probe.py`, which asks the installed build whether
it can serve the cell. A cell it cannot serve is skipped in seconds, naming the build it needs,
instead of failing at server start after the model load (or running something else silently).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from runners.base import SkipCell
from runners.engines.server import EngineServerError

log = logging.getLogger("dlm-bench")

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE_SCRIPT = Path(__file__).with_name("probe.py")
PROBE_MARKER = "DLM_BENCH_PROBE "  # probe.py prefixes its report line with this
PROBE_TIMEOUT_S = 600.0  # importing an engine's config modules on a busy node


def engine_python(runner_cfg) -> str:
    """runner.python, else <repo>/<runner.venv>/bin/python, else python3 (then the probe says
    whether that interpreter has the engine at all)."""
    if runner_cfg.python:
        return runner_cfg.python
    venv = REPO_ROOT / runner_cfg.venv / "bin" / "python"
    return str(venv) if venv.exists() else "python3"


def install_command(runner_cfg) -> str:
    """What installs the build the runner config names (runners/engines/install.py; runners/README.md)."""
    return f"python -m runners.engines.install --build {shlex.quote(runner_cfg.build)} --venv {runner_cfg.venv}"


@dataclass(frozen=True)
class ProbeReport:
    """What probe.py found in the engine's interpreter."""

    python: str
    build: dict  # distribution, version, url, commit, editable ({} = engine not installed)
    checks: list[dict]  # {name, ok, detail[, value]}

    @property
    def version(self) -> str | None:
        return f"{self.build['distribution']}=={self.build['version']}" if self.build else None

    @property
    def failures(self) -> list[dict]:
        return [c for c in self.checks if c["ok"] is False]

    def value(self, name: str):
        return next((c.get("value") for c in self.checks if c["name"] == name and "value" in c), None)

    def describe_build(self) -> str:
        if not self.build:
            return f"no engine build in {self.python}"
        where = f" from {self.build['url']}" if self.build.get("url") else ""
        commit = f" at {self.build['commit']}" if self.build.get("commit") else ""
        return f"{self.version}{where}{commit} ({self.python})"


_REPORTS: dict[tuple[str, str], ProbeReport] = {}  # one probe per interpreter, request and env per process


def run_probe(python: str, request: dict, env: dict[str, str] | None = None) -> ProbeReport:
    """Run probe.py with the engine's interpreter and the server's extra environment (engines read
    switches such as VLLM_USE_V2_MODEL_RUNNER from it); raises EngineServerError when it cannot run."""
    text = json.dumps(request, sort_keys=True)
    key = (python, text + json.dumps(env or {}, sort_keys=True))
    if key not in _REPORTS:
        try:
            done = subprocess.run([python, str(PROBE_SCRIPT), text], capture_output=True, text=True,
                                  timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineServerError(f"the capability probe could not run with {python}: {exc}") from None
        lines = [line for line in done.stdout.splitlines() if line.startswith(PROBE_MARKER)]
        if not lines:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
            raise EngineServerError(f"the capability probe failed with {python} (exit code {done.returncode}); "
                                    f"runner.probe=false skips it\n{tail}")
        report = json.loads(lines[-1][len(PROBE_MARKER):])
        _REPORTS[key] = ProbeReport(python=python, build=report["build"], checks=report["checks"])
    return _REPORTS[key]


def is_named_build(required: str, report: ProbeReport) -> bool:
    """Whether the installed build is the one the runner config names: the same commit for a
    `name @ git+URL@commit` pin, the same distribution==version for a release pin."""
    if not report.build:
        return False
    if "@" in required and "git+" in required:
        commit = required.rsplit("@", 1)[1].split("#", 1)[0]
        return bool(report.build.get("commit")) and report.build["commit"].startswith(commit)
    return required.replace(" ", "") == report.version


def require_build(runner_cfg, report: ProbeReport) -> None:
    """Skip the cell (SkipCell) when the build fails a check, naming the build it needs. Another
    build that passes every check runs, with a warning (rows record both)."""
    failures = report.failures
    kept = report.value("max_running_requests")
    if kept is not None and kept < runner_cfg.concurrency:
        failures.append({"name": "max_running_requests", "ok": False,
                         "detail": f"the build keeps --max-num-seqs {runner_cfg.max_running_requests} at {kept}, fewer "
                                   f"than runner.concurrency={runner_cfg.concurrency}: it would run {kept} requests at "
                                   f"a time while the cell records {runner_cfg.concurrency}"})
    if not failures:
        if not is_named_build(runner_cfg.build, report):
            log.warning("engine build %s is not the one this runner config names (%s); it passed the capability "
                        "probe, so the cell runs on it and records both", report.describe_build(), runner_cfg.build)
        return
    problems = "; ".join(f"{c['name']}: {c['detail']}" for c in failures)
    raise SkipCell(f"engine build {report.describe_build()} cannot serve this cell: {problems}. "
                   f"This runner config needs {runner_cfg.build} in {runner_cfg.venv}; install it with: "
                   f"{install_command(runner_cfg)}",
                   columns=build_columns(runner_cfg, report))


def build_columns(runner_cfg, report: ProbeReport | None) -> dict:
    """The build every row of the cell records (null where no probe ran: runner.base_url, probe=false)."""
    if report is None:
        return {"engine_build_required": runner_cfg.build, "engine_commit": None, "engine_source": None,
                "engine_capabilities": None}
    return {
        "engine_version": report.version,
        "engine_build_required": runner_cfg.build,
        "engine_commit": report.build.get("commit"),
        "engine_source": report.build.get("url"),
        "engine_capabilities": json.dumps(report.checks, sort_keys=True),
    }
