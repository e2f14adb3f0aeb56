"""Shared fixtures: small real checkpoints written by the tests themselves (no downloads)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


CHAT_TEMPLATE = ("{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}Assistant:{% endif %}")


def write_random_checkpoint(path: Path, max_positions: int = 512, chat_template: str | None = None) -> Path:
    """A randomly initialised Qwen3 with the tiny model's tokenizer, saved like any hub checkpoint
    (with `chat_template`, a tokenizer that has one, for protocols that prompt through it)."""
    from harness.tinymodel.tokenizer import build_tokenizer
    from reference_decoders.tiny import tiny_model

    tokenizer = build_tokenizer()
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    model = tiny_model("qwen3", vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
                       eos_token_id=tokenizer.eos_token_id, block_size=4, max_positions=max_positions, peakiness=5.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("random-checkpoint"))


def run_cli(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """`dlm-bench` as a user runs it (a fresh process), from the repository checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "1"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _few_threads():
    # Tests share two cores with each other and the CI machine: keep torch from oversubscribing.
    torch.set_num_threads(1)
