"""Forward counting by a hook on the model, never by the decoder's own arithmetic.

Every call of the model's ``forward`` is seen by a pre-hook and a post-hook. The decoder only
declares which *phase* it is in (`ForwardCounter.phase`); a forward outside any phase is still
counted, as ``unlabelled``, so a decoder that calls the model behind the counter's back shows up
in the records instead of vanishing from them.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

import torch

FORWARD_KINDS = ("prefill", "decode", "denoise", "commit", "draft", "verify", "quadratic", "unlabelled")


@dataclass
class ForwardLog:
    """One entry per forward call, in call order (raw values; statistics are derived later)."""

    kinds: list[str] = field(default_factory=list)
    query_tokens: list[int] = field(default_factory=list)  # batch rows x query length
    seconds: list[float] = field(default_factory=list)

    def forwards_by_kind(self) -> dict[str, int]:
        counts = Counter(self.kinds)
        return {k: counts.get(k, 0) for k in FORWARD_KINDS}

    def query_tokens_by_kind(self) -> dict[str, int]:
        totals = Counter()
        for kind, n in zip(self.kinds, self.query_tokens):
            totals[kind] += n
        return {k: totals.get(k, 0) for k in FORWARD_KINDS}


class ForwardCounter:
    """Counts (and times) every forward of ``module``.

    Time per forward is wall time between the pre- and post-hook. On CUDA both hooks synchronise
    first, so the interval covers the kernels of that forward and nothing else; this costs a sync
    per forward, which the decoders pay anyway when they read the argmax back to the host.
    """

    def __init__(self, module: torch.nn.Module, time_forwards: bool = True):
        self.log = ForwardLog()
        self._phase: str | None = None
        self._time = time_forwards
        self._started: float | None = None
        self._sync = _synchronizer(module)
        self._handles = [
            module.register_forward_pre_hook(self._before, with_kwargs=True),
            module.register_forward_hook(self._after, with_kwargs=True),
        ]

    @contextlib.contextmanager
    def phase(self, kind: str):
        if kind not in FORWARD_KINDS:
            raise ValueError(f"unknown forward kind {kind!r}; valid: {FORWARD_KINDS}")
        previous, self._phase = self._phase, kind
        try:
            yield
        finally:
            self._phase = previous

    def _before(self, module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is None and args:
            ids = args[0]
        if ids is None:
            ids = kwargs["inputs_embeds"][..., 0]
        self.log.kinds.append(self._phase or "unlabelled")
        self.log.query_tokens.append(int(ids.numel()))
        if self._time:
            self._sync()
            self._started = time.perf_counter()

    def _after(self, module, args, kwargs, output):
        if self._time:
            self._sync()
            self.log.seconds.append(time.perf_counter() - self._started)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _synchronizer(module: torch.nn.Module):
    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None
