"""What a decode produces: the token stream of one sequence and the result handed to callers.

`TokenStream` is the single place where the output rules live, so every mode obeys the same
ones (the `new_tokens` rule of harness/records.py): tokens are cut after the first EOS and never exceed
``max_new_tokens``. ``tokens_untrimmed`` counts what the mode emitted up to its first EOS without
the ``max_new_tokens`` cut: the vendor's ``linear_spec_generate`` returns its last accepted run
whole, but, like every vendor function, truncates at the first EOS.
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
        # The last emit() dropped some of its tokens (after an EOS, or beyond max_new_tokens):
        # whether the output ends on the last token a forward produced (reference_decoders.conventions).
        self.final_emit_cut = False
        self.emit_seconds: list[float] = []  # since `started`, when tokens became final
        self.emit_counts: list[int] = []  # len(tokens) at that moment

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def remaining(self) -> int:
        return self.max_new_tokens - len(self.tokens)

    def emit(self, new_tokens: list[int]) -> int:
        """Append tokens that are final; ignores anything after the stream is done.

        Returns how many were kept: an acceptance length counts what survives the EOS and
        max_new_tokens cut (the `accept_lengths` column, harness/records.py)."""
        if self.done:
            return 0
        up_to_eos = next((i + 1 for i, t in enumerate(new_tokens) if t in self.eos_token_ids), len(new_tokens))
        self.tokens_untrimmed += up_to_eos
        kept = min(up_to_eos, self.remaining)
        self.tokens.extend(new_tokens[:kept])
        self.final_emit_cut = kept < len(new_tokens)
        if kept and self.tokens[-1] in self.eos_token_ids:
            self.finish_reason = "eos"
        elif len(self.tokens) >= self.max_new_tokens:
            self.finish_reason = "length"
        self.emit_seconds.append(time.perf_counter() - self.started)
        self.emit_counts.append(len(self.tokens))
        return kept


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
    tokens_untrimmed: int  # what the vendor's function for the mode returns (reference_decoders.conventions)
    draft_adapter_active: bool | None
    vendor_nfe: int | None
    vendor_nfe_rule: str
    # how drafts were verified: greedy | speculative | sample_match (reference_decoders.sampling);
    # None for the modes that verify nothing
    acceptance_rule: str | None = None
    batch_size: int = 1
    params: dict = field(default_factory=dict)
    # how emit_seconds were taken: host perf_counter from request start to the host readback of
    # each final token; "+cuda_sync" = the device was synchronised at request start
    timing_method: str = "perf_counter"
    backend: str = "eager"  # harness.contracts.BACKENDS
    # compiled backend: seconds of the untimed warm-up decode that compiled this decode's shapes
    # just before it (0.0 = all were warm); never part of emit_seconds. None for eager.
    compile_seconds: float | None = None
