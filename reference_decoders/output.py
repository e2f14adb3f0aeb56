"""What a decode produces: the token stream of one sequence and the result handed to callers.

`TokenStream` is the single place where the output rules live, so every mode obeys the same
ones (the `new_tokens` rule of harness/records.py): tokens are cut after the first EOS and never exceed
``max_new_tokens``. Whatever a mode emitted beyond that is counted in ``tokens_untrimmed``, the
figure the vendor's ``linear_spec_generate`` would have returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from reference_decoders.counting import ForwardLog


class TokenStream:
    def __init__(self, max_new_tokens: int, eos_token_ids: tuple[int, ...], started: float | None = None):
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.max_new_tokens = max_new_tokens
        self.eos_token_ids = frozenset(eos_token_ids)
        self.started = time.perf_counter() if started is None else started
        self.tokens: list[int] = []
        self.tokens_untrimmed = 0
        self.finish_reason: str | None = None
        self.emit_seconds: list[float] = []  # since `started`, when tokens became final
        self.emit_counts: list[int] = []  # len(tokens) at that moment

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def remaining(self) -> int:
        return self.max_new_tokens - len(self.tokens)

    def emit(self, new_tokens: list[int]) -> None:
        """Append tokens that are final; ignores anything after the stream is done."""
        if self.done:
            return
        self.tokens_untrimmed += len(new_tokens)
        for token in new_tokens:
            self.tokens.append(token)
            if token in self.eos_token_ids:
                self.finish_reason = "eos"
                break
            if len(self.tokens) >= self.max_new_tokens:
                self.finish_reason = "length"
                break
        self.emit_seconds.append(time.perf_counter() - self.started)
        self.emit_counts.append(len(self.tokens))


@dataclass
class GenerateResult:
    """One sequence's output and the forwards spent on it (shared by all rows of a batch)."""

    mode: str
    tokens: list[int]
    forwards: dict[str, int]
    query_tokens: dict[str, int]
    accept_lengths: list[int]
    forward_log: ForwardLog
    emit_seconds: list[float]
    emit_counts: list[int]
    finish_reason: str
    tokens_untrimmed: int
    draft_adapter_active: bool | None
    vendor_nfe: int | None
    vendor_nfe_rule: str
    batch_size: int = 1
    params: dict = field(default_factory=dict)
    # how emit_seconds were taken: host perf_counter from request start to the host readback of
    # each final token; "+cuda_sync" = the device was synchronised at request start
    timing_method: str = "perf_counter"
