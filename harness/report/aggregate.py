"""Per-cell figures with seeded 95% bootstrap intervals, and every cell against its baseline.

Repetitions are collapsed to one value per sample first, so that every sample weighs the same:
  counts     new tokens, forwards, query tokens, vendor nfe, accepted tokens, energy: mean over the
             sample's repetitions (the repetitions are identical under greedy decoding)
  correct    fraction of the sample's repetitions scored correct (0 or 1 under greedy decoding)
  latencies  TTFT, TPOT, E2E, time per forward: median over the sample's repetitions
Intervals are percentile bootstraps over samples (drawn with replacement, `Bootstrap.resamples`
times, from numpy's default_rng(`Bootstrap.seed`), so a report is reproducible). Two cells measured
on the same samples are resampled jointly (paired); otherwise each side is resampled on its own.

Columns that older files lack (concurrency, cell_duration_s, itl_s, gpu_energy_j, hw_price_*, ...)
may be absent (older files) or null: every figure that needs one is NaN then, never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from harness.costs import usd_per_million_tokens
from harness.metrics import with_derived

# A cell of the report: everything that changes what is measured. draft_lora separates
# linear_spec with and without its draft LoRA; acceptance_rule the two exact rules of sampled
# self-speculation; concurrency separates an engine's load levels.
CELL_KEYS = ["sweep", "model", "mode", "block_length", "threshold", "steps", "draft_lora", "temperature",
             "acceptance_rule", "runner", "hardware", "context", "task", "task_protocol", "concurrency"]
# What a baseline cell must share with the cell it is compared with ("same hardware, same sweep").
# task_protocol: rows scored under different protocols are never pooled nor paired
MATCH_KEYS = ["sweep", "hardware", "runner", "context", "task", "task_protocol", "concurrency"]

# Columns other parts of the harness add; absent in older files. name -> fill value.
OPTIONAL_COLUMNS = {
    "concurrency": np.nan, "request_start_s": np.nan, "cell_duration_s": np.nan, "itl_s": None,
    "chunk_tokens": None, "gpu_energy_j": np.nan, "gpu_energy_region": None, "gpu_power_draw_mean_w": np.nan,
    "gpu_sm_clock_mean_mhz": np.nan,
    "gpu_power_limit_w": np.nan, "gpu_throttle_reasons": None, "timing_method": None,
    "hw_memory_bandwidth_gbs": np.nan, "hw_bf16_tflops": np.nan, "hw_price_per_gpu_hour": np.nan,
    "hw_gpus": np.nan, "model_kv_bytes_per_token": np.nan, "env_vllm": None, "env_sglang": None,
    "engine_version": None, "engine_command": None, "engine_accept_length": np.nan,
    "engine_counter_rule": None, "crosscheck_flag": None, "task_protocol": None, "score": np.nan,
    "acceptance_rule": None,
}

# Ratio-of-sums figures: name -> (numerator, denominator) per-sample columns, summed over samples.
RATIO_FIGURES = {
    "tpf": ("new_tokens", "forwards_total"),
    "tpf_excl_prefill": ("new_tokens", "forwards_after_prefill"),
    "vendor_tpf": ("new_tokens", "vendor_nfe"),
    "vendor_tpf_untrimmed": ("tokens_vendor", "vendor_nfe"),
    "accept_length": ("accept_sum", "accept_steps"),
    "query_tokens_per_forward": ("query_tokens_total", "forwards_total"),
    "joules_per_token": ("energy_j", "new_tokens"),
}
TPF_RULES = {
    "tpf": "ours: new tokens / all forwards (prefill included)",
    "tpf_excl_prefill": "ours without prefill: new tokens / (forwards - prefill forwards)",
    "vendor_tpf": "vendor nfe rule of the mode: new tokens (trimmed) / vendor nfe",
    "vendor_tpf_untrimmed": "vendor as printed: tokens the vendor code returns (untrimmed) / vendor nfe",
}
PERCENTILES = (50, 90, 99)
LATENCIES = {"ttft": "ttft_s", "tpot": "tpot_s", "e2e": "e2e_s"}

DEFINITIONS = {
    "cell": "one model x mode (block length, threshold, draft LoRA) x runner x hardware x context x task x concurrency",
    "n": "samples with status ok (repetitions collapsed: counts averaged, latencies by median)",
    "acc": "% of samples scored correct",
    "TPF": "sum(new tokens) / sum(forwards), prefill included, over samples",
    "TPF-np": "sum(new tokens) / sum(forwards excluding prefill)",
    "vTPF": "sum(new tokens) / sum(vendor nfe), the vendor's counting rule for the mode",
    "vTPF-u": "sum(tokens the vendor code would return, untrimmed) / sum(vendor nfe): the vendor's printed TPF",
    "acc_len": "sum(tokens emitted by verify steps) / number of verify steps (speculative modes)",
    "q/fwd": "sum(query tokens) / sum(forwards): what one forward costs",
    "tok/s req": "median over samples of new tokens / E2E (per-request output rate)",
    "tok/s sys": ("system output throughput: engines sum(new tokens) / cell_duration_s; one-at-a-time "
                  "runners sum(new tokens) / sum(E2E)"),
    "ms/fwd": ("median over samples of the mean wall time of the forwards after the prefill (device-synchronised); "
               "without per-forward times, (E2E - TTFT) / (forwards - prefill forwards)"),
    "TTFT/TPOT/E2E pXX": "percentile over samples of the per-sample median; TPOT = (E2E - TTFT) / (new tokens - 1)",
    "ITL pXX": ("vLLM's ITL (itl_s): percentile of inter-chunk gaps pooled over requests (engines; a multi-token "
                "chunk is one gap, not split over its tokens as SGLang's bench_serving does: itl_split_s); "
                "interval from resampling whole requests, resolved to 1/2000 of the pooled distribution"),
    "J/tok": "NVML energy of the timed work / new tokens (each row's share of the cell's energy by its E2E time)",
    "$/1M tok": "price per GPU-hour x GPUs / (tok/s sys x 3600) x 1e6, prices as recorded in the rows",
    "speedup": "median per-request tok/s of the cell / the same for its baseline (ratio of medians)",
    "TPF ratio": "TPF of the cell / TPF of its baseline",
    "sys ratio": "tok/s sys of the cell / tok/s sys of its baseline",
    "dacc": "paired accuracy difference in points on the samples both cells scored (same sample_id)",
    "[lo, hi]": "95% percentile bootstrap interval over samples (seeded); pairs resampled jointly",
}


@dataclass(frozen=True)
class Bootstrap:
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
    """A point value with its bootstrap interval over n samples (NaN interval when n < 2)."""

    value: float
    low: float
    high: float
    n: int

    @staticmethod
    def missing(n: int = 0) -> "Estimate":
        return Estimate(np.nan, np.nan, np.nan, n)

    @property
    def has_interval(self) -> bool:
        return bool(np.isfinite(self.low) and np.isfinite(self.high))

    def scaled(self, factor: float) -> "Estimate":
        return Estimate(self.value * factor, self.low * factor, self.high * factor, self.n)

    def text(self, digits: int = 3) -> str:
        if not np.isfinite(self.value):
            return "-"
        if not self.has_interval:
            return f"{self.value:.{digits}g}"
        return f"{self.value:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


# --- bootstrap ---------------------------------------------------------------------------------
# A resample is represented by how many times it draws each sample (a row of `counts`), so sums
# are matrix products and percentiles come from one sort plus cumulative counts: the same numbers
# as indexing the samples, without materialising every resampled array.

_CHUNK_CELLS = 4_000_000  # resamples x samples per block of counts (32 MB of float64)


@lru_cache(maxsize=4)
def _counts(n: int, resamples: int, seed: int) -> tuple[np.ndarray, ...]:
    """Draw counts of `resamples` bootstraps of n samples, in blocks; the same for the same key."""
    rng = np.random.default_rng(seed)
    per_block = max(1, min(resamples, _CHUNK_CELLS // max(n, 1)))
    blocks, done = [], 0
    while done < resamples:
        k = min(per_block, resamples - done)
        draws = rng.integers(0, n, size=(k, n)) + (np.arange(k) * n)[:, None]
        block = np.bincount(draws.ravel(), minlength=k * n).reshape(k, n).astype(float)
        block.flags.writeable = False
        blocks.append(block)
        done += k
    return tuple(blocks)


class Statistic:
    """A figure of one set of samples: its value, and its value under each resample's counts."""

    def point(self, *arrays: np.ndarray) -> float:
        raise NotImplementedError

    def resampled(self, counts: np.ndarray, *arrays: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _Mean(Statistic):
    def point(self, values):
        return float(values.mean())

    def resampled(self, counts, values):
        return counts @ values / values.size


class _RatioOfSums(Statistic):
    def point(self, numerator, denominator):
        return float(numerator.sum() / denominator.sum())

    def resampled(self, counts, numerator, denominator):
        return (counts @ numerator) / (counts @ denominator)


@dataclass(frozen=True)
class _Percentile(Statistic):
    q: float

    def point(self, values):
        return float(np.percentile(values, self.q))

    def resampled(self, counts, values):
        return resampled_percentiles(counts, values, [self.q])[0]


def resampled_percentiles(counts: np.ndarray, values: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """numpy's linear-rule percentiles of each resample: the values at ranks floor(h) and floor(h) + 1,
    h = (n - 1) q / 100, where the value at rank j is the first (in sorted order) whose cumulative
    count exceeds j. One sort and one cumulative sum serve every q."""
    n = values.size
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    cumulative = np.cumsum(counts[:, order], axis=1)
    out = []
    for q in qs:
        h = (n - 1) * q / 100
        low = int(np.floor(h))
        at_low = (cumulative <= low).sum(axis=1)
        at_high = (cumulative <= min(low + 1, n - 1)).sum(axis=1)
        out.append(ordered[at_low] + (h - low) * (ordered[at_high] - ordered[at_low]))
    return out


def bootstrap_percentiles(values, qs: Sequence[float], boot: Bootstrap) -> dict[float, Estimate]:
    """Several percentiles of one set of samples with their intervals (one pass over the resamples)."""
    (values,) = _clean([values])
    n = values.size
    if n == 0:
        return {q: Estimate.missing() for q in qs}
    points = {q: float(np.percentile(values, q)) for q in qs}
    if n < 2:
        return {q: Estimate(points[q], np.nan, np.nan, n) for q in qs}
    draws = [resampled_percentiles(c, values, qs) for c in _counts(n, boot.resamples, boot.seed)]
    return {q: Estimate(points[q], *_interval(np.concatenate([d[k] for d in draws]), boot.level), n)
            for k, q in enumerate(qs)}


mean = _Mean()
ratio_of_sums = _RatioOfSums()
median = _Percentile(50)


def percentile(q: float) -> Statistic:
    return _Percentile(q)


def divide(a, b):
    return a / b


def _interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return np.nan, np.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def _clean(arrays: Sequence) -> list[np.ndarray]:
    """Float arrays with every position where any array is NaN dropped (aligned)."""
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    keep = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        keep &= ~np.isnan(a)
    return [a[keep] for a in arrays]


def bootstrap(stat: Statistic, arrays: Sequence, boot: Bootstrap) -> Estimate:
    """`stat` of the samples with its percentile bootstrap interval (samples with a NaN dropped)."""
    arrays = _clean(arrays)
    n = len(arrays[0])
    if n == 0:
        return Estimate.missing()
    with np.errstate(divide="ignore", invalid="ignore"):
        value = stat.point(*arrays)
        if n < 2:
            return Estimate(value, np.nan, np.nan, n)
        draws = np.concatenate([stat.resampled(c, *arrays) for c in _counts(n, boot.resamples, boot.seed)])
    return Estimate(value, *_interval(draws, boot.level), n)


def bootstrap_compare(stat_a: Statistic, arrays_a: Sequence, stat_b: Statistic, arrays_b: Sequence,
                      combine: Callable[[np.ndarray, np.ndarray], np.ndarray], boot: Bootstrap,
                      paired: bool) -> Estimate:
    """combine(stat_a(a), stat_b(b)), e.g. a ratio of two cells' figures, with a bootstrap interval.

    paired: a and b are aligned on the same samples and resampled with the same counts;
    otherwise each side is resampled on its own (b with the next seed).
    """
    if paired:
        both = _clean([*arrays_a, *arrays_b])
        arrays_a, arrays_b = both[: len(arrays_a)], both[len(arrays_a):]
    else:
        arrays_a, arrays_b = _clean(arrays_a), _clean(arrays_b)
    n_a, n_b = len(arrays_a[0]), len(arrays_b[0])
    n = min(n_a, n_b)
    if n == 0:
        return Estimate.missing()
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(combine(stat_a.point(*arrays_a), stat_b.point(*arrays_b)))
        if n < 2:
            return Estimate(value, np.nan, np.nan, n)
        counts_a = _counts(n_a, boot.resamples, boot.seed)
        counts_b = counts_a if paired else _counts(n_b, boot.resamples, boot.seed + 1)
        draws = np.concatenate([combine(stat_a.resampled(ca, *arrays_a), stat_b.resampled(cb, *arrays_b))
                                for ca, cb in zip(counts_a, counts_b)])
    return Estimate(value, *_interval(draws, boot.level), n)


# --- records -> per-request rows -> per-sample rows -------------------------------------------


def prepare(records: pd.DataFrame) -> pd.DataFrame:
    """Raw records plus the derived per-row figures the report uses; missing optional columns added."""
    df = records.copy()
    for name, fill in OPTIONAL_COLUMNS.items():
        if name not in df:
            df[name] = fill
    df = with_derived(df)
    # Requests in flight: the engines' `concurrency`; the reference runner decodes batch_size together.
    df["concurrency"] = pd.to_numeric(df["concurrency"], errors="coerce").fillna(
        pd.to_numeric(df["batch_size"], errors="coerce")).fillna(1).astype(float)
    df["forwards_after_prefill"] = (df["forwards_total"] - df["forwards_prefill"]).where(df["forwards_total"] > 0)
    df["tokens_vendor"] = df["tokens_untrimmed"].fillna(df["new_tokens"])
    df["accept_sum"] = df["accept_lengths"].map(lambda v: float(np.sum(v)) if _has_items(v) else np.nan)
    df["accept_steps"] = df["accept_lengths"].map(lambda v: float(len(v)) if _has_items(v) else np.nan)
    df["seconds_per_forward"] = [_seconds_per_forward(r) for r in df[
        ["forward_kinds", "forward_seconds", "e2e_s", "ttft_s", "forwards_after_prefill"]].itertuples(index=False)]
    # the protocol's per-sample score (RULER's partial credit), else the verdict (rows written before `score`)
    verdict = df["correct"].map(lambda v: np.nan if v is None or pd.isna(v) else 100.0 * bool(v))
    df["correct_pct"] = (100.0 * pd.to_numeric(df["score"], errors="coerce")).fillna(verdict)
    df["mode_label"] = [mode_label(r) for r in df[["mode", "draft_lora", "block_length", "threshold", "steps"]].itertuples(index=False)]
    df["cell_id"] = df.groupby(CELL_KEYS, dropna=False, sort=True).ngroup()
    df["energy_j"] = attribute_cell_energy(df)
    return df


def attribute_cell_energy(df: pd.DataFrame) -> pd.Series:
    """Per-row share of the cell's NVML energy, so that J/token is a ratio of sums over samples.

    The telemetry measures one energy delta per cell (`gpu_energy_j`), over the runner's timed work
    only (`gpu_energy_region` = timed). Each ok row gets the share of it that its E2E time is of the
    cell's total (equal shares without times); energy measured over a whole cell, warm-up
    included, is not attributed (J/token stays null rather than overstated).
    """
    energy = pd.Series(np.nan, index=df.index)
    measured = df["gpu_energy_j"].notna() & (df["gpu_energy_region"] == "timed") & (df["status"] == "ok")
    for _, cell in df[measured].groupby("cell_id", sort=False):
        weights = pd.to_numeric(cell["e2e_s"], errors="coerce")
        if weights.isna().any() or weights.sum() <= 0:
            weights = pd.Series(1.0, index=cell.index)
        energy[cell.index] = float(cell["gpu_energy_j"].iloc[0]) * weights / weights.sum()
    return energy


def _has_items(values) -> bool:
    return values is not None and not (isinstance(values, float) and np.isnan(values)) and len(values) > 0


def _seconds_per_forward(row) -> float:
    kinds, seconds, e2e, ttft, after_prefill = row
    if _has_items(seconds) and _has_items(kinds) and len(kinds) == len(seconds):
        decode = [s for k, s in zip(kinds, seconds) if k != "prefill"]
        if decode:
            return float(np.mean(decode))
    if pd.notna(e2e) and pd.notna(ttft) and pd.notna(after_prefill) and after_prefill > 0:
        return float((e2e - ttft) / after_prefill)
    return np.nan


def mode_label(row) -> str:
    """ar / diffusion L=32 thr=0.9 / linear_spec+lora L=32: the decoding configuration in one word."""
    mode, draft_lora, block_length, threshold, steps = row
    label = mode + ("+lora" if isinstance(draft_lora, str) and draft_lora else "")
    if pd.notna(block_length):
        label += f" L={int(block_length)}"
    if pd.notna(threshold):
        label += f" thr={threshold:g}"
    if pd.notna(steps):
        label += f" steps={int(steps)}"
    return label


_SAMPLE_MEANS = ["new_tokens", "tokens_vendor", "forwards_total", "forwards_prefill", "forwards_after_prefill",
                 "vendor_nfe", "query_tokens_total", "accept_sum", "accept_steps", "energy_j", "prompt_tokens",
                 "correct_pct"]
_SAMPLE_MEDIANS = ["ttft_s", "tpot_s", "e2e_s", "seconds_per_forward", "output_tokens_per_s"]


def per_sample(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, sample) of the ok rows: counts averaged, latencies by median over repetitions."""
    ok = rows[rows["status"] == "ok"]
    columns = {c: "mean" for c in _SAMPLE_MEANS} | {c: "median" for c in _SAMPLE_MEDIANS}
    grouped = ok.groupby(["cell_id", "sample_id"], sort=True)
    samples = grouped.agg({c: how for c, how in columns.items()})
    samples["repetitions"] = grouped.size()
    # The first repetition's tokens: enough to say whether two modes produced identical outputs.
    samples["output"] = grouped["output_token_ids"].first().map(lambda v: tuple(v) if _has_items(v) else ())
    # Per-request rate from the per-sample medians: tokens / median E2E.
    samples["output_tokens_per_s"] = samples["new_tokens"] / samples["e2e_s"]
    return samples.reset_index()


# --- per-cell figures --------------------------------------------------------------------------


def cell_frame(prepared: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: its keys, status, counts and descriptive columns (no statistics yet)."""
    rows = []
    for cell_id, group in prepared.groupby("cell_id", sort=True):
        first = group.iloc[0]
        statuses = set(group["status"])
        status = next((s for s in ("failed", "skipped") if s in statuses), "ok" if "ok" in statuses else "error")
        ok = group[group["status"] == "ok"]
        note = ""
        if status in ("failed", "skipped"):
            note = str(group["error"].dropna().iloc[0]) if group["error"].notna().any() else ""
        rows.append({
            "cell_id": cell_id, **{k: first[k] for k in CELL_KEYS}, "mode_label": first["mode_label"],
            "status": status, "note": note, "errors": int((group["status"] == "error").sum()),
            "rows": len(ok), "samples": ok["sample_id"].nunique(),
            "timing_only": bool(group["timing_only"].fillna(False).any()),
            "prompt_tokens": float(ok["prompt_tokens"].median()) if len(ok) else np.nan,
            "crosscheck_flag": _first_text(group["crosscheck_flag"]),
        })
    return pd.DataFrame(rows)


def _first_text(series: pd.Series) -> str:
    values = [str(v) for v in series.dropna() if str(v) not in ("", "False", "0")]
    return values[0] if values else ""


def cell_figures(samples: pd.DataFrame, rows: pd.DataFrame, boot: Bootstrap) -> dict[str, Estimate]:
    """Every figure of one cell. samples: its per-sample rows; rows: its prepared raw rows."""
    ok = rows[rows["status"] == "ok"]
    figures: dict[str, Estimate] = {}
    figures["acc"] = bootstrap(mean, [samples["correct_pct"]], boot)
    for name, (num, den) in RATIO_FIGURES.items():
        figures[name] = bootstrap(ratio_of_sums, [samples[num], samples[den]], boot)
    figures["tok_s_request"] = bootstrap(median, [samples["output_tokens_per_s"]], boot)
    figures["tok_s_system"] = system_throughput(samples, ok, boot)
    figures["ms_per_forward"] = bootstrap(median, [samples["seconds_per_forward"]], boot).scaled(1e3)
    for short, column in LATENCIES.items():
        for q, est in bootstrap_percentiles(samples[column], PERCENTILES, boot).items():
            figures[f"{short}_p{q}"] = est.scaled(1e3)
    for q, est in pooled_percentiles(ok["itl_s"], PERCENTILES, boot).items():
        figures[f"itl_p{q}"] = est.scaled(1e3)
    figures["usd_per_mtok"] = cost_per_million(figures["tok_s_system"], ok)
    return figures


def system_throughput(samples: pd.DataFrame, ok: pd.DataFrame, boot: Bootstrap) -> Estimate:
    """Output tokens/s of the whole cell.

    Engines record the benchmark's duration (cell_duration_s; one per repetition of the run):
    sum(new tokens of every request) / sum(durations). One-at-a-time runners: sum over samples of
    new tokens / sum of E2E. The duration is one measurement, so the interval is the relative
    bootstrap interval of sum(new tokens) / sum(E2E) over samples, applied to the point value.
    """
    proxy = bootstrap(ratio_of_sums, [samples["new_tokens"], samples["e2e_s"]], boot)
    durations = ok.groupby("repetition")["cell_duration_s"].first().dropna()
    if len(durations) and durations.sum() > 0:
        value = float(ok["new_tokens"].sum() / durations.sum())
    else:
        value = proxy.value
    if not np.isfinite(value) or not np.isfinite(proxy.value) or proxy.value == 0:
        return Estimate(value, np.nan, np.nan, proxy.n)
    return Estimate(value, value * proxy.low / proxy.value, value * proxy.high / proxy.value, proxy.n)


ITL_GRID = 2001  # pooled ITL intervals are resolved to 1/2000 of the pooled distribution


def pooled_percentiles(lists: pd.Series, qs: Sequence[float], boot: Bootstrap) -> dict[float, Estimate]:
    """Percentiles of values pooled over requests (ITLs), bootstrapped by resampling whole requests.

    Each request is summarised by how many of its values lie at or below each point of a grid
    (the pooled values' quantiles), so a resample's pooled distribution is counts @ that matrix.
    """
    groups = [np.sort(np.asarray(v, dtype=float)) for v in lists if _has_items(v)]
    if not groups:
        return {q: Estimate.missing() for q in qs}
    pooled = np.concatenate(groups)
    values = {q: float(np.percentile(pooled, q)) for q in qs}
    if len(groups) < 2:
        return {q: Estimate(values[q], np.nan, np.nan, len(groups)) for q in qs}
    grid = np.unique(pooled) if np.unique(pooled).size <= ITL_GRID else np.percentile(pooled, np.linspace(0, 100, ITL_GRID))
    at_or_below = np.stack([np.searchsorted(g, grid, side="right") for g in groups]).astype(float)  # (requests, grid)
    sizes = np.array([g.size for g in groups], dtype=float)
    draws = {q: [] for q in qs}
    for counts in _counts(len(groups), boot.resamples, boot.seed):
        cumulative = counts @ at_or_below  # (resamples, grid): pooled values at or below each grid point
        total = counts @ sizes
        for q in qs:
            # numpy's linear rule on the resample's pooled values (exact when the grid holds every
            # distinct value): ranks floor(h) and floor(h) + 1, h = (N - 1) q / 100.
            h = (total - 1) * q / 100
            low = np.floor(h)
            at_low = np.minimum((cumulative <= low[:, None]).sum(axis=1), grid.size - 1)
            at_high = np.minimum((cumulative <= (low + 1)[:, None]).sum(axis=1), grid.size - 1)
            draws[q].append(grid[at_low] + (h - low) * (grid[at_high] - grid[at_low]))
    return {q: Estimate(values[q], *_interval(np.concatenate(draws[q]), boot.level), len(groups)) for q in qs}


def cost_per_million(throughput: Estimate, ok: pd.DataFrame) -> Estimate:
    price = pd.to_numeric(ok["hw_price_per_gpu_hour"], errors="coerce").dropna()
    if price.empty or not np.isfinite(throughput.value):
        return Estimate.missing(throughput.n)
    gpus = pd.to_numeric(ok["hw_gpus"], errors="coerce").dropna()
    price_value, gpu_count = float(price.iloc[0]), float(gpus.iloc[0]) if len(gpus) else 1.0
    cost = lambda tps: usd_per_million_tokens(price_value, gpu_count, tps)  # noqa: E731
    # Cost falls as throughput rises: the interval's ends swap.
    return Estimate(cost(throughput.value), cost(throughput.high), cost(throughput.low), throughput.n)


# --- the cell table ----------------------------------------------------------------------------


@dataclass
class Aggregates:
    """Everything the report shows, derived from the records once."""

    prepared: pd.DataFrame  # raw rows + derived columns
    samples: pd.DataFrame  # one row per (cell, sample)
    cells: pd.DataFrame  # one row per cell: keys, status, figures (value, _lo, _hi)
    figures: dict[int, dict[str, Estimate]]  # cell_id -> figure name -> Estimate
    comparisons: pd.DataFrame  # one row per cell with a baseline
    baseline_model: str | None
    boot: Bootstrap


def aggregate(records: pd.DataFrame, boot: Bootstrap = Bootstrap(), baseline_model: str | None = "auto") -> Aggregates:
    """All per-cell figures and baseline comparisons.

    baseline_model: the model whose `ar` cells are the baseline ("auto": qwen3-8b when present,
    otherwise each model's own `ar` mode; None: each model's own `ar` mode).
    """
    prepared = prepare(records)
    samples = per_sample(prepared)
    cells = cell_frame(prepared)
    samples_of, rows_of = dict(tuple(samples.groupby("cell_id"))), dict(tuple(prepared.groupby("cell_id")))
    figures = {}
    for cell_id in cells["cell_id"]:
        figures[cell_id] = cell_figures(samples_of.get(cell_id, samples.iloc[:0]), rows_of[cell_id], boot)
    cells = _with_figure_columns(cells, figures)
    if baseline_model == "auto":
        baseline_model = "qwen3-8b" if ((cells["model"] == "qwen3-8b") & (cells["mode"] == "ar") & (cells["status"] != "skipped")).any() else None
    comparisons = compare_with_baseline(cells, samples, boot, baseline_model, prepared)
    return Aggregates(prepared, samples, cells, figures, comparisons, baseline_model, boot)


def _with_figure_columns(cells: pd.DataFrame, figures: dict[int, dict[str, Estimate]]) -> pd.DataFrame:
    columns: dict[str, list] = {}
    for cell_id in cells["cell_id"]:
        for name, est in figures[cell_id].items():
            columns.setdefault(name, []).append(est.value)
            columns.setdefault(f"{name}_lo", []).append(est.low)
            columns.setdefault(f"{name}_hi", []).append(est.high)
    return pd.concat([cells.reset_index(drop=True), pd.DataFrame(columns)], axis=1)


# --- comparisons against a baseline ------------------------------------------------------------


def same_keys(a: pd.Series | dict, b: pd.Series | dict, keys: Sequence[str]) -> bool:
    """Equality on keys where NaN equals NaN (ar has no block length on either side)."""
    for key in keys:
        x, y = a[key], b[key]
        if pd.isna(x) and pd.isna(y):
            continue
        if pd.isna(x) or pd.isna(y) or x != y:
            return False
    return True


def aligned(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """Both cells' per-sample rows on their shared samples (same order); whether the sets were equal."""
    a, b = a.set_index("sample_id"), b.set_index("sample_id")
    shared = a.index.intersection(b.index).sort_values()
    return a.loc[shared].reset_index(), b.loc[shared].reset_index(), set(a.index) == set(b.index)


def compare_figure(figure: str, a: pd.DataFrame, b: pd.DataFrame, boot: Bootstrap,
                   a_rows: pd.DataFrame | None = None, b_rows: pd.DataFrame | None = None) -> Estimate:
    """Cell a against baseline b on one figure. a, b: per-sample rows of each cell.

    ratio figures (TPF rules, ...): figure(a) / figure(b), paired when both have the same samples
    output_tokens_per_s: median per-request rate of a / of b (ratio of medians)
    e2e: median E2E of b / of a (a latency speedup)
    system_throughput: tok/s sys of a / of b (interval: relative interval of the serial proxy)
    accuracy: paired difference in points on the shared samples
    """
    if figure == "accuracy":
        pa, pb, _ = aligned(a, b)
        return bootstrap(mean, [pa["correct_pct"] - pb["correct_pct"]], boot)
    pa, pb, same = aligned(a, b)
    if not same:
        pa, pb = a, b
    if figure in RATIO_FIGURES:
        num, den = RATIO_FIGURES[figure]
        return bootstrap_compare(ratio_of_sums, [pa[num], pa[den]], ratio_of_sums, [pb[num], pb[den]], divide, boot, same)
    if figure == "output_tokens_per_s":
        return bootstrap_compare(median, [pa["output_tokens_per_s"]], median, [pb["output_tokens_per_s"]], divide, boot, same)
    if figure == "e2e":
        return bootstrap_compare(median, [pb["e2e_s"]], median, [pa["e2e_s"]], divide, boot, same)
    if figure == "system_throughput":
        proxy = bootstrap_compare(ratio_of_sums, [pa["new_tokens"], pa["e2e_s"]], ratio_of_sums,
                                  [pb["new_tokens"], pb["e2e_s"]], divide, boot, same)
        if a_rows is None or b_rows is None:
            return proxy
        sa = system_throughput(a, a_rows[a_rows["status"] == "ok"], boot).value
        sb = system_throughput(b, b_rows[b_rows["status"] == "ok"], boot).value
        value = sa / sb if sb else np.nan
        if not (np.isfinite(value) and np.isfinite(proxy.value) and proxy.value):
            return Estimate(value, np.nan, np.nan, proxy.n)
        return Estimate(value, value * proxy.low / proxy.value, value * proxy.high / proxy.value, proxy.n)
    raise ValueError(f"unknown figure {figure!r}; choose one of: {', '.join(COMPARABLE_FIGURES)}")


COMPARABLE_FIGURES = (*RATIO_FIGURES, "output_tokens_per_s", "e2e", "system_throughput", "accuracy")


def pair_counts(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, int]:
    """On the shared samples: pairs, a right & b wrong, a wrong & b right, identical outputs."""
    pa, pb, _ = aligned(a, b)
    both = pa["correct_pct"].notna() & pb["correct_pct"].notna()
    ca, cb = pa.loc[both, "correct_pct"] >= 50, pb.loc[both, "correct_pct"] >= 50
    return {
        "pairs": int(both.sum()),
        "only_cell_right": int((ca & ~cb).sum()),
        "only_baseline_right": int((~ca & cb).sum()),
        "identical_outputs": int((pa["output"] == pb["output"]).sum()),
        "shared_samples": len(pa),
    }


def find_baseline(cell: pd.Series, candidates: pd.DataFrame, keys: Sequence[str]) -> pd.Series | None:
    """The candidate sharing `keys` with the cell; among several, the one sharing most other keys."""
    matches = [c for _, c in candidates.iterrows() if same_keys(cell, c, keys) and c["cell_id"] != cell["cell_id"]]
    if not matches:
        return None
    others = [k for k in CELL_KEYS if k not in keys]
    return max(matches, key=lambda c: sum(same_keys(cell, c, [k]) for k in others))


def compare_with_baseline(cells: pd.DataFrame, samples: pd.DataFrame, boot: Bootstrap,
                          baseline_model: str | None, prepared: pd.DataFrame) -> pd.DataFrame:
    """One row per cell that has a baseline cell (mode ar of `baseline_model`, or of the cell's own
    model when None) sharing MATCH_KEYS: TPF ratio, speedups and the paired accuracy difference."""
    ok = cells[cells["status"].isin(["ok", "error"]) & (cells["samples"] > 0)]
    is_base = (ok["mode"] == "ar") & ((ok["model"] == baseline_model) if baseline_model else True)
    bases = ok[is_base]
    rows = []
    for _, cell in ok.iterrows():
        if baseline_model and cell["model"] == baseline_model and cell["mode"] == "ar":
            continue
        if not baseline_model and cell["mode"] == "ar":
            continue
        pool = bases if baseline_model else bases[bases["model"] == cell["model"]]
        base = find_baseline(cell, pool, MATCH_KEYS)
        if base is None:
            continue
        a = samples[samples["cell_id"] == cell["cell_id"]]
        b = samples[samples["cell_id"] == base["cell_id"]]
        row = {"cell_id": cell["cell_id"], "baseline_cell_id": base["cell_id"],
               **{k: cell[k] for k in CELL_KEYS}, "mode_label": cell["mode_label"],
               "baseline": f"{base['model']} {base['mode_label']}"}
        for name, figure in (("tpf_ratio", "tpf"), ("speedup", "output_tokens_per_s"),
                             ("e2e_speedup", "e2e"), ("dacc", "accuracy")):
            est = compare_figure(figure, a, b, boot)
            row.update({name: est.value, f"{name}_lo": est.low, f"{name}_hi": est.high, f"{name}_n": est.n})
        est = compare_figure("system_throughput", a, b, boot, prepared[prepared["cell_id"] == cell["cell_id"]],
                             prepared[prepared["cell_id"] == base["cell_id"]])
        row.update({"sys_ratio": est.value, "sys_ratio_lo": est.low, "sys_ratio_hi": est.high, "sys_ratio_n": est.n})
        row.update(pair_counts(a, b))
        rows.append(row)
    return pd.DataFrame(rows)
