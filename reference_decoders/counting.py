"""Forward counting by a hook on the model, never by the decoder's own arithmetic.

Every call of the model's ``forward`` is seen by a pre-hook and a post-hook. The decoder only
declares which *phase* it is in (`ForwardCounter.phase`); a forward outside any phase is still
counted, as ``unlabelled``, so a decoder that calls the model behind the counter's back shows up
in the records instead of vanishing from them.

Per forward the log keeps its kind, its query tokens (what it computes), the KV entries it read
from the cache (what it must load besides the weights: the roofline's second term) and, when
timed, its duration. How the duration was taken depends on the device (`timing_method`):

- ``cuda_event``: a CUDA event is recorded on the current stream in the pre-hook and another in
  the post-hook; the elapsed time between them is read once, after one synchronisation when the
  counter closes. No forward waits for the host, so timing does not change what is timed.
- ``perf_counter``: on the CPU the work is synchronous, so host wall time between the hooks is
  the forward's time.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

import torch

from harness.contracts import FORWARD_KINDS
from harness.contracts import FORWARD_TIMING_METHODS as TIMING_METHODS


@dataclass
class ForwardLog:
    """One entry per forward call, in call order (raw values; statistics are derived later)."""

    kinds: list[str] = field(default_factory=list)
    query_tokens: list[int] = field(default_factory=list)  # batch rows x query length
    cache_tokens: list[int] = field(default_factory=list)  # batch rows x cached length read (KV entries)
    seconds: list[float] = field(default_factory=list)  # filled when the counter closes (CUDA) or per forward (CPU)
    timing_method: str | None = None  # one of TIMING_METHODS; None = not timed

    def forwards_by_kind(self) -> dict[str, int]:
        counts = Counter(self.kinds)
        return {k: counts.get(k, 0) for k in FORWARD_KINDS}

    def query_tokens_by_kind(self) -> dict[str, int]:
        totals = Counter()
        for kind, n in zip(self.kinds, self.query_tokens):
            totals[kind] += n
        return {k: totals.get(k, 0) for k in FORWARD_KINDS}


class ForwardCounter:
    """Counts (and times) every forward of ``module``; see the module docstring for the timing."""

    def __init__(self, module: torch.nn.Module, time_forwards: bool = True):
        self.log = ForwardLog()
        self._phase: str | None = None
        self._clock = _clock_for(module) if time_forwards else None
        self.log.timing_method = None if self._clock is None else self._clock.method
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
        rows = int(ids.shape[0]) if ids.dim() > 1 else 1
        self.log.cache_tokens.append(rows * _cached_length(kwargs))
        if self._clock is not None:
            self._clock.start()

    def _after(self, module, args, kwargs, output):
        if self._clock is not None:
            self._clock.stop()

    def close(self) -> None:
        """Remove the hooks and resolve the forward times (one device synchronisation on CUDA)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._clock is not None:
            self.log.seconds = self._clock.seconds()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _cached_length(kwargs: dict) -> int:
    """Positions already in the KV cache the forward attends over (0 without a cache)."""
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    return int(cache.get_seq_length()) if cache is not None and hasattr(cache, "get_seq_length") else 0


class _HostClock:
    method = "perf_counter"

    def __init__(self):
        self._seconds: list[float] = []
        self._started = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self) -> None:
        self._seconds.append(time.perf_counter() - self._started)

    def seconds(self) -> list[float]:
        return list(self._seconds)


class _CudaEventClock:
    method = "cuda_event"

    def __init__(self, device: torch.device):
        self.device = device
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def start(self) -> None:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        self._events.append((event, None))

    def stop(self) -> None:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        start, _ = self._events[-1]
        self._events[-1] = (start, event)

    def seconds(self) -> list[float]:
        torch.cuda.synchronize(self.device)
        # elapsed_time is in ms; a forward that raised has no end event and gets NaN
        return [start.elapsed_time(end) / 1e3 if end is not None else float("nan") for start, end in self._events]


def _clock_for(module: torch.nn.Module):
    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    if device.type == "cuda":
        return _CudaEventClock(device)
    return _HostClock()
