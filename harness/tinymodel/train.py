"""Train the in-repo tiny dual-mode model from scratch on CPU (issue 4).

    python -m harness.tinymodel.train --out harness/tinymodel/checkpoint [--steps N --seed S ...]

Recipe (the Efficient-DLM / Nemotron-Labs-Diffusion joint objective of arXiv 2512.14067, restated
for a ~1M-parameter Qwen3 and a character-level tokenizer):

- One forward over ``[x_t ; x_0]`` with the block-diffusion training mask of
  `reference_decoders.masks.block_diffusion_training` (noisy block b sees itself bidirectionally and
  the clean tokens of blocks < b; the clean half is causal), and the same position ids for both
  halves. ``loss = AR loss on the clean half + alpha x diffusion loss on the noisy half``.
- Diffusion noise: per block a ratio m ~ U(eps, 1); exactly ceil(m x e) of the block's e eligible
  positions are replaced by [MASK], p_mask = that count / e; cross-entropy on the masked positions
  (the logit at a MASK predicts the token at that position, no shift) weighted by 1 / p_mask and
  averaged over the positions that could have been masked (an unbiased per-token estimate).
- Loss only on the answer: the AR loss on the answer and its [EOS], the diffusion loss on the
  answer, its [EOS] and the [EOS] fill up to the end of the block holding that [EOS]. The prompt
  (random sequences, filler text) is unpredictable by design, so training on it would only spend
  capacity.
- The first token of a block is left clean with probability ``keep_first_prob``: in diffusion and
  linear_spec decoding it is always the known seed, while quadratic_spec drafts blocks whose first
  position is a MASK too, so that state is trained as well.
- The block grid's offset is drawn per sample (the block holding the answer's first token starts
  0..L-1 tokens before it), because at inference blocks start wherever the prompt or the last
  accepted run ends.
- A fraction of the batches carry a filler prefix ("<random text>\\n" before the task) with prompts
  of up to ``max_filler_prompt`` tokens, so that prompts padded to 128 tokens still decode.

Noisy window (a speed-up that changes no logit): only the noisy copy of the blocks that hold answer
tokens is fed, ``window`` tokens starting at the block that holds the answer's first token. The
attention mask is the published ``[2n, 2n]`` one restricted to those rows and columns: the dropped
noisy tokens carry no loss and no kept token attends to them (noisy tokens see only their own block
in the noisy half, clean tokens see only the clean half), so the kept logits are exactly those of
the full concatenation (tests/test_tinymodel.py checks this).

Training examples are held out from evaluation: every question of the tasks' evaluation pools for
seeds 0..``heldout_eval_seeds - 1`` is rejected from the training stream.
"""

from __future__ import annotations

import os

# Idle OpenMP workers spin briefly, then sleep. libgomp's default spin (300k iterations) burns the
# time slice a descheduled partner thread needs: on this 2-core VM, with 3 other busy processes, a
# 2-thread step took 2.5 s with the default and 1.2 s with this setting, and 0.31 vs 0.33 s idle
# (OMP_WAIT_POLICY=PASSIVE matched it under load but cost 30% idle). torch's Linux CPU wheels use
# libgomp. Only effective when this module is imported before torch (`python -m ...` does).
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import argparse
import json
import math
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

from harness.config import TaskConfig
from harness.tasks.base import Example
from harness.tasks.synthetic import MAX_LENGTH, SYNTHETIC_TASKS
from harness.tinymodel import CHECKPOINT_DIR
from harness.tinymodel.tokenizer import build_tokenizer
from reference_decoders.masks import block_diffusion_training

# The longest answer: a 16-symbol sequence, or a 6-digit sum.
MAX_ANSWER_TOKENS = MAX_LENGTH


@dataclass
class TrainConfig:
    seed: int = 0
    steps: int = 2000
    batch_size: int = 64
    # model (Qwen3 architecture, ~1.06M parameters)
    hidden_size: int = 128
    intermediate_size: int = 512
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 4
    rope_theta: float = 10000.0
    max_position_embeddings: int = 512
    # objective
    alpha: float = 1.0  # weight of the diffusion loss next to the AR loss
    block_size: int = 8
    mask_eps: float = 1e-3  # m ~ U(eps, 1): the smallest masking ratio
    keep_first_prob: float = 0.75  # probability that a block's first token stays clean
    # data
    task_weights: dict = field(default_factory=lambda: {"copy": 0.25, "reverse": 0.25, "sort": 0.3, "add": 0.2})
    filler_batch_fraction: float = 0.3  # share of batches whose prompts carry a filler prefix
    filler_batch_size: int = 32  # filler batches are ~3x longer: fewer rows keep their cost near a plain batch's
    max_filler_prompt: int = 136  # prompt length (tokens) of filler batches is drawn up to this
    heldout_eval_seeds: int = 10  # evaluation pools of task seeds 0..N-1 never appear in training
    # optimiser (AdamW, linear warm-up then cosine decay to min_lr_ratio x lr)
    lr: float = 4e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.01
    betas: tuple = (0.9, 0.98)
    grad_clip: float = 1.0
    threads: int = 2
    log_every: int = 100

    @property
    def window(self) -> int:
        """Noisy-window length: whole blocks covering up to L-1 prompt tokens, the answer and its [EOS]."""
        L = self.block_size
        return L * math.ceil((L - 1 + MAX_ANSWER_TOKENS + 1) / L)


# -- model ------------------------------------------------------------------------------------------


def build_model(cfg: TrainConfig, tokenizer) -> Qwen3ForCausalLM:
    """A freshly initialised Qwen3 whose config carries what the decoders read (mask id, block size, EOS)."""
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.hidden_size // cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.mask_token_id = tokenizer.mask_token_id
    config.block_size = cfg.block_size
    torch.manual_seed(cfg.seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    return model


# -- data -------------------------------------------------------------------------------------------


@dataclass
class Batch:
    clean: torch.Tensor  # [B, n] prompt, answer, [EOS], then [EOS] fill
    prompt_length: torch.Tensor  # [B]
    answer_length: torch.Tensor  # [B] answer tokens including the first [EOS]
    window_start: torch.Tensor  # [B] first position of the noisy window (a block start)


def heldout_questions(num_seeds: int) -> dict[str, set[str]]:
    """Questions of the evaluation pools for task seeds 0..num_seeds-1, per task."""
    return {
        name: {ex.question for seed in range(num_seeds) for ex in task.examples(TaskConfig(name=name, num_samples=0, seed=seed))}
        for name, task in SYNTHETIC_TASKS.items()
    }


class TrainingData:
    """Batches of rendered task examples; batch k depends only on (seed, k), so any step can be replayed."""

    def __init__(self, cfg: TrainConfig, tokenizer, heldout: dict[str, set[str]] | None = None):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.heldout = heldout_questions(cfg.heldout_eval_seeds) if heldout is None else heldout
        self.task_names = sorted(cfg.task_weights)
        self.task_configs = {name: TaskConfig(name=name) for name in self.task_names}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def sample_example(self, rng: random.Random) -> tuple[str, Example]:
        name = rng.choices(self.task_names, weights=[self.cfg.task_weights[t] for t in self.task_names])[0]
        task = SYNTHETIC_TASKS[name]
        while True:
            question, answer = task.make_question(rng)
            if question not in self.heldout[name]:
                return name, Example(id="train", question=question, answer=answer)

    def render_prompt(self, rng: random.Random, name: str, example: Example, with_filler: bool) -> str:
        task, task_cfg = SYNTHETIC_TASKS[name], self.task_configs[name]
        bare = task.render(example, task_cfg)
        if not with_filler:
            return bare
        # the whole prompt (filler + newline + task) gets a length drawn up to max_filler_prompt
        target = rng.randint(len(self.encode(bare)) + 2, self.cfg.max_filler_prompt)
        return task.render(example, task_cfg, task.filler(rng, target - len(self.encode(bare)) - 1))

    def batch(self, step: int) -> Batch:
        cfg, L = self.cfg, self.cfg.block_size
        rng = random.Random(f"tinymodel-train-{cfg.seed}-{step}")
        with_filler = rng.random() < cfg.filler_batch_fraction
        rows, prompt_lengths, answer_lengths, window_starts = [], [], [], []
        for _ in range(cfg.filler_batch_size if with_filler else cfg.batch_size):
            name, example = self.sample_example(rng)
            prompt = self.encode(self.render_prompt(rng, name, example, with_filler))
            answer = self.encode(example.answer) + [self.tokenizer.eos_token_id]
            assert len(answer) <= MAX_ANSWER_TOKENS + 1, "the noisy window would not cover this answer"
            rows.append(prompt + answer)
            prompt_lengths.append(len(prompt))
            answer_lengths.append(len(answer))
            window_starts.append(len(prompt) - rng.randrange(L))
        n = max(start + cfg.window for start in window_starts)
        clean = torch.full((len(rows), n), self.tokenizer.eos_token_id, dtype=torch.long)
        for i, row in enumerate(rows):
            clean[i, : len(row)] = torch.tensor(row)
        return Batch(clean, torch.tensor(prompt_lengths), torch.tensor(answer_lengths), torch.tensor(window_starts))


# -- the joint objective ----------------------------------------------------------------------------


def windowed_training_mask(n: int, window_start: int, window: int, block_size: int) -> torch.Tensor:
    """[window + n, window + n]: the published [2n, 2n] mask restricted to the noisy window and the clean half."""
    full = block_diffusion_training(n, block_size, window_start % block_size)
    keep = torch.cat([torch.arange(window_start, window_start + window), torch.arange(n, 2 * n)])
    return full[keep][:, keep]


def eligible_positions(batch: Batch, window: int, block_size: int) -> torch.Tensor:
    """[B, window] bool: window positions the diffusion loss may cover (answer, [EOS], [EOS] fill to the block end)."""
    position = batch.window_start[:, None] + torch.arange(window)[None, :]
    answer_end = batch.prompt_length + batch.answer_length  # one past the first [EOS]
    blocks_to_eos = (answer_end - batch.window_start + block_size - 1) // block_size
    region_end = batch.window_start + blocks_to_eos * block_size
    return (position >= batch.prompt_length[:, None]) & (position < region_end[:, None])


def sample_noise(eligible: torch.Tensor, cfg: TrainConfig, generator: torch.Generator):
    """eligible [B, W] -> (masked, p_mask, candidates), each [B, W].

    Per block, `candidates` are the eligible positions minus a kept-clean first token; ceil(m x e)
    of its e candidates are masked, m ~ U(eps, 1), and p_mask is that count / e.
    """
    B, W = eligible.shape
    L = cfg.block_size
    keep_first = torch.rand(B, W // L, generator=generator) < cfg.keep_first_prob
    candidates = eligible.view(B, W // L, L).clone()
    candidates[..., 0] &= ~keep_first
    count = candidates.sum(-1)  # e per block
    ratio = cfg.mask_eps + (1 - cfg.mask_eps) * torch.rand(B, W // L, generator=generator)
    to_mask = torch.ceil(ratio * count).long()
    # a uniformly random subset of `to_mask` candidates: rank random scores, candidates first
    scores = torch.rand(B, W // L, L, generator=generator).masked_fill(~candidates, 2.0)
    rank = scores.argsort(-1).argsort(-1)
    masked = (rank < to_mask[..., None]) & candidates
    p_mask = (to_mask / count.clamp(min=1)).float()[..., None].expand(B, W // L, L)
    return masked.reshape(B, W), p_mask.reshape(B, W), candidates.reshape(B, W)


def joint_loss(model, batch: Batch, cfg: TrainConfig, generator: torch.Generator, mask_token_id: int) -> dict[str, torch.Tensor]:
    """AR loss on the clean half + alpha x 1/p_mask-weighted masked-token loss on the noisy window."""
    B, n = batch.clean.shape
    W, L = cfg.window, cfg.block_size
    window_index = batch.window_start[:, None] + torch.arange(W)[None, :]  # [B, W]
    window_clean = batch.clean.gather(1, window_index)
    eligible = eligible_positions(batch, W, L)
    masked, p_mask, candidates = sample_noise(eligible, cfg, generator)
    noisy = window_clean.masked_fill(masked, mask_token_id)

    masks = {}
    for start in batch.window_start.tolist():
        if start not in masks:
            masks[start] = windowed_training_mask(n, start, W, L)
    attention = torch.stack([masks[s] for s in batch.window_start.tolist()])[:, None]  # [B, 1, W+n, W+n]
    positions = torch.cat([window_index, torch.arange(n)[None, :].expand(B, n)], dim=1)
    logits = model(input_ids=torch.cat([noisy, batch.clean], dim=1), attention_mask=attention, position_ids=positions).logits

    # AR: the clean logit at i predicts token i+1; targets are the answer and its first [EOS]
    clean_logits = logits[:, W:-1]
    targets = batch.clean[:, 1:]
    target_position = torch.arange(1, n)[None, :]
    answer_start = batch.prompt_length[:, None]
    ar_target = (target_position >= answer_start) & (target_position < answer_start + batch.answer_length[:, None])
    ar_ce = F.cross_entropy(clean_logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none").view(B, n - 1)
    ar_loss = (ar_ce * ar_target).sum() / ar_target.sum()

    # diffusion: the noisy logit at a MASK predicts the token at that same position
    noisy_ce = F.cross_entropy(logits[:, :W].reshape(-1, logits.shape[-1]), window_clean.reshape(-1), reduction="none").view(B, W)
    weighted = torch.where(masked, noisy_ce / p_mask.clamp(min=cfg.mask_eps), torch.zeros_like(noisy_ce))
    diffusion_loss = weighted.sum() / candidates.sum().clamp(min=1)
    return {"loss": ar_loss + cfg.alpha * diffusion_loss, "ar": ar_loss, "diffusion": diffusion_loss}


# -- training loop ----------------------------------------------------------------------------------


def learning_rate(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    # norms and embeddings are not decayed (the usual split for transformers)
    decay = [p for name, p in model.named_parameters() if p.dim() >= 2 and "embed" not in name]
    no_decay = [p for name, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in name)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def train(cfg: TrainConfig, log=print, on_log=None) -> tuple[Qwen3ForCausalLM, dict]:
    """Train from scratch; returns the model and the training record (losses, timings).

    on_log(step, model), if given, runs at every log point (e.g. to save intermediate checkpoints).
    """
    torch.set_num_threads(cfg.threads)
    tokenizer = build_tokenizer()
    model = build_model(cfg, tokenizer)
    model.train()
    data = TrainingData(cfg, tokenizer)
    optimizer = make_optimizer(model, cfg)
    generator = torch.Generator().manual_seed(cfg.seed)

    curve, window_sums, window_count = [], {"loss": 0.0, "ar": 0.0, "diffusion": 0.0}, 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for step in range(cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        losses = joint_loss(model, data.batch(step), cfg, generator, tokenizer.mask_token_id)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()

        for key in window_sums:
            window_sums[key] += losses[key].item()
        window_count += 1
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            point = {"step": step + 1, **{k: round(v / window_count, 4) for k, v in window_sums.items()},
                     "elapsed_s": round(time.perf_counter() - started, 1)}
            curve.append(point)
            log(json.dumps(point))
            if on_log is not None:
                on_log(step + 1, model)
            window_sums, window_count = {k: 0.0 for k in window_sums}, 0

    wall = time.perf_counter() - started
    model.eval()
    record = {
        "hyperparameters": {**asdict(cfg), "window": cfg.window},
        "parameters": sum(p.numel() for p in model.parameters()),
        "wall_time_s": round(wall, 1),
        "seconds_per_step": round(wall / cfg.steps, 3),
        # cpu/wall below `threads` means the process did not get its cores all the time (shared CPU)
        "process_cpu_s": round(time.process_time() - cpu_started, 1),
        "process_cpu_over_wall": round((time.process_time() - cpu_started) / wall, 2),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "loss_curve": curve,  # means over each `log_every` steps
        "final_losses": curve[-1] if curve else None,
        "environment": {
            "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"),
        },
    }
    return model, record


def save_checkpoint(model, record: dict, out: Path) -> None:
    """Weights (safetensors), config, generation config, tokenizer and training_record.json in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)  # files of an earlier checkpoint are overwritten, nothing else is touched
    model.save_pretrained(out)
    build_tokenizer().save_pretrained(out)
    (out / "training_record.json").write_text(json.dumps(record, indent=1) + "\n")


def parse_args(argv=None) -> tuple[TrainConfig, Path]:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR)
    for name in ("seed", "steps", "batch_size", "alpha", "block_size", "keep_first_prob", "lr",
                 "filler_batch_fraction", "filler_batch_size", "threads", "log_every", "warmup_steps"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(getattr(defaults, name)), default=getattr(defaults, name))
    args = parser.parse_args(argv)
    out = args.__dict__.pop("out")
    return TrainConfig(**vars(args)), out


def main(argv=None) -> None:
    cfg, out = parse_args(argv)
    model, record = train(cfg)
    record["command"] = " ".join(["python -m harness.tinymodel.train", *(sys.argv[1:] if argv is None else argv)])
    save_checkpoint(model, record, out)
    print(f"saved to {out} after {record['wall_time_s']} s ({record['seconds_per_step']} s/step)")


if __name__ == "__main__":
    main()
