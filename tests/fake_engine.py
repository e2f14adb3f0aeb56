"""A stand-in engine server that dies mid-cell: for the one failure a real engine cannot be made
to show on demand (a crash while requests are in flight). It speaks just enough of vLLM's API:
/health, /v1/models, /version, /metrics and a streamed /v1/completions; the completion request
number `--die-at` crashes the process (exit 1) after writing a last log line.

Run as `python fake_engine.py -m vllm.entrypoints.cli.main serve M ... --port N --die-at K`.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def argument(name: str, default: str | None = None) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


MODEL = sys.argv[sys.argv.index("serve") + 1] if "serve" in sys.argv else "fake"
DIE_AT = int(argument("--die-at", "2"))
completions = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the log to what the test looks for
        pass

    def send_json(self, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.send_json({})
        elif self.path == "/v1/models":
            self.send_json({"data": [{"id": MODEL, "max_model_len": 512}]})
        elif self.path == "/version":
            self.send_json({"version": "0.0.0-fake"})
        elif self.path == "/metrics":
            body = f"vllm:generation_tokens_total{{engine=\"0\"}} {2.0 * completions}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def do_POST(self):
        global completions
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        completions += 1
        if completions >= DIE_AT:
            print(f"fake engine: fatal error in the decode kernel at request {completions}", flush=True)
            os._exit(1)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        events = [{"choices": [{"text": "a", "token_ids": [5], "finish_reason": None}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
                  {"choices": [{"text": "b", "token_ids": [6], "finish_reason": "length"}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
                  {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}]
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(argument("--port"))), Handler).serve_forever()
