"""From task examples to exact model inputs: chat template, tokenization, context length.

The context axis is a prompt length in the model's own tokens. A task renders its prompt with a
`filler` slot; when the context asks for more tokens than the bare prompt has, the filler (the
task's neutral padding text) grows until the tokenized prompt measures exactly the target. A
prompt that is already longer than the target cannot be fitted: that sample is recorded as an
error, not silently truncated.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from harness.config import TaskConfig
from harness.tasks.base import Example, Task


@dataclass(frozen=True)
class Sample:
    example: Example
    prompt_ids: list[int]
    prompt_text: str

    @property
    def id(self) -> str:
        return self.example.id


@dataclass(frozen=True)
class Unfittable:
    example: Example
    reason: str


def uses_chat_template(tokenizer, cfg: TaskConfig, task: Task) -> bool:
    """task.use_chat_template when set, else as the task's protocol prompts: a protocol whose
    reference prompts through the chat template (NeMo-Skills) needs a tokenizer that has one."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if cfg.use_chat_template and not has_template:
        raise ValueError("task.use_chat_template is true but the tokenizer has no chat template")
    if cfg.use_chat_template is not None:
        return cfg.use_chat_template
    wanted = task.protocol(cfg.protocol).chat
    if wanted and not has_template:
        raise ValueError(
            f"task.protocol={cfg.protocol} prompts {cfg.name} through the chat template, but the tokenizer has none; "
            f"choose another protocol ({', '.join(p.name for p in task.protocols)}) or set task.use_chat_template=false "
            "(recorded as chat_template=false: not the reference's prompt)"
        )
    return has_template if wanted is None else wanted


def encode(tokenizer, text: str, chat: bool) -> list[int]:
    if chat:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
    return list(tokenizer(text)["input_ids"])


def build_samples(task: Task, cfg: TaskConfig, tokenizer, input_tokens: int) -> list[Sample | Unfittable]:
    chat = uses_chat_template(tokenizer, cfg, task)
    return [fit(task, example, cfg, tokenizer, input_tokens, chat) for example in task.examples(cfg)]


def within_positions(samples: list[Sample | Unfittable], max_positions: int | None, max_new_tokens: int) -> list[Sample | Unfittable]:
    """A prompt whose generation would run past the model's positions is an error, not a silent
    extrapolation (few-shot prompts can be long even without context padding)."""
    if not max_positions:
        return samples
    return [
        Unfittable(s.example, f"prompt of {len(s.prompt_ids)} tokens + max_new_tokens {max_new_tokens} exceeds the model's {max_positions} positions")
        if isinstance(s, Sample) and len(s.prompt_ids) + max_new_tokens > max_positions else s
        for s in samples
    ]


def fit(task: Task, example: Example, cfg: TaskConfig, tokenizer, target: int, chat: bool) -> Sample | Unfittable:
    def render(n_chars: int) -> tuple[str, list[int]]:
        filler = task.filler(random.Random(f"{cfg.seed}-{example.id}"), n_chars) if n_chars else ""
        text = task.render(example, cfg, filler)
        return text, encode(tokenizer, text, chat)

    text, ids = render(0)
    if target == 0 or len(ids) == target:
        return Sample(example, ids, text)
    if len(ids) > target:
        return Unfittable(example, f"prompt has {len(ids)} tokens, more than the context's {target}")
    # Grow the filler (in characters) until the prompt measures the target. Token counts grow
    # almost linearly with filler characters, so interpolation lands on or next to the target in a
    # few tokenizations even at 128K tokens; bisection closes what is left. Invariant:
    # count(low) < target <= count(high).
    base = len(ids)
    low, low_count, high, high_count = 0, base, None, None
    guess = _first_guess(task, cfg, example, tokenizer, target - len(ids))
    for _ in range(MAX_GUESSES):
        text, ids = render(guess)
        if len(ids) == target:
            return Sample(example, ids, text)
        if len(ids) < target:
            low, low_count = guess, len(ids)
        else:
            high, high_count = guess, len(ids)
        if high is None:  # extrapolate at the density seen so far
            guess = low + max(1, math.ceil((target - low_count) * low / max(low_count - base, 1)))
        elif high - low > 1:  # interpolate inside the bracket
            guess = min(high - 1, low + max(1, (target - low_count) * (high - low) // max(high_count - low_count, 1)))
        else:
            break
    while high is None:
        candidate = max(2 * low, 1)
        count = len(render(candidate)[1])
        low, low_count, high = (candidate, count, None) if count < target else (low, low_count, candidate)
    while high - low > 1:
        middle = (low + high) // 2
        if len(render(middle)[1]) < target:
            low = middle
        else:
            high = middle
    text, ids = render(high)
    if len(ids) != target:
        # Subword merges make the count step by more than one now and then (a longer last word can
        # merge into fewer tokens): look at the neighbouring lengths for an exact fit.
        for n_chars in sorted(range(max(high - NEIGHBOURHOOD, 1), high + NEIGHBOURHOOD + 1), key=lambda n: abs(n - high)):
            candidate_text, candidate_ids = render(n_chars)
            if len(candidate_ids) == target:
                return Sample(example, candidate_ids, candidate_text)
        return Unfittable(example, f"no filler length gives exactly {target} tokens (closest: {len(ids)})")
    return Sample(example, ids, text)


MAX_GUESSES = 8
NEIGHBOURHOOD = 32  # filler characters tried either side of the bisection's answer


def _first_guess(task: Task, cfg: TaskConfig, example: Example, tokenizer, missing_tokens: int) -> int:
    """Filler characters expected to add `missing_tokens` tokens, from the task's filler density."""
    probe = task.filler(random.Random(f"{cfg.seed}-{example.id}"), 4096)
    probe_tokens = max(len(tokenizer(probe, add_special_tokens=False)["input_ids"]), 1)
    return max(1, missing_tokens * len(probe) // probe_tokens)
