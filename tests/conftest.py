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


VENDOR_LORA = "linear_spec_lora"


def write_vendor_checkpoint(path: Path, lora_targets=("o_proj",), seed: int = 7) -> Path:
    """A tiny Nemotron-Labs-Diffusion checkpoint in the vendor's exact layout, draft LoRA included.

    config.json is the shipped 8B config (harness/shapes: yarn rope with llama-4 scaling,
    mask_token_id, block_size, dlm_paradigm, tie_word_embeddings, ...) with tiny shapes; the
    weights are those of a module tree named as the vendor's (`encoder` = Ministral3Model,
    `diffusion_head`), saved under those names; the draft LoRA is peft over that same tree, saved
    into `linear_spec_lora/` as the vendor's chat script does, so its keys read
    base_model.model.encoder.layers.N.self_attn.o_proj.lora_A/B.weight.
    """
    import json

    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file

    from harness.tinymodel.tokenizer import build_tokenizer
    from tests.fixtures.vendor_standin.modeling_standin import StandinConfig, StandinModel

    tokenizer = build_tokenizer()
    config = json.loads((REPO / "harness" / "shapes" / "nemotron-labs-diffusion-8b" / "config.json").read_text())
    config.update(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=512, mask_token_id=tokenizer.mask_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id, block_size=4,
        # the 8B's YaRN window is 16384 of 262144 positions; keep the same ratio so positions
        # beyond the window (and the llama-4 query scaling there) are exercised
        rope_parameters={**config["rope_parameters"], "original_max_position_embeddings": 32},
        auto_map={"AutoConfig": "configuration_nemotron_labs_diffusion.NemotronLabsDiffusionConfig",
                  "AutoModel": "modeling_nemotron_labs_diffusion.NemotronLabsDiffusionModel"},
    )
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    model = StandinModel(StandinConfig(**{k: v for k, v in config.items() if k not in ("auto_map", "architectures")})).eval()
    with torch.no_grad():
        model.diffusion_head.weight.mul_(20.0)  # confident predictions, so thresholds commit several tokens
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    assert all(k.startswith(("encoder.", "diffusion_head.")) for k in weights)
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    tokenizer.save_pretrained(path)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=list(lora_targets), init_lora_weights=False))
    lora.save_pretrained(path / VENDOR_LORA)
    return path


@pytest.fixture(scope="session")
def vendor_checkpoint(tmp_path_factory) -> Path:
    return write_vendor_checkpoint(tmp_path_factory.mktemp("vendor-checkpoint"))


def run_cli(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """`dlm-bench` as a user runs it (a fresh process), from the repository checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "1"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _few_threads():
    # Tests share two cores with each other and the CI machine: keep torch from oversubscribing.
    torch.set_num_threads(1)
