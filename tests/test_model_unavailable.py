"""A model that cannot be loaded says why, on one line, at once: offline, hub unreachable, or a
missing folder, each with the way out (download it, or set model.source)."""

from __future__ import annotations

import pytest
from huggingface_hub import constants

from reference_decoders.loading import CheckpointUnavailable, load_checkpoint

NOT_CACHED = "dlm-bench-tests/no-such-model-in-any-cache"


def test_offline_and_not_cached_names_the_cache_and_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointUnavailable) as failure:
        load_checkpoint(NOT_CACHED)
    message = str(failure.value)
    assert "\n" not in message
    assert f"model {NOT_CACHED}@main is not in the local Hugging Face cache" in message
    assert "HF_HUB_OFFLINE" in message and f"hf download {NOT_CACHED}" in message and "model.source=" in message


def test_an_unreachable_hub_fails_at_once_with_the_connection_error(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(CheckpointUnavailable) as failure:
        load_checkpoint(NOT_CACHED, revision="abc123")
    message = str(failure.value)
    assert "\n" not in message
    assert "the hub is unreachable (127.0.0.1:9:" in message
    assert f"hf download {NOT_CACHED} --revision abc123" in message and "model.source=" in message


def test_a_missing_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint folder .* does not exist; set model.source"):
        load_checkpoint(str(tmp_path / "absent"))
