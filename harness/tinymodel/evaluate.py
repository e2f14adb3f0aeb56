"""Measure the tiny model per mode and per task with the reference decoders (issue 4's table).

    python -m harness.tinymodel.evaluate [--checkpoint DIR] [--samples N] [--seed S] [--json FILE]

For each context setting (the bare prompt, and the prompt padded to ``--pad-to`` tokens with the
task's filler) and each synthetic task, every mode decodes the same held-out examples (task seed
``--seed``; the training stream excludes seeds 0..9) greedily at the checkpoint's block size.

Columns: exact-match accuracy; TPF = new tokens / all forwards, prefill included (DESIGN.md
section 5), pooled over the samples (sum of tokens / sum of forwards); accept = mean tokens emitted
per verify step, pooled over all steps (speculative modes), counting only tokens that reach the
output (the decoder's own ``accept_lengths`` also count what a step accepted past the first EOS or
max_new_tokens; that figure is ``accept_raw``); "=ar" = share of samples whose tokens equal the ar
tokens exactly.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, Qwen3ForCausalLM

from harness.config import TaskConfig
from harness.tasks.synthetic import SYNTHETIC_TASKS
from harness.tinymodel import CHECKPOINT_DIR
from reference_decoders import generate

MODES = ("ar", "diffusion", "linear_spec", "quadratic_spec")
MODE_THRESHOLDS = {"diffusion": 0.9}  # the vendor default; linear_spec drafts in one pass (threshold 0)


@dataclass
class Row:
    context: str
    task: str
    mode: str
    samples: int
    accuracy: float
    tpf: float
    mean_accept_length: float | None
    mean_accept_length_raw: float | None
    same_as_ar: float | None


def load_checkpoint(path: Path | str = CHECKPOINT_DIR):
    """The same loading path as a real checkpoint: stock class and tokenizer from the folder."""
    model = Qwen3ForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer


def prompt_text(task, example, cfg: TaskConfig, tokenizer, pad_to: int | None) -> str:
    """The rendered prompt; with pad_to, a filler prefix makes it exactly pad_to tokens long."""
    bare = task.render(example, cfg)
    if pad_to is None:
        return bare
    filler_chars = pad_to - len(tokenizer(bare, add_special_tokens=False).input_ids) - 1  # -1: the newline
    if filler_chars < 1:
        return bare
    text = task.render(example, cfg, task.filler(random.Random(f"pad-{example.id}"), filler_chars))
    assert len(tokenizer(text, add_special_tokens=False).input_ids) == pad_to, "the tokenizer is not one token per character"
    return text


def emitted_per_verify_step(result) -> list[int]:
    """Tokens each verify step added to the output (speculative modes; [] for the others).

    The first emit is the prefill's token; each later emit is one verify step's accepted run.
    """
    if not result.accept_lengths:
        return []
    steps = [after - before for before, after in zip(result.emit_counts, result.emit_counts[1:])]
    assert len(steps) == len(result.accept_lengths), "expected one emit per verify step after the prefill's"
    return steps


def mean(values: list) -> float | None:
    return sum(values) / len(values) if values else None


def completion_text(tokens: list[int], tokenizer) -> str:
    eos = tokenizer.eos_token_id
    return tokenizer.decode(tokens[: tokens.index(eos)] if eos in tokens else tokens)


def evaluate(model, tokenizer, tasks=tuple(SYNTHETIC_TASKS), modes=MODES, samples: int = 50, seed: int = 0,
             contexts: dict[str, int | None] | None = None, max_new_tokens: int = 24) -> list[Row]:
    contexts = {"bare": None, "pad128": 128} if contexts is None else contexts
    block_length = model.config.block_size
    rows = []
    for context, pad_to in contexts.items():
        for name in tasks:
            task = SYNTHETIC_TASKS[name]
            cfg = TaskConfig(name=name, num_samples=samples, seed=seed)
            examples = task.examples(cfg)
            tokens_by_mode = {}
            for mode in modes:
                correct, new_tokens, forwards, accepts, accepts_raw, outputs = 0, 0, 0, [], [], []
                for example in examples:
                    ids = tokenizer(prompt_text(task, example, cfg, tokenizer, pad_to), add_special_tokens=False, return_tensors="pt").input_ids
                    result = generate(model, ids, mode, max_new_tokens=max_new_tokens, block_length=block_length,
                                      threshold=MODE_THRESHOLDS.get(mode), eos_token_id=tokenizer.eos_token_id)
                    correct += task.score(example, completion_text(result.tokens, tokenizer)).correct
                    new_tokens += len(result.tokens)
                    forwards += result.total_forwards
                    accepts += emitted_per_verify_step(result)
                    accepts_raw += result.accept_lengths
                    outputs.append(result.tokens)
                tokens_by_mode[mode] = outputs
                same = None
                if mode != "ar" and "ar" in tokens_by_mode:
                    same = sum(a == b for a, b in zip(outputs, tokens_by_mode["ar"])) / len(examples)
                rows.append(Row(context, name, mode, len(examples), correct / len(examples), new_tokens / forwards,
                                mean(accepts), mean(accepts_raw), same))
    return rows


def format_table(rows: list[Row]) -> str:
    def number(x, digits=2):
        return "-" if x is None else f"{x:.{digits}f}"

    lines = ["| context | task | mode | n | accuracy | TPF | accept | accept_raw | =ar |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.context} | {r.task} | {r.mode} | {r.samples} | {number(r.accuracy)} | {number(r.tpf)} | "
                     f"{number(r.mean_accept_length)} | {number(r.mean_accept_length_raw)} | {number(r.same_as_ar)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--samples", type=int, default=50, help="examples per task (the first N of the task's pool)")
    parser.add_argument("--seed", type=int, default=0, help="task seed of the evaluation pool (0..9 are held out from training)")
    parser.add_argument("--tasks", nargs="+", default=list(SYNTHETIC_TASKS))
    parser.add_argument("--modes", nargs="+", default=list(MODES))
    parser.add_argument("--pad-to", type=int, default=128, help="prompt length of the padded context setting")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model, tokenizer = load_checkpoint(args.checkpoint)
    started = time.perf_counter()
    rows = evaluate(model, tokenizer, args.tasks, args.modes, args.samples, args.seed,
                    {"bare": None, f"pad{args.pad_to}": args.pad_to}, args.max_new_tokens)
    print(f"checkpoint {args.checkpoint}, block {model.config.block_size}, diffusion threshold "
          f"{MODE_THRESHOLDS['diffusion']}, greedy, max_new_tokens {args.max_new_tokens}, task seed {args.seed}")
    print(format_table(rows))
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")


if __name__ == "__main__":
    main()
