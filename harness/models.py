"""Where model sources point: hub ids and paths pass through, ``builtin:<name>`` ships in the repo."""

from __future__ import annotations

from harness.tinymodel import CHECKPOINT_DIR

BUILTIN_MODELS = {"tiny-dlm": CHECKPOINT_DIR}


def resolve_source(source: str) -> str:
    if not source.startswith("builtin:"):
        return source
    name = source.removeprefix("builtin:")
    if name not in BUILTIN_MODELS:
        raise ValueError(f"unknown builtin model {name!r}; valid: {', '.join(f'builtin:{n}' for n in BUILTIN_MODELS)}")
    path = BUILTIN_MODELS[name]
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"builtin model {name!r} is missing its checkpoint at {path}")
    return str(path)
