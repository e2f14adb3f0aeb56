"""The accuracy columns of a record (harness.records `_ACCURACY`): how each prompt was made, where its
data came from, and what the scorer read.

SPEED-Bench pads its throughput prompts to exactly N x 1000 tokens of tiktoken's `o200k_base`, not
of the model's tokenizer, so each record carries both counts: `prompt_tokens` (the model's, chat
template included) and `prompt_tokens_o200k` (o200k_base, of the prompt text before any chat
template: what SPEED-Bench counts). o200k_base needs its BPE file, which tiktoken downloads once and
caches (`TIKTOKEN_CACHE_DIR`); where it cannot (offline), the count is null and the reason is logged.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

from harness.config import TaskConfig
from harness.prompts import uses_chat_template
from harness.tasks.base import Example, Score, Task, cut_at_stop

log = logging.getLogger(__name__)
O200K_LOAD_TIMEOUT_S = 30.0  # tiktoken's download has no timeout of its own; a silent network must not hang a sweep


def cell_columns(task: Task, cfg: TaskConfig, tokenizer) -> dict:
    """Columns shared by every row of a cell."""
    chat = uses_chat_template(tokenizer, cfg, task)
    provenance = task.provenance(cfg)
    return {
        "few_shot": task.few_shot(cfg),
        "stop_strings": list(task.stop_strings(cfg, chat)),
        "chat_template": chat,
        "dataset_source": provenance.source,
        "dataset_revision": provenance.revision,
        "dataset_split": provenance.split,
        "task_rows_skipped": provenance.rows_skipped,
    }


def prompt_columns(example: Example, prompt_text: str | None) -> dict:
    return {"sample_category": example.category, "prompt_tokens_o200k": o200k_count(prompt_text)}


def score_columns(task: Task, example: Example, completion: str, stops: list[str]) -> dict:
    """Cut the completion at the first stop string, score it, and keep what the scorer read."""
    cut, hit = cut_at_stop(completion, tuple(stops))
    try:
        score: Score = task.score(example, cut)
    except Exception as exc:  # a scorer that breaks on one sample must not lose the cell's other rows
        score = Score(correct=None, extracted=None, detail=f"scorer failed: {type(exc).__name__}: {exc}")
    return {
        "stop_string_hit": hit,
        "correct": score.correct,
        "score": score.score,
        "extracted_answer": score.extracted,
        "score_detail": score.detail,
        "correct_strict": score.strict_correct,
        "extracted_answer_strict": score.strict_extracted,
        "sandbox_level": score.sandbox_level,
    }


def o200k_count(text: str | None) -> int | None:
    if text is None:
        return None
    encoding = o200k_encoding()
    return None if encoding is None else len(encoding.encode(text, disallowed_special=()))


@lru_cache(maxsize=1)
def o200k_encoding():
    """tiktoken's o200k_base, or None (logged once, with the reason) when it cannot be loaded."""
    try:
        import tiktoken
    except ImportError:
        log.warning("prompt_tokens_o200k is null: tiktoken is not installed (pip install 'dlm-bench[tasks]')")
        return None
    outcome: dict = {}

    def load() -> None:
        try:
            outcome["encoding"] = tiktoken.get_encoding("o200k_base")
        except Exception as exc:  # offline: tiktoken cannot fetch the BPE file
            outcome["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(O200K_LOAD_TIMEOUT_S)
    if "encoding" in outcome:
        return outcome["encoding"]
    reason = outcome.get("error", f"no answer within {O200K_LOAD_TIMEOUT_S:.0f} s")
    log.warning(
        "prompt_tokens_o200k is null: tiktoken cannot load o200k_base (%s). Run once where it can download "
        "its BPE file with TIKTOKEN_CACHE_DIR set to a shared folder, then set the same TIKTOKEN_CACHE_DIR here.",
        reason,
    )
    return None
