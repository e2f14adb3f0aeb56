"""From task examples to exact model inputs: chat template, tokenization, context length.

The context axis is a prompt length in the model's own tokens. A task renders its prompt with a
`filler` slot; when the context asks for more tokens than the bare prompt has, the filler (the
task's neutral padding text) grows until the tokenized prompt measures exactly the target. A
prompt that is already longer than the target cannot be fitted: that sample is recorded as an
error, not silently truncated.
"""

from __future__ import annotations

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


def uses_chat_template(tokenizer, cfg: TaskConfig) -> bool:
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if cfg.use_chat_template and not has_template:
        raise ValueError("task.use_chat_template is true but the tokenizer has no chat template")
    return has_template if cfg.use_chat_template is None else cfg.use_chat_template


def encode(tokenizer, text: str, chat: bool) -> list[int]:
    if chat:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
    return list(tokenizer(text)["input_ids"])


def build_samples(task: Task, cfg: TaskConfig, tokenizer, input_tokens: int) -> list[Sample | Unfittable]:
    chat = uses_chat_template(tokenizer, cfg)
    return [fit(task, example, cfg, tokenizer, input_tokens, chat) for example in task.examples(cfg)]


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
    # Grow the filler by characters: find the smallest length whose prompt reaches the target.
    low, high = 0, 1
    while len(render(high)[1]) < target:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if len(render(middle)[1]) < target:
            low = middle
        else:
            high = middle
    text, ids = render(high)
    if len(ids) != target:
        return Unfittable(example, f"no filler length gives exactly {target} tokens (closest: {len(ids)})")
    return Sample(example, ids, text)
