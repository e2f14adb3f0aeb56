"""Engine counters from a Prometheus `/metrics` page: parse, snapshot, difference.

A counter only ever grows while the server lives, so (after - before) covers exactly the
requests sent in between, whatever ran earlier. Counters of several engines (data parallel)
carry an `engine` label and are summed.
"""

from __future__ import annotations

import math
import re
import urllib.request
from dataclasses import dataclass

# name{label="value",...} value [timestamp]
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition; comments and malformed lines are skipped."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, label_text, value_text = match.groups()
        try:
            value = float(value_text)
        except ValueError:
            continue
        labels = tuple(sorted(_LABEL.findall(label_text or "")))
        samples.append(Sample(name, labels, value))
    return samples


def fetch_metrics(base_url: str, timeout: float = 30.0) -> list[Sample]:
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/metrics", timeout=timeout) as response:
        return parse_metrics(response.read().decode("utf-8", errors="replace"))


class Snapshot:
    """All samples of one scrape, queried by metric name."""

    def __init__(self, samples: list[Sample]):
        self.samples = samples

    def names(self) -> set[str]:
        return {s.name for s in self.samples}

    def total(self, name: str) -> float | None:
        """Sum over label sets (engines); None when the metric is absent."""
        values = [s.value for s in self.samples if s.name == name]
        return math.fsum(values) if values else None

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """Sum per value of one label (e.g. per draft `position`), over the other labels."""
        out: dict[str, float] = {}
        for s in self.samples:
            if s.name == name:
                key = dict(s.labels).get(label)
                if key is not None:
                    out[key] = out.get(key, 0.0) + s.value
        return out


def counter_delta(before: Snapshot, after: Snapshot, name: str) -> int | None:
    """after - before for a counter; None when absent from both scrapes."""
    a, b = after.total(name), before.total(name)
    if a is None and b is None:
        return None
    delta = (a or 0.0) - (b or 0.0)
    if delta < 0:
        raise ValueError(f"counter {name} went down ({b} -> {a}): the server restarted during the cell")
    return int(round(delta))


def per_label_delta(before: Snapshot, after: Snapshot, name: str, label: str) -> list[int] | None:
    """after - before per integer label value (0, 1, ...), as a list; None when absent."""
    a, b = after.by_label(name, label), before.by_label(name, label)
    if not a and not b:
        return None
    keys = sorted({*a, *b}, key=lambda k: int(k) if k.lstrip("-").isdigit() else k)
    return [int(round(a.get(k, 0.0) - b.get(k, 0.0))) for k in keys]
