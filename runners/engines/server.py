"""An engine server as a child process: launch on 127.0.0.1, wait until it serves, stop it.

The server runs in its own process group with its output captured to a log file, so stopping it
takes every worker with it, and a server that fails or dies is reported with the end of its log.
A launched server is kept for the next cell when that cell needs the same command (`SERVERS`),
since loading an 8B model and compiling it takes minutes; it is stopped at exit.
"""

from __future__ import annotations

import atexit
import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"  # engine servers never listen beyond this machine


class EngineServerError(RuntimeError):
    """The server failed to start, died, or stopped answering; the message ends with its log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def http_json(url: str, timeout: float = 10.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read().decode("utf-8", errors="replace")
    return json.loads(body) if body.strip() else {}


def http_ok(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def served_models(base_url: str) -> list[dict]:
    """`GET /v1/models` entries (id, max_model_len, ...)."""
    return http_json(f"{base_url}/v1/models").get("data") or []


class EngineServer:
    """One launched server. `command` must not contain the port: it is appended as `--port N`."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None, log_tail_lines: int = 60):
        self.command = list(command)
        self.env = dict(env or {})
        self.log_tail_lines = log_tail_lines
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def full_command(self) -> list[str]:
        return [*self.command, "--port", str(self.port)]

    def command_line(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return (env + " " if env else "") + shlex.join(self.full_command)

    def start(self) -> None:
        self.port = free_port()
        handle, path = tempfile.mkstemp(prefix="dlm-bench-engine-", suffix=".log")
        self.log_path = Path(path)
        with os.fdopen(handle, "wb") as log:
            # Own session = own process group: stop() signals the server and all its workers.
            self.process = subprocess.Popen(self.full_command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env={**os.environ, **self.env},
                                            start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        """Until `/health` answers 200 and `/v1/models` lists a model; raises with the log tail if
        the process exits first or the time runs out (then the server is stopped)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.process.returncode if self.process else None
                raise EngineServerError(f"engine server exited with code {code} before it was ready; "
                                        f"command: {self.command_line()}\n{self.log_tail()}")
            if http_ok(f"{self.base_url}/health"):
                try:
                    if served_models(self.base_url):
                        return
                except (urllib.error.URLError, OSError, ValueError):
                    pass
            time.sleep(1.0)
        tail = self.log_tail()
        self.stop()
        raise EngineServerError(f"engine server not ready after {timeout_s:.0f} s; command: {self.command_line()}\n{tail}")

    def log_tail(self, lines: int | None = None) -> str:
        lines = self.log_tail_lines if lines is None else lines
        if self.log_path is None or not self.log_path.exists() or lines == 0:
            return "(no server log)"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- last {len(text)} lines of the server log ({self.log_path}) ---\n" + "\n".join(text)

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM to the process group, SIGKILL after `grace_s`; the log is removed after a clean stop."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:  # the leader is gone; workers it left behind still belong to its group
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        clean = process.returncode in (0, -signal.SIGTERM)
        self.process = None
        if clean and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


class ServerCache:
    """Keeps the most recent server running while consecutive cells launch the same command."""

    def __init__(self):
        self.current: EngineServer | None = None
        self.launches = 0

    def get(self, command: list[str], env: dict[str, str], startup_timeout_s: float, log_tail_lines: int) -> EngineServer:
        current = self.current
        if current is not None and current.command == command and current.env == env and current.alive():
            return current
        self.stop()
        server = EngineServer(command, env, log_tail_lines)
        server.start()
        self.launches += 1
        self.current = server
        server.wait_ready(startup_timeout_s)
        return server

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


SERVERS = ServerCache()
atexit.register(SERVERS.stop)
