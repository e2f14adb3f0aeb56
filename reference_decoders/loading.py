"""Load checkpoints onto stock transformers classes, without executing remote code.

- ``qwen3`` (Qwen3-8B, and Efficient-DLM's Qwen3-based checkpoints, whose config adds
  ``mask_token_id`` / ``block_size``) and ``ministral3`` load as they are.
- ``nemotron_labs_diffusion`` is a Ministral3 model under other names: ``encoder.*`` is the
  Ministral3 backbone and ``diffusion_head`` the LM head, so its config is translated into a
  `Ministral3Config` and its weights renamed on the fly (``key_mapping``).
- the linear_spec draft LoRA (``linear_spec_lora``) attaches through peft; the decoders switch it
  on for draft passes only.

``source`` is a local directory or a Hugging Face hub id (with ``revision``); the same code path
serves both, so the tests exercise the real loader on checkpoints they write themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, Ministral3Config, Ministral3ForCausalLM, Qwen3Config, Qwen3ForCausalLM, PreTrainedTokenizerFast

NEMOTRON_KEY_MAPPING = {r"^encoder\.": "model.", r"^diffusion_head\.": "lm_head."}
# Keys of a nemotron_labs_diffusion config.json that mean the same thing in Ministral3Config.
MINISTRAL3_KEYS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "initializer_range",
    "rms_norm_eps", "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings",
    "rope_parameters", "sliding_window", "attention_dropout",
)
LOADABLE_FAMILIES = ("qwen3", "ministral3", "nemotron_labs_diffusion")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: Any
    family: str
    mask_token_id: int | None
    block_size: int | None
    eos_token_ids: tuple[int, ...]
    max_positions: int
    num_parameters: int
    weight_bytes: int
    draft_lora_loaded: bool
    random_weights: bool


def read_checkpoint_config(source: str, revision: str | None = None) -> dict:
    """config.json of a local directory or a hub repository, as a plain dict."""
    return json.loads(Path(_checkpoint_file(source, "config.json", revision)).read_text())


def detect_family(raw_config: dict, family: str = "auto") -> str:
    if family != "auto":
        return family
    model_type = raw_config.get("model_type")
    if model_type not in LOADABLE_FAMILIES:
        raise ValueError(
            f"checkpoint model_type {model_type!r} is not supported by the reference loader; "
            f"supported: {', '.join(LOADABLE_FAMILIES)} (or set model.family explicitly)"
        )
    return model_type


def transformers_config(raw_config: dict, family: str):
    """The stock transformers config a checkpoint of `family` runs on."""
    if family == "qwen3":
        config = Qwen3Config(**{k: v for k, v in raw_config.items() if k not in ("model_type", "architectures", "auto_map", "transformers_version")})
    elif family in ("ministral3", "nemotron_labs_diffusion"):
        config = Ministral3Config(**{k: raw_config[k] for k in MINISTRAL3_KEYS if k in raw_config})
    else:
        raise ValueError(f"unknown family {family!r}; supported: {', '.join(LOADABLE_FAMILIES)}")
    for key in ("mask_token_id", "block_size"):
        if key in raw_config:
            setattr(config, key, raw_config[key])
    return config


def load_checkpoint(
    source: str,
    revision: str | None = None,
    family: str = "auto",
    dtype: str = "bfloat16",
    device: str | torch.device = "cpu",
    draft_lora: str | None = None,
    random_weights: bool = False,
) -> LoadedModel:
    raw = read_checkpoint_config(source, revision)
    family = detect_family(raw, family)
    config = transformers_config(raw, family)
    model_cls = Qwen3ForCausalLM if family == "qwen3" else Ministral3ForCausalLM
    torch_dtype = DTYPES[dtype]
    if random_weights:
        # Timing-only cells: the published shapes with random weights. The cost of a forward does
        # not depend on the weights' values, so no download is needed.
        with torch.device(device):
            model = model_cls._from_config(config, dtype=torch_dtype)
    else:
        extra = {"key_mapping": NEMOTRON_KEY_MAPPING} if family == "nemotron_labs_diffusion" else {}
        model = model_cls.from_pretrained(source, config=config, revision=revision, dtype=torch_dtype, **extra).to(device)
    model.eval()
    eos = _eos_token_ids(source, revision, raw)
    model.generation_config.eos_token_id = list(eos)

    draft_lora_loaded = False
    if draft_lora and not random_weights:
        from peft import PeftModel  # optional dependency: only draft-LoRA runs need it

        lora_source, subfolder = _lora_location(source, draft_lora)
        model = PeftModel.from_pretrained(model, lora_source, subfolder=subfolder, revision=revision).eval()
        draft_lora_loaded = True

    tokenizer = None if random_weights else load_tokenizer(source, revision)
    parameters = list(model.parameters())
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        family=family,
        mask_token_id=getattr(config, "mask_token_id", None),
        block_size=getattr(config, "block_size", None),
        eos_token_ids=eos,
        max_positions=int(config.max_position_embeddings),
        num_parameters=sum(p.numel() for p in parameters),
        weight_bytes=sum(p.numel() * p.element_size() for p in parameters),
        draft_lora_loaded=draft_lora_loaded,
        random_weights=random_weights,
    )


def _eos_token_ids(source: str, revision: str | None, raw_config: dict) -> tuple[int, ...]:
    """generation_config.json's eos ids when present (chat models list several), else config.json's."""
    eos = raw_config.get("eos_token_id")
    try:
        generation = json.loads(Path(_checkpoint_file(source, "generation_config.json", revision)).read_text())
        eos = generation.get("eos_token_id", eos)
    except FileNotFoundError:
        pass
    if eos is None:
        return ()
    return tuple(int(e) for e in eos) if isinstance(eos, list) else (int(eos),)


def _lora_location(source: str, draft_lora: str) -> tuple[str, str | None]:
    """A path stands alone; anything else is a subfolder of the checkpoint (e.g. linear_spec_lora)."""
    if Path(draft_lora).is_absolute() or Path(draft_lora).exists():
        return draft_lora, None
    return source, draft_lora


def _checkpoint_file(source: str, filename: str, revision: str | None) -> str:
    local = Path(source)
    if local.is_dir():
        path = local / filename
        if not path.exists():
            raise FileNotFoundError(f"{filename} not found in checkpoint directory {source}")
        return str(path)
    if local.exists() or source.startswith((".", "/")):
        raise FileNotFoundError(f"checkpoint {source!r} is not a directory")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return hf_hub_download(source, filename, revision=revision)
    except EntryNotFoundError as exc:
        raise FileNotFoundError(f"{filename} not found in hub repository {source}@{revision or 'main'}") from exc


def load_tokenizer(source: str, revision: str | None = None):
    """The checkpoint's tokenizer; never runs remote code (a config with auto_map would ask to)."""
    try:
        return AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=False)
    except ValueError:
        # AutoTokenizer refuses configs whose model_type it does not know (nemotron_labs_diffusion);
        # the tokenizer itself is a plain tokenizer.json.
        return PreTrainedTokenizerFast.from_pretrained(source, revision=revision)
