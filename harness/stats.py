"""Intervals for the report's figures, from scipy: each method and the rule that picks it.

  proportion (accuracy of a cell)
      Wilson score interval (scipy.stats.binomtest(...).proportion_ci(method="wilson")) over
      samples, each sample scored 0 or 1. It does not collapse at 0% or 100%: 8 of 8 correct gives
      [67.6, 100]. When repetitions of a sample disagree (sampling temperature > 0) a sample's score
      is the fraction of its repetitions scored correct and the interval is the percentile
      bootstrap below.
  paired difference of proportions (accuracy of a cell minus its baseline's, same samples)
      d = (b - c) / n, b = pairs only the cell got right, c = pairs only the baseline got right.
      Interval: [lo(b) - hi(c), hi(b) - lo(c)] with Clopper-Pearson intervals
      (method="exact") of b/n and c/n, each at 1 - alpha/2, so that both hold together with
      probability >= 1 - alpha (Bonferroni). Conservative, and never of zero width: 0 discordant
      pairs in 8 gives +/- 42 points, in 1000 +/- 0.44 points. Beside it, McNemar's exact test
      (scipy.stats.binomtest(b, b + c, 0.5)) of "no difference". Fractional scores (repetitions
      disagree): paired percentile bootstrap of the mean difference.
  everything else (ratios of sums, medians, percentiles, ratios of two cells' figures)
      percentile bootstrap over samples (scipy.stats.bootstrap, method="percentile"), resampling
      whole samples so that every figure of a cell (a ratio's numerator and denominator, two
      cells compared on the same samples) is resampled together; seeded
      (numpy.random.default_rng(seed)), so the same records give the same report.

An interval is *degenerate* when it has zero width or could not be computed (fewer than two
samples, every resample equal): it says nothing about the spread, and a claim judged on it has
insufficient evidence (harness/report/claims.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats


@dataclass(frozen=True)
class Bootstrap:
    """How intervals are computed: resamples and seed of the bootstrap, and the confidence level."""

    resamples: int = 2000
    seed: int = 0
    level: float = 0.95

    def __post_init__(self):
        if self.resamples < 100:
            raise ValueError(f"bootstrap resamples: must be >= 100, got {self.resamples}")
        if not 0.5 <= self.level < 1:
            raise ValueError(f"bootstrap level: must be in [0.5, 1), got {self.level}")


@dataclass(frozen=True)
class Estimate:
    """A point value with its interval over n samples, and the method that gave the interval."""

    value: float
    low: float
    high: float
    n: int
    method: str = "bootstrap"
    p_value: float = np.nan  # a test's p-value, where the method has one (McNemar)

    @staticmethod
    def missing(n: int = 0) -> "Estimate":
        return Estimate(np.nan, np.nan, np.nan, n, "none")

    @property
    def has_interval(self) -> bool:
        return bool(np.isfinite(self.low) and np.isfinite(self.high))

    @property
    def degenerate(self) -> bool:
        """No interval, or one of zero width: no information about the spread."""
        return not self.has_interval or self.high - self.low <= 1e-12 * max(1.0, abs(self.value))

    def scaled(self, factor: float) -> "Estimate":
        low, high = sorted((self.low * factor, self.high * factor)) if self.has_interval else (np.nan, np.nan)
        return Estimate(self.value * factor, low, high, self.n, self.method, self.p_value)

    def text(self, digits: int = 3) -> str:
        if not np.isfinite(self.value):
            return "-"
        if not self.has_interval:
            return f"{self.value:.{digits}g}"
        return f"{self.value:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


# --- proportions ---------------------------------------------------------------------------------


def is_binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def proportion(scores: np.ndarray, boot: Bootstrap | None) -> Estimate:
    """Accuracy in % from per-sample scores in [0, 1] (NaN = unscored, dropped)."""
    scores = np.asarray(scores, dtype=float)
    scores = scores[np.isfinite(scores)]
    n = scores.size
    if n == 0:
        return Estimate.missing()
    if not is_binary(scores):
        (est,) = bootstrap_statistics({"p": (lambda s: np.mean(s, axis=-1), ("s",))}, {"s": scores}, boot).values()
        return est.scaled(100.0)
    k = int(scores.sum())
    level = boot.level if boot is not None else Bootstrap.level
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return Estimate(100.0 * k / n, 100.0 * ci.low, 100.0 * ci.high, n, "wilson")


def paired_difference(a: np.ndarray, b: np.ndarray, boot: Bootstrap | None) -> Estimate:
    """Accuracy of a minus accuracy of b in points, on aligned samples scored in [0, 1]."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = a.size
    if n == 0:
        return Estimate.missing()
    if not (is_binary(a) and is_binary(b)):
        (est,) = bootstrap_statistics({"d": (lambda x, y: np.mean(x - y, axis=-1), ("a", "b"))},
                                      {"a": a, "b": b}, boot).values()
        return est.scaled(100.0)
    only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    half = 1 - (1 - (boot.level if boot is not None else Bootstrap.level)) / 2
    ca = scipy.stats.binomtest(only_a, n).proportion_ci(confidence_level=half, method="exact")
    cb = scipy.stats.binomtest(only_b, n).proportion_ci(confidence_level=half, method="exact")
    discordant = only_a + only_b
    p_value = scipy.stats.binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    return Estimate(100.0 * (only_a - only_b) / n, 100.0 * (ca.low - cb.high), 100.0 * (ca.high - cb.low), n,
                    "clopper-pearson envelope + mcnemar", float(p_value))


# --- the bootstrap -------------------------------------------------------------------------------

# A statistic: a function of the resampled columns it names, vectorised over the last axis.
Statistic = tuple[Callable[..., np.ndarray], tuple[str, ...]]


def ratio_of_sums(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(numerator, axis=-1) / np.sum(denominator, axis=-1)


class Percentile:
    """numpy's linear-rule q-th percentile (times `scale`) over the last axis. The bootstrap sorts
    each resampled column once and reads every percentile of it from the sorted values."""

    def __init__(self, q: float, scale: float = 1.0):
        self.q, self.scale = q, scale

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self.from_sorted(np.sort(values, axis=-1))

    def from_sorted(self, ordered: np.ndarray) -> np.ndarray:
        n = ordered.shape[-1]
        h = (n - 1) * self.q / 100
        low = int(np.floor(h))
        high = min(low + 1, n - 1)
        return (ordered[..., low] + (h - low) * (ordered[..., high] - ordered[..., low])) * self.scale


def percentile(q: float, scale: float = 1.0) -> Percentile:
    return Percentile(q, scale)


median = Percentile(50)


def bootstrap_statistics(statistics: dict[str, Statistic], columns: dict[str, np.ndarray],
                         boot: Bootstrap | None) -> dict[str, Estimate]:
    """Every statistic of one set of samples with its percentile bootstrap interval (boot None:
    point values only).

    columns: aligned per-sample arrays. Each statistic uses the samples where all its columns are
    finite; statistics with the same such samples share one scipy.stats.bootstrap call (the same
    resamples), so a ratio and its parts, or two cells compared on the same samples, move together.
    """
    out: dict[str, Estimate] = {}
    groups: dict[bytes, list[str]] = {}
    masks: dict[bytes, np.ndarray] = {}
    for name, (_, needs) in statistics.items():
        keep = np.ones(len(next(iter(columns.values()))), dtype=bool)
        for column in needs:
            keep &= np.isfinite(np.asarray(columns[column], dtype=float))
        groups.setdefault(keep.tobytes(), []).append(name)
        masks[keep.tobytes()] = keep
    for key, names in groups.items():
        keep = masks[key]
        used = sorted({c for name in names for c in statistics[name][1]})
        data = {c: np.asarray(columns[c], dtype=float)[keep] for c in used}
        out.update(_bootstrap_group({name: statistics[name] for name in names}, data, int(keep.sum()), boot))
    return {name: out[name] for name in statistics}


def _bootstrap_group(statistics: dict[str, Statistic], data: dict[str, np.ndarray], n: int,
                     boot: Bootstrap | None) -> dict[str, Estimate]:
    if n == 0:
        return {name: Estimate.missing() for name in statistics}

    def evaluate(index: np.ndarray) -> np.ndarray:
        picked = {c: values[index] for c, values in data.items()}
        ordered: dict[str, np.ndarray] = {}
        out = []
        with np.errstate(divide="ignore", invalid="ignore"):
            for fn, needs in statistics.values():
                if isinstance(fn, Percentile):
                    (column,) = needs
                    if column not in ordered:
                        ordered[column] = np.sort(picked[column], axis=-1)
                    out.append(fn.from_sorted(ordered[column]))
                else:
                    out.append(np.asarray(fn(*(picked[c] for c in needs)), dtype=float))
        return np.stack(out)

    points = evaluate(np.arange(n))
    if n < 2 or boot is None:
        return {name: Estimate(float(v), np.nan, np.nan, n) for name, v in zip(statistics, points)}
    with np.errstate(divide="ignore", invalid="ignore"):  # a resample's ratio may be inf / nan: dropped from its spread
        result = scipy.stats.bootstrap((np.arange(n),), lambda index, axis=-1: evaluate(index), vectorized=True,
                                       n_resamples=boot.resamples, confidence_level=boot.level, method="percentile",
                                       rng=np.random.default_rng(boot.seed))
    lows, highs = np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)
    return {name: Estimate(float(v), float(lo), float(hi), n) for name, v, lo, hi in zip(statistics, points, lows, highs)}


def bootstrap_indices(statistic: Callable[[np.ndarray], np.ndarray], n: int, boot: Bootstrap) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval(s) of `statistic(index)` over n resampled units (e.g. whole
    requests), where `index` is an array of unit indices, shape (..., n)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = scipy.stats.bootstrap((np.arange(n),), lambda index, axis=-1: statistic(index), vectorized=True,
                                       n_resamples=boot.resamples, confidence_level=boot.level, method="percentile",
                                       rng=np.random.default_rng(boot.seed))
    return np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)


def index_counts(index: np.ndarray, n: int) -> np.ndarray:
    """How often each of n units appears in each resample: index (..., n) -> counts (..., n)."""
    index = np.atleast_2d(index)
    rows = index.shape[0]
    flat = (index + (np.arange(rows) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(float)


def pooled_percentiles(groups: Sequence[np.ndarray], qs: Sequence[float], boot: Bootstrap | None,
                       grid_points: int = 2001) -> dict[float, Estimate]:
    """Percentiles of values pooled over units (inter-token gaps of requests), with intervals from
    resampling whole units. A unit is summarised by how many of its values lie at or below each
    point of a grid (every distinct pooled value, or `grid_points` quantiles of them), so a
    resample's pooled distribution is its unit counts times that matrix."""
    groups = [np.sort(np.asarray(g, dtype=float)) for g in groups if len(g)]
    if not groups:
        return {q: Estimate.missing() for q in qs}
    pooled = np.concatenate(groups)
    values = {q: float(np.percentile(pooled, q)) for q in qs}
    if len(groups) < 2 or boot is None:
        return {q: Estimate(values[q], np.nan, np.nan, len(groups)) for q in qs}
    distinct = np.unique(pooled)
    grid = distinct if distinct.size <= grid_points else np.percentile(pooled, np.linspace(0, 100, grid_points))
    at_or_below = np.stack([np.searchsorted(g, grid, side="right") for g in groups]).astype(float)  # (units, grid)
    sizes = np.array([g.size for g in groups], dtype=float)

    def statistic(index):
        counts = index_counts(index, len(groups))
        cumulative = counts @ at_or_below  # (resamples, grid): pooled values at or below each grid point
        total = counts @ sizes
        out = []
        for q in qs:  # numpy's linear rule: ranks floor(h) and floor(h) + 1, h = (N - 1) q / 100
            h = (total - 1) * q / 100
            low = np.floor(h)
            at_low = np.minimum((cumulative <= low[:, None]).sum(axis=1), grid.size - 1)
            at_high = np.minimum((cumulative <= (low + 1)[:, None]).sum(axis=1), grid.size - 1)
            out.append(grid[at_low] + (h - low) * (grid[at_high] - grid[at_low]))
        return np.stack(out)

    lows, highs = bootstrap_indices(statistic, len(groups), boot)
    return {q: Estimate(values[q], float(lo), float(hi), len(groups)) for q, lo, hi in zip(qs, lows, highs)}
