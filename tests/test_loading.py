"""Loading checkpoints without remote code, on checkpoints the tests write in each real layout."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from harness.tinymodel.tokenizer import build_tokenizer
from reference_decoders import generate
from reference_decoders.loading import load_checkpoint, read_checkpoint_config
from reference_decoders.tiny import tiny_model


def nemotron_layout(model, path, **config_overrides):
    """Save a Ministral3 model the way Nemotron-Labs-Diffusion ships: encoder.* + diffusion_head."""
    weights = {("encoder." + k[len("model."):] if k.startswith("model.") else k.replace("lm_head.", "diffusion_head.")): v.contiguous()
               for k, v in model.state_dict().items()}
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    config = {k: v for k, v in model.config.to_dict().items() if k not in ("architectures", "model_type", "auto_map")}
    config.update(model_type="nemotron_labs_diffusion", architectures=["NemotronLabsDiffusionModel"],
                  auto_map={"AutoConfig": "configuration_nemotron_labs_diffusion.NemotronLabsDiffusionConfig",
                            "AutoModel": "modeling_nemotron_labs_diffusion.NemotronLabsDiffusionModel"},
                  **config_overrides)
    (path / "config.json").write_text(json.dumps(config))
    build_tokenizer().save_pretrained(path)
    return path


def test_nemotron_weights_map_onto_ministral3_and_give_the_same_logits(tmp_path):
    original = tiny_model("ministral3", vocab_size=44, mask_token_id=2, eos_token_id=1, max_positions=512, seed=5)
    nemotron_layout(original, tmp_path, mask_token_id=2, block_size=32, eos_token_id=11, bos_token_id=1)
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [11, 1]}))
    loaded = load_checkpoint(str(tmp_path), dtype="float32")
    assert loaded.family == "nemotron_labs_diffusion"
    assert type(loaded.model).__name__ == "Ministral3ForCausalLM"  # stock class, no remote code ran
    assert (loaded.mask_token_id, loaded.block_size) == (2, 32)
    assert loaded.eos_token_ids == (11, 1)  # generation_config.json wins over config.json
    ids = torch.randint(3, 40, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids).logits, original(ids).logits)
    assert loaded.num_parameters == sum(p.numel() for p in original.parameters())


def test_qwen3_checkpoint_with_diffusion_fields_keeps_them(tmp_path):
    model = tiny_model("qwen3", vocab_size=44, mask_token_id=2, block_size=8, eos_token_id=1)
    model.save_pretrained(tmp_path)
    build_tokenizer().save_pretrained(tmp_path)
    assert read_checkpoint_config(str(tmp_path))["mask_token_id"] == 2
    loaded = load_checkpoint(str(tmp_path), dtype="float32")
    assert (loaded.family, loaded.mask_token_id, loaded.block_size, loaded.eos_token_ids) == ("qwen3", 2, 8, (1,))
    assert loaded.model.config.mask_token_id == 2  # the decoders read it from the model's config


def test_random_weights_build_the_shapes_without_weight_files(tmp_path):
    model = tiny_model("qwen3", vocab_size=44)
    (tmp_path / "config.json").write_text(model.config.to_json_string())  # a config alone, no weights
    loaded = load_checkpoint(str(tmp_path), dtype="float32", random_weights=True)
    assert loaded.random_weights and loaded.tokenizer is None
    assert loaded.num_parameters == sum(p.numel() for p in model.parameters())


def test_the_draft_lora_loads_from_its_subfolder_and_is_used_for_drafts_only(tmp_path):
    peft = pytest.importorskip("peft")
    base = tiny_model("ministral3", vocab_size=44, mask_token_id=2, eos_token_id=1, max_positions=512, seed=6, peakiness=20.0)
    nemotron_layout(base, tmp_path, mask_token_id=2, block_size=4)
    adapter = peft.get_peft_model(tiny_model("ministral3", vocab_size=44, max_positions=512, seed=6),
                                  peft.LoraConfig(r=4, lora_alpha=8, target_modules=["o_proj"], init_lora_weights=False))
    adapter.save_pretrained(tmp_path / "linear_spec_lora")
    with_lora = load_checkpoint(str(tmp_path), dtype="float32", draft_lora="linear_spec_lora")
    plain = load_checkpoint(str(tmp_path), dtype="float32")
    assert with_lora.draft_lora_loaded and not plain.draft_lora_loaded
    prompt = torch.randint(3, 40, (1, 7))
    spec = generate(with_lora.model, prompt, "linear_spec", max_new_tokens=16, block_length=4, eos_token_ids=())
    ar = generate(plain.model, prompt, "ar", max_new_tokens=16, eos_token_ids=())
    assert spec.draft_adapter_active is True and spec.tokens == ar.tokens


def test_unsupported_checkpoints_are_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="model_type 'llama' is not supported.*qwen3, ministral3, nemotron_labs_diffusion"):
        load_checkpoint(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_checkpoint(str(tmp_path / "missing"))
