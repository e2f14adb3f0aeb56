"""Where model sources point: hub ids and paths pass through, ``builtin:<name>`` ships in the repo.

Besides the tiny model, the repo ships the published ``config.json`` of the 8B models
(``harness/shapes/``): with ``model.random_weights=true`` they build the real shapes with random
weights, for timing-only cells, without a download.
"""

from __future__ import annotations

from pathlib import Path

from harness.tinymodel import CHECKPOINT_DIR

SHAPES_DIR = Path(__file__).resolve().parent / "shapes"
BUILTIN_MODELS = {
    "tiny-dlm": CHECKPOINT_DIR,
    "qwen3-8b-shapes": SHAPES_DIR / "qwen3-8b",
    "nemotron-labs-diffusion-8b-shapes": SHAPES_DIR / "nemotron-labs-diffusion-8b",
}


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
