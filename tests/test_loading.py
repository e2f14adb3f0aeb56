"""Loading checkpoints without remote code, on checkpoints the tests write in each real layout."""

from __future__ import annotations

import copy
import json
import warnings

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from harness.tinymodel.tokenizer import build_tokenizer
from reference_decoders import generate
from reference_decoders.adapter import ModelAdapter
from reference_decoders.counting import ForwardCounter
from reference_decoders.loading import DraftLoraMismatch, load_checkpoint, read_checkpoint_config
from reference_decoders.tiny import tiny_model
from tests.conftest import VENDOR_LORA, run_cli, write_vendor_checkpoint


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
    with pytest.raises(FileNotFoundError, match="does not exist; set model.source"):
        load_checkpoint(str(tmp_path / "missing"))


# -- the vendor's own layout: checkpoint and draft LoRA (tests/conftest.py: write_vendor_checkpoint) --


def saved_adapter(checkpoint) -> tuple[dict[str, torch.Tensor], float]:
    """The adapter's tensors under the names the vendor saved them, and its scale lora_alpha / r."""
    config = json.loads((checkpoint / VENDOR_LORA / "adapter_config.json").read_text())
    return load_file(checkpoint / VENDOR_LORA / "adapter_model.safetensors"), config["lora_alpha"] / config["r"]


def test_the_vendors_draft_lora_loads_every_saved_tensor(vendor_checkpoint):
    saved, _ = saved_adapter(vendor_checkpoint)
    assert all(k.startswith("base_model.model.encoder.layers.") for k in saved)  # the vendor's module paths
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_checkpoint(str(vendor_checkpoint), dtype="float32", draft_lora=VENDOR_LORA)
    assert not [w for w in caught if "missing adapter keys" in str(w.message)]
    assert loaded.family == "nemotron_labs_diffusion" and loaded.draft_lora_loaded
    assert loaded.draft_lora_tensors == len(saved) == 2 * loaded.model.config.num_hidden_layers  # lora_A, lora_B per o_proj
    assert loaded.model.config.rope_parameters["rope_type"] == "yarn"


def pass_logits(model, prompt, block, kind: str, draft_adapter: bool = False, prefill_model=None):
    """(prefill logits [1, V], logits [1, L, V] of one draft or verify pass after that prefill).

    ``prefill_model`` writes the prefix cache when given (default: ``model``): a LoRA applied by
    hand must see the prefix the base weights cached, as the draft pass of the peft model does.
    """
    adapters = []
    for m in (prefill_model or model, model):
        counter = ForwardCounter(m.get_base_model() if hasattr(m, "get_base_model") else m)
        adapters.append((ModelAdapter(m, counter), counter))
    state, prefill = adapters[0][0].prefill(prompt)
    adapter = adapters[1][0]
    if kind == "draft":
        out = adapter.block_pass(state, block, "draft", draft_adapter=draft_adapter)
    else:
        out = adapter.causal_pass(state, block, "verify")
    for _, counter in adapters:
        counter.close()
    return prefill, out


def test_draft_passes_run_the_vendors_lora_and_no_other_pass_does(vendor_checkpoint):
    lora = load_checkpoint(str(vendor_checkpoint), dtype="float64", draft_lora=VENDOR_LORA).model
    plain = load_checkpoint(str(vendor_checkpoint), dtype="float64").model
    saved, scale = saved_adapter(vendor_checkpoint)
    # The LoRA applied by hand, from the saved tensors under the vendor's names: W + scale * B @ A.
    merged = copy.deepcopy(plain)
    with torch.no_grad():
        for i, layer in enumerate(merged.model.layers):
            key = f"base_model.model.encoder.layers.{i}.self_attn.o_proj"
            layer.self_attn.o_proj.weight += scale * saved[f"{key}.lora_B.weight"].double() @ saved[f"{key}.lora_A.weight"].double()
    prompt, block = torch.randint(5, 40, (1, 9)), torch.randint(5, 40, (1, 4))
    _, draft = pass_logits(lora, prompt, block, "draft", draft_adapter=True)
    _, by_hand = pass_logits(merged, prompt, block, "draft", prefill_model=plain)
    _, base_draft = pass_logits(plain, prompt, block, "draft")
    torch.testing.assert_close(draft, by_hand, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(draft, base_draft)  # the adapter changes the draft
    # Prefill and verify (and a draft pass with the adapter off) see the base weights, bit for bit.
    for kind in ("verify", "draft"):
        with_lora, without = pass_logits(lora, prompt, block, kind), pass_logits(plain, prompt, block, kind)
        assert torch.equal(with_lora[0], without[0]) and torch.equal(with_lora[1], without[1])


def test_an_adapter_that_does_not_fit_is_refused_with_its_keys_named(tmp_path):
    checkpoint = write_vendor_checkpoint(tmp_path / "ckpt")
    path = checkpoint / VENDOR_LORA / "adapter_model.safetensors"
    save_file({k.replace(".encoder.", ".backbone."): v for k, v in load_file(path).items()}, path)
    with pytest.raises(DraftLoraMismatch, match=r"4 saved tensor\(s\) match no module of the model: "
                       r"base_model\.model\.backbone\.layers\.0\.self_attn\.o_proj\.lora_A"):
        load_checkpoint(str(checkpoint), dtype="float32", draft_lora=VENDOR_LORA)
    # Through the CLI: the cell fails before its first sample, with the keys in its record.
    result = run_cli("sweep=single", "sweep.name=x", "model=nemotron-labs-diffusion-8b", "model.name=vendor-layout",
                     f"model.source={checkpoint}", "model.dtype=float32", "mode=linear_spec_lora", "task=copy",
                     "task.num_samples=2", "task.max_new_tokens=8", f"results_dir={tmp_path / 'results'}")
    assert result.returncode != 0
    df = pd.read_parquet(tmp_path / "results" / "x")
    assert list(df["status"]) == ["failed"]
    assert "backbone.layers.0.self_attn.o_proj.lora_A" in df["error"].iloc[0]


def test_the_vendor_layout_runs_end_to_end_with_its_draft_lora(tmp_path, vendor_checkpoint):
    """dlm-bench model.source=<vendor-layout folder> mode=linear_spec_lora, beside ar on the same prompts."""
    result = run_cli("-m", "sweep.name=x", "model=nemotron-labs-diffusion-8b", "model.name=vendor-layout",
                     f"model.source={vendor_checkpoint}", "model.dtype=float32", "mode=ar,linear_spec_lora", "task=copy",
                     "context=natural", "task.num_samples=3", "task.max_new_tokens=12", f"results_dir={tmp_path}")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    df = pd.read_parquet(tmp_path / "x")
    assert (df["status"] == "ok").all()
    spec, ar = df[df["mode"] == "linear_spec"].set_index("sample_id"), df[df["mode"] == "ar"].set_index("sample_id")
    saved, _ = saved_adapter(vendor_checkpoint)
    assert (spec["draft_lora"] == VENDOR_LORA).all() and (spec["draft_lora_tensors"] == len(saved)).all()
    assert spec["draft_adapter_active"].all() and (spec["acceptance_rule"] == "greedy").all()
    assert ar["draft_lora_tensors"].isna().all() and ar["acceptance_rule"].isna().all()
    for sample in ar.index:  # greedy linear_spec is lossless, LoRA or not
        assert list(spec.loc[sample, "output_token_ids"]) == list(ar.loc[sample, "output_token_ids"])
    # Sampled, with the vendor's acceptance rule: the rule that ran is recorded.
    result = run_cli("sweep=single", "sweep.name=y", "model=nemotron-labs-diffusion-8b", "model.name=vendor-layout",
                     f"model.source={vendor_checkpoint}", "model.dtype=float32", "mode=linear_spec_lora", "mode.temperature=1.0",
                     "mode.acceptance=sample_match", "task=copy", "task.num_samples=2", "task.max_new_tokens=8",
                     f"results_dir={tmp_path}")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    sampled = pd.read_parquet(tmp_path / "y")
    assert (sampled["status"] == "ok").all() and (sampled["acceptance_rule"] == "sample_match").all()


def test_a_checkpoints_fingerprint_follows_its_content_not_its_file_dates(tmp_path, monkeypatch):
    import os
    import shutil

    import reference_decoders.loading as loading
    from reference_decoders.loading import checkpoint_digest

    monkeypatch.setattr(loading, "WHOLE_FILE_BYTES", 1024)  # the weights file counts by samples, as a real one would
    monkeypatch.setattr(loading, "SAMPLE_BYTES", 256)
    folder = tmp_path / "ckpt"
    tiny_model("qwen3", vocab_size=64, hidden_size=32, num_layers=1, max_positions=64).save_pretrained(folder)
    first = checkpoint_digest(folder)
    assert first.startswith("sha256:") and checkpoint_digest(shutil.copytree(folder, tmp_path / "copy")) == first
    weights = folder / "model.safetensors"
    stat = weights.stat()
    assert stat.st_size > 3 * loading.SAMPLE_BYTES
    tensors = load_file(weights)
    save_file({k: v + 0.5 for k, v in tensors.items()}, weights, metadata={"format": "pt"})  # other weights, same shapes
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_size == stat.st_size  # same names, size and date: only the content differs
    loading._DIGESTS.clear()  # as a new process would see it
    swapped = checkpoint_digest(folder)
    assert swapped != first
    (folder / "config.json").write_text((folder / "config.json").read_text().replace('"rms_norm_eps"', '"rms_norm_eps" '))
    assert checkpoint_digest(folder) not in (first, swapped) and checkpoint_digest(tmp_path / "copy") == first


def test_a_hub_revision_resolves_to_the_commit_in_the_local_hub_cache(tmp_path):
    from reference_decoders.loading import resolved_revision

    commit = "1234567890abcdef1234567890abcdef12345678"
    repo = tmp_path / "models--someone--model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    assert resolved_revision("someone/model", None, cache_dir=tmp_path) == commit
    assert resolved_revision("someone/model", "main", cache_dir=tmp_path) == commit
    assert resolved_revision("someone/model", "v2", cache_dir=tmp_path) is None  # never loaded here
    assert resolved_revision("someone/other", None, cache_dir=tmp_path) is None
    pinned = "f" * 40
    assert resolved_revision("someone/model", pinned, cache_dir=tmp_path) == pinned
