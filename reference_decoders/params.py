"""Parameters of one decode, validated once for every mode."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.contracts import ACCEPTANCE_RULES, MODES

# The vendor default block length (the checkpoints' block_size; configs/mode/diffusion.yaml);
# used when neither the caller nor the checkpoint config says otherwise.
DEFAULT_BLOCK_LENGTH = 32


@dataclass(frozen=True)
class DecodeParams:
    max_new_tokens: int
    eos_token_ids: tuple[int, ...]
    mask_token_id: int | None = None
    block_length: int = DEFAULT_BLOCK_LENGTH
    # diffusion: commit threshold (None = fixed schedule of `steps` passes per block);
    # linear_spec: draft threshold (0 = fill every mask in one draft pass, the vendor default).
    threshold: float | None = None
    steps: int | None = None  # diffusion without threshold: denoising passes per block (default L, as the vendor)
    temperature: float = 0.0
    seed: int = 0
    use_draft_adapter: bool = True
    # speculative modes with a temperature: how drafts are accepted (reference_decoders.sampling)
    acceptance: str = "speculative"

    def check(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.acceptance not in ACCEPTANCE_RULES:
            raise ValueError(f"unknown acceptance rule {self.acceptance!r}; valid: {', '.join(ACCEPTANCE_RULES)}")
        if mode == "ar":
            return
        if self.mask_token_id is None:
            raise ValueError(
                f"mode {mode!r} needs mask_token_id; pass it or load a checkpoint whose config has one"
            )
        if self.block_length < 2:
            raise ValueError(f"block_length must be >= 2 for mode {mode!r}, got {self.block_length}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1] or None, got {self.threshold}")
        if self.steps is not None and not 1 <= self.steps <= self.block_length:
            raise ValueError(f"steps must be in [1, block_length], got {self.steps}")

    def as_dict(self) -> dict:
        return asdict(self)
