"""Token choice shared by every mode: greedy or temperature sampling, and speculative acceptance.

Greedy (temperature 0) is argmax. With a temperature, tokens are drawn by the Gumbel-max trick
from ``softmax(logits / T)`` with the decoder's own seeded generator, so a run is reproducible.
The *confidence* that diffusion-style decoders rank positions by is the untempered softmax
probability of the chosen token (Fast-dLLM / the vendor's ``generate``).

Acceptance of drafts with a temperature (``ACCEPTANCE_RULES``; greedy decoding always accepts
while argmax equals the draft):

- ``speculative``: speculative sampling (Leviathan et al. 2023, Chen et al. 2023): accept draft
  x_i with probability min(1, p_i(x_i) / q_i(x_i)), on rejection draw from the residual
  max(0, p_i - q_i). The output follows the AR distribution p exactly *provided* q_i is the
  distribution x_i was drawn from given the earlier drafts; the drafting modes keep that true.
- ``sample_match``: the vendor's own rule at T > 0: draw the AR token y_i ~ p_i at every
  position and accept while y_i equals the draft; emit y up to and including the first mismatch.
  Exact for any drafts, whatever their distribution, but it accepts less often
  (sum_x q(x) p(x) instead of sum_x min(p(x), q(x))).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.contracts import ACCEPTANCE_RULES


def most_likely(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[..., V] -> (argmax tokens [...], their untempered softmax probability [...])."""
    tokens = logits.argmax(-1)
    return tokens, confidence_of(logits, tokens)


def confidence_of(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The untempered softmax probability of ``tokens [...]`` under ``logits [..., V]``."""
    return torch.softmax(logits.float(), dim=-1).gather(-1, tokens[..., None])[..., 0]


@dataclass
class Sampler:
    temperature: float = 0.0
    generator: torch.Generator | None = None
    acceptance: str = "speculative"

    def __post_init__(self):
        if self.acceptance not in ACCEPTANCE_RULES:
            raise ValueError(f"unknown acceptance rule {self.acceptance!r}; valid: {', '.join(ACCEPTANCE_RULES)}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def acceptance_rule(self) -> str:
        """The rule `accept` applies: ``greedy`` at temperature 0, else the configured one."""
        return "greedy" if self.greedy else self.acceptance

    @property
    def needs_draft_probs(self) -> bool:
        """Only speculative sampling reads the draft distributions."""
        return self.acceptance_rule == "speculative"

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """[..., V] -> [..., V] float32 distribution the tokens are drawn from."""
        logits = logits.float()
        return torch.softmax(logits if self.greedy else logits / self.temperature, dim=-1)

    def tokens(self, logits: torch.Tensor) -> torch.Tensor:
        """[..., V] -> tokens [...]."""
        if self.greedy:
            return logits.argmax(-1)
        return self.draw(torch.softmax(logits.float() / self.temperature, dim=-1))

    def pick(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[..., V] -> (tokens [...], confidence [...]): for decoders that rank positions."""
        tokens = self.tokens(logits)
        return tokens, confidence_of(logits, tokens)

    def draw(self, probs: torch.Tensor) -> torch.Tensor:
        """Sample one token per row of probs [..., V] (Gumbel-max with the seeded generator)."""
        uniform = torch.rand(probs.shape, generator=self.generator, device=probs.device, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
        return (probs.double().clamp_min(1e-30).log() + gumbel).argmax(-1)

    def accept(
        self,
        drafts: torch.Tensor,
        draft_probs: torch.Tensor | None,
        target_logits: torch.Tensor,
    ) -> tuple[int, int]:
        """Verify drafts against the target (AR) distribution by `acceptance_rule` (module docstring).

        drafts        [k]       proposed tokens for positions 1..k
        draft_probs   [k, V]    the distributions they were drawn from (read by ``speculative`` only)
        target_logits [k+1, V]  AR logits at positions 0..k (row i predicts position i+1)
        returns (number of drafts accepted n, the token that follows them): greedy and
        ``sample_match`` take the longest prefix where the AR token (argmax, or a sample of p)
        equals the draft, then the AR token at n; ``speculative`` accepts with min(1, p/q),
        resamples the residual on rejection and draws a bonus token when all are accepted.
        """
        return self.accept_rows(drafts[None], None if draft_probs is None else draft_probs[None], target_logits[None])[0]

    def accept_rows(
        self,
        drafts: torch.Tensor,
        draft_probs: torch.Tensor | None,
        target_logits: torch.Tensor,
    ) -> list[tuple[int, int]]:
        """`accept` for each row of a batch: drafts [B, k], draft_probs [B, k, V], target_logits [B, k+1, V]
        -> one (n, next token) per row. Rows are verified independently; greedy and ``sample_match``
        verify all rows with one read-back to the host."""
        B, k = drafts.shape
        if self.acceptance_rule != "speculative":
            target = self.tokens(target_logits)  # [B, k+1]
            n = (target[:, :k] == drafts).long().cumprod(-1).sum(-1)  # [B]
            following = target.gather(-1, n[:, None])[:, 0]  # [B]
            return list(zip(n.tolist(), following.tolist()))
        return [self._accept_speculative(drafts[row], draft_probs[row], target_logits[row]) for row in range(B)]

    def _accept_speculative(self, drafts: torch.Tensor, draft_probs: torch.Tensor, target_logits: torch.Tensor) -> tuple[int, int]:
        """One row of speculative sampling: drafts [k], draft_probs [k, V], target_logits [k+1, V]."""
        k = drafts.shape[0]
        p = self.probs(target_logits)  # [k+1, V]
        q = draft_probs.float()
        for i in range(k):
            x = int(drafts[i])
            ratio = p[i, x] / q[i, x].clamp_min(1e-30)
            u = torch.rand((), generator=self.generator, device=p.device)
            if u >= ratio:
                residual = (p[i] - q[i]).clamp_min(0)
                if float(residual.sum()) <= 0:
                    residual = p[i]
                return i, int(self.draw(residual / residual.sum()))
        return k, int(self.draw(p[k]))
