"""The in-repo tiny dual-mode model: its tokenizer, its training recipe and its shipped checkpoint."""

from pathlib import Path

CHECKPOINT_DIR = Path(__file__).parent / "checkpoint"
