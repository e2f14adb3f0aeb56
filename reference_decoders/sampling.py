"""Token choice shared by every mode: greedy or temperature sampling, and speculative acceptance.

Greedy (temperature 0) is argmax. With a temperature, tokens are drawn by the Gumbel-max trick
from ``softmax(logits / T)`` with the decoder's own seeded generator, so a run is reproducible.
The *confidence* that diffusion-style decoders rank positions by is the untempered softmax
probability of the chosen token (Fast-dLLM / the vendor's ``generate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Sampler:
    temperature: float = 0.0
    generator: torch.Generator | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

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
        confidence = torch.softmax(logits.float(), dim=-1).gather(-1, tokens[..., None])[..., 0]
        return tokens, confidence

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
        """Verify drafts against the target (AR) distribution; lossless in both regimes.

        drafts        [k]       proposed tokens for positions 1..k
        draft_probs   [k, V]    the distributions they were drawn from (ignored when greedy)
        target_logits [k+1, V]  AR logits at positions 0..k (row i predicts position i+1)
        returns (number of drafts accepted n, the token that follows them): under greedy the
        longest prefix with argmax(target[i]) == drafts[i] and argmax(target[n]); otherwise
        standard speculative sampling (accept with min(1, p/q), resample the residual on
        rejection, bonus token when all are accepted).
        """
        k = drafts.shape[0]
        if self.greedy:
            target = target_logits.argmax(-1)  # [k+1]
            matches = (target[:k] == drafts).long()
            n = int(matches.cumprod(0).sum())
            return n, int(target[n])
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
