"""Load checkpoints onto stock transformers classes, without executing remote code.

- ``qwen3`` (Qwen3-8B, and Efficient-DLM's Qwen3-based checkpoints, whose config adds
  ``mask_token_id`` / ``block_size``) and ``ministral3`` load as they are.
- ``nemotron_labs_diffusion`` is a Ministral3 model under other names: ``encoder.*`` is the
  Ministral3 backbone and ``diffusion_head`` the LM head, so its config is translated into a
  `Ministral3Config` and its weights renamed on the fly (``key_mapping``).
- the linear_spec draft LoRA (``linear_spec_lora``) attaches through peft, its tensors renamed with
  the same mapping as the base weights (`attach_draft_lora`); the decoders switch it on for draft
  passes only.

``source`` is a local directory or a Hugging Face hub id (with ``revision``); the same code path
serves both, so the tests exercise the real loader on checkpoints they write themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    draft_lora_tensors: int | None = None  # saved adapter tensors loaded onto the model (all of them, or no model)


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

    draft_lora_tensors = None
    if draft_lora and not random_weights:
        key_mapping = NEMOTRON_KEY_MAPPING if family == "nemotron_labs_diffusion" else None
        model, draft_lora_tensors = attach_draft_lora(model, source, draft_lora, revision, key_mapping, device)

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
        draft_lora_loaded=draft_lora_tensors is not None,
        random_weights=random_weights,
        draft_lora_tensors=draft_lora_tensors,
    )


class DraftLoraMismatch(ValueError):
    """The draft LoRA's saved tensors and the model's modules do not pair up."""


def attach_draft_lora(model, source: str, draft_lora: str, revision: str | None, key_mapping: dict[str, str] | None,
                      device) -> tuple[torch.nn.Module, int]:
    """Wrap ``model`` in peft with the draft LoRA; returns (peft model, saved tensors loaded).

    peft saves adapter tensors under the module paths of the model it was trained on,
    ``base_model.model.<path>``: the vendor trained its LoRA on ``NemotronLabsDiffusionModel``, so
    its paths start with ``encoder.`` where ours start with ``model.``. ``key_mapping`` (the base
    weights' mapping) renames them, and the adapter config's module names, before loading. peft
    itself only warns when saved tensors find no module (the adapter then runs at its initial
    weights, zero or random), so the load is checked here: any saved tensor left over, or any
    adapter parameter no saved tensor filled, refuses the model with the keys named.
    """
    from peft import LoraConfig, PeftConfig, get_peft_model, load_peft_weights, set_peft_model_state_dict

    lora_source, subfolder = _lora_location(source, draft_lora)
    where = f"{lora_source}" + (f" (subfolder {subfolder})" if subfolder else "")
    hub = {k: v for k, v in {"subfolder": subfolder, "revision": revision}.items() if v is not None}
    config = PeftConfig.from_pretrained(lora_source, **hub)
    if not isinstance(config, LoraConfig):
        raise DraftLoraMismatch(f"draft adapter {where} is a {config.peft_type} adapter; the draft adapter must be a LoRA")
    config.inference_mode = True
    if key_mapping:
        if isinstance(config.target_modules, (list, set, tuple)):
            config.target_modules = {map_key(name, key_mapping) for name in config.target_modules}
        if config.modules_to_save:
            config.modules_to_save = [map_key(name, key_mapping) for name in config.modules_to_save]
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as exc:  # peft: no module of the model matches target_modules
        raise DraftLoraMismatch(f"draft LoRA {where}: its target modules match no module of the model: {exc}") from exc
    saved = load_peft_weights(lora_source, device=str(device), key_mapping=key_mapping, **hub)
    result = set_peft_model_state_dict(peft_model, saved)
    unloaded = sorted(result.unexpected_keys)
    adapter = f".{peft_model.active_adapter}."
    unfilled = sorted(k for k in result.missing_keys if adapter in k)
    if unloaded or unfilled:
        raise DraftLoraMismatch(
            f"draft LoRA {where} does not fit the model ({len(saved)} saved tensors): "
            + (f"{len(unloaded)} saved tensor(s) match no module of the model: {_first(unloaded)}; " if unloaded else "")
            + (f"{len(unfilled)} adapter parameter(s) no saved tensor filled: {_first(unfilled)}; " if unfilled else "")
            + "the adapter was saved for other module paths than the key mapping covers"
        )
    return peft_model.eval(), len(saved)


def map_key(name: str, key_mapping: dict[str, str]) -> str:
    """A module path or weight name renamed by the first pattern of ``key_mapping`` that matches."""
    for pattern, replacement in key_mapping.items():
        renamed, count = re.subn(pattern, replacement, name)
        if count:
            return renamed
    return name


def _first(keys: list[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


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
    if local.exists():
        raise FileNotFoundError(f"checkpoint {source!r} is not a directory")
    if source.startswith((".", "/")):
        raise FileNotFoundError(f"checkpoint folder {source!r} does not exist; set model.source to the folder "
                                "holding config.json, or to a Hugging Face hub id")
    return _hub_file(source, filename, revision)


class CheckpointUnavailable(FileNotFoundError):
    """A hub checkpoint this machine cannot read; the message says why and what to do, on one line."""


def _hub_file(source: str, filename: str, revision: str | None) -> str:
    """`filename` of a hub repository: the local cache first, the hub only when it can answer.

    Asked for a file it cannot fetch, huggingface_hub retries for tens of seconds and then reports a
    missing file; a cell should instead fail at once with the cause (offline, hub unreachable,
    gated, no such repository) and the way out.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RemoteEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    where = f"{source}@{revision or 'main'}"
    try:
        return hf_hub_download(source, filename, revision=revision, local_files_only=True)
    except LocalEntryNotFoundError:
        pass
    fix = (f"download it where there is network (hf download {source}{f' --revision {revision}' if revision else ''}, "
           "into the HF_HOME the run uses) or set model.source=<local folder>")
    if _hub_offline():
        raise CheckpointUnavailable(f"model {where} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) "
                                    f"and HF_HUB_OFFLINE is set: {fix}")
    unreachable = _hub_unreachable(constants.ENDPOINT)
    if unreachable:
        raise CheckpointUnavailable(f"model {where} is not in the local Hugging Face cache and the hub is unreachable "
                                    f"({unreachable}): no network? {fix}")
    try:
        return hf_hub_download(source, filename, revision=revision)
    except GatedRepoError as exc:
        raise CheckpointUnavailable(f"model {where} is gated: accept its terms on the hub, log in (hf auth login) "
                                    "and retry, or set model.source=<local folder>") from exc
    except RepositoryNotFoundError as exc:
        raise CheckpointUnavailable(f"no hub repository {source} (or it is private: hf auth login); "
                                    "check model.source, or set it to a local folder") from exc
    except RevisionNotFoundError as exc:
        raise CheckpointUnavailable(f"hub repository {source} has no revision {revision!r}; fix model.revision") from exc
    except RemoteEntryNotFoundError as exc:
        raise FileNotFoundError(f"{filename} not found in hub repository {where}") from exc


def _hub_offline() -> bool:
    from huggingface_hub import constants

    # huggingface_hub reads HF_HUB_OFFLINE once, at import; the environment may have changed since.
    flags = (os.environ.get(name, "") for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(f.strip().upper() in ("1", "ON", "YES", "TRUE") for f in flags)


def _hub_unreachable(endpoint: str, timeout_s: float = 3.0) -> str | None:
    """Why the hub's host cannot be reached (DNS, refused, timeout), or None when a TCP connection opens."""
    url = urlsplit(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except socket.gaierror as exc:
        return f"DNS lookup of {host} failed: {exc.strerror or exc}"
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    return None


# Checkpoint fingerprints (harness/README.md, "Results store and cell keys"): files up to this size
# count whole; larger ones (weights) by their size and SAMPLE_BYTES at the start (the safetensors
# header: names, dtypes, shapes, offsets), the middle and the end.
WHOLE_FILE_BYTES = 4 << 20
SAMPLE_BYTES = 1 << 20
_DIGESTS: dict[tuple, str] = {}


def checkpoint_digest(folder: str | Path) -> str:
    """A content fingerprint of a local checkpoint folder, "sha256:<16 hex>", cached per process
    for as long as no file's size or mtime changes.

    Every file under the folder counts by its relative name (hidden entries skipped): small files
    (config.json, tokenizer, safetensors index) whole, weight files by size and three samples.
    The weights of another training differ throughout, so a checkpoint swapped at the same path
    changes the samples; an edit confined to unsampled bytes of a weight file goes unseen."""
    folder = Path(folder).resolve()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))
    stats = [(p, p.stat()) for p in files]
    key = (str(folder), tuple((str(p), s.st_size, s.st_mtime_ns) for p, s in stats))
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for path, stat in stats:
            digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0".encode())
            with open(path, "rb") as handle:
                if stat.st_size <= WHOLE_FILE_BYTES:
                    digest.update(handle.read())
                    continue
                for offset in (0, stat.st_size // 2, stat.st_size - SAMPLE_BYTES):
                    handle.seek(offset)
                    digest.update(handle.read(SAMPLE_BYTES))
        _DIGESTS[key] = f"sha256:{digest.hexdigest()[:16]}"
    return _DIGESTS[key]


def resolved_revision(source: str, revision: str | None = None, cache_dir: str | Path | None = None) -> str | None:
    """The hub commit `revision` (None: the default branch) of hub repository `source` resolves to
    in the local hub cache, where loads read it from; a 40-hex revision is its own commit. None
    when that revision is not in the cache (nothing loaded it on this machine yet)."""
    if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(source, "config.json", cache_dir=cache_dir, revision=revision)
    except Exception:  # not a valid repository id
        return None
    if not isinstance(path, str):
        return None
    parts = Path(path).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def load_tokenizer(source: str, revision: str | None = None):
    """The checkpoint's tokenizer; never runs remote code (a config with auto_map would ask to)."""
    try:
        return AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=False)
    except ValueError:
        # AutoTokenizer refuses configs whose model_type it does not know (nemotron_labs_diffusion);
        # the tokenizer itself is a plain tokenizer.json.
        return PreTrainedTokenizerFast.from_pretrained(source, revision=revision)
