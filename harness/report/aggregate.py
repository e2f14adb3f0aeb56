"""The per-cell aggregate: every figure of every cell, and every cell against its baseline.

One derivation feeds every view: `aggregate(records)` -> `Aggregates`, whose `cells` table the
end-of-sweep summary (harness/summary.py), summary.csv / cells.csv, the report and the notebook
show. Per-row figures come from `harness.figures.derive`; intervals from `harness.stats`.

  cell        the rows of one `cell_key` (the timing runner: one per batch size; harness/figures.py).
              Its description (model, mode, task, generation limit, seed, data, ...) is read from
              its rows: the columns of `harness.records.CELL_IDENTITY`.
  samples     repetitions collapse per sample first, so every sample weighs the same: counts (new
              tokens, forwards, vendor nfe, accepted tokens, GPU seconds, cost, energy, floors) are
              averaged over the sample's repetitions (identical under greedy decoding), correctness
              becomes the fraction of repetitions scored correct, latencies take their median.
  ratios      ratios of sums over samples: TPF = sum(new tokens) / sum(forwards), and likewise TPF
              without the prefill, under the vendor's nfe rule, acceptance length, query tokens per
              forward, system throughput = sum(new tokens) / sum(GPU seconds), $ per 1M tokens =
              sum(cost) / sum(new tokens) x 1e6, J per token, roofline ratio.
  baseline    each cell against the `ar` cell of the baseline model that agrees with it on every
              column of `harness.records.PAIRING_KEYS` (only the model and its decoding may differ).
Columns that older files lack are null: every figure that needs one is NaN, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.crosscheck import crosscheck_table
from harness.figures import derive
from harness.records import BASELINE_MAY_DIFFER, CELL_IDENTITY, PAIRING_KEYS
from harness.stats import (Bootstrap, Estimate, bootstrap_statistics, median, paired_difference, percentile,
                           pooled_percentiles, proportion, ratio_of_sums)

__all__ = ["Aggregates", "Bootstrap", "Estimate", "aggregate"]

# Ratio-of-sums figures: name -> (numerator, denominator, scale) over per-sample columns.
RATIO_FIGURES = {
    "tpf": ("new_tokens", "forwards_total", 1.0),
    "tpf_excl_prefill": ("new_tokens", "forwards_after_prefill", 1.0),
    "vendor_tpf": ("new_tokens", "vendor_nfe", 1.0),
    "vendor_tpf_untrimmed": ("tokens_vendor", "vendor_nfe", 1.0),
    "accept_length": ("accept_sum", "accept_steps", 1.0),
    "query_tokens_per_forward": ("query_tokens_total", "forwards_total", 1.0),
    "tok_s_system": ("new_tokens", "gpu_seconds", 1.0),
    "usd_per_mtok": ("usd", "new_tokens", 1e6),
    "joules_per_token": ("energy_j", "new_tokens", 1.0),
    "joules_per_forward": ("energy_j", "forwards_total", 1.0),
    "roofline_ratio": ("forward_time_s", "roofline_floor_s", 1.0),
}
TPF_RULES = {
    "tpf": "ours: new tokens / all forwards (prefill included)",
    "tpf_excl_prefill": "ours without prefill: new tokens / (forwards - prefill forwards)",
    "vendor_tpf": "vendor nfe rule of the mode: new tokens (trimmed) / vendor nfe",
    "vendor_tpf_untrimmed": "vendor as printed: tokens the vendor code returns (untrimmed) / vendor nfe",
}
PERCENTILES = (50, 90, 99)
# Times shown with their roofline floor: name -> (per-sample time, per-sample floor), seconds.
TIMES = {"ms_per_forward": ("seconds_per_forward", "forward_floor_s"), "ttft": ("ttft_s", "prefill_floor_s"),
         "tpot": ("tpot_s", "tpot_floor_s"), "e2e": ("e2e_s", "roofline_floor_s")}

DEFINITIONS = {
    "cell": "the rows of one cell_key (one resolved config); the timing runner: one per batch size",
    "n": "samples with status ok (repetitions collapsed: counts averaged, latencies by median)",
    "acc": "% of samples scored correct; interval: Wilson score (harness/stats.py)",
    "TPF": "sum(new tokens) / sum(forwards), prefill included, over samples",
    "TPF-np": "sum(new tokens) / sum(forwards excluding prefill)",
    "vTPF": "sum(new tokens) / sum(vendor nfe), the vendor's counting rule for the mode",
    "vTPF-u": "sum(tokens the vendor code would return, untrimmed) / sum(vendor nfe): the vendor's printed TPF",
    "acc_len": "sum(tokens emitted by verify steps) / number of verify steps (speculative modes)",
    "q/fwd": "sum(query tokens) / sum(forwards): what one forward costs",
    "tok/s req": "median over samples of new tokens / E2E (per-request output rate)",
    "tok/s sys": ("system output throughput: sum(new tokens) / sum(GPU seconds the rows hold); a row of a batch of "
                  "B holds 1/B of the GPUs for its E2E, an engine row its share of the measured cell duration"),
    "ms/fwd": ("median over samples of the mean wall time of the forwards after the prefill (device-synchronised); "
               "without per-forward times, (E2E - TTFT) / (forwards - prefill forwards)"),
    "TTFT/TPOT/E2E pXX": "percentile over samples of the per-sample median; TPOT = (E2E - TTFT) / (new tokens - 1)",
    "floor": ("roofline floor of the same time (median over samples): forwards' max(memory floor, compute floor); "
              "ms/fwd: mean over forwards after the prefill; TTFT: the prefill; E2E: all forwards"),
    "x floor": "median over samples of measured time / its floor (1 = at the hardware's limit)",
    "ITL pXX": ("vLLM's ITL (itl_s): percentile of inter-chunk gaps pooled over requests (engines; a multi-token "
                "chunk is one gap, not split over its tokens as SGLang's bench_serving does: itl_split_s); "
                "interval from resampling whole requests, resolved to 1/2000 of the pooled distribution"),
    "J/tok": "NVML energy of the timed work / new tokens (each row's share of the cell's energy by its E2E time)",
    "$/1M tok": "sum(price per GPU-hour x GPUs x GPU seconds / 3600) / sum(new tokens) x 1e6 = price x GPUs / (tok/s sys x 3600) x 1e6",
    "speedup": "median per-request tok/s of the cell / the same for its baseline (ratio of medians)",
    "TPF ratio": "TPF of the cell / TPF of its baseline",
    "sys ratio": "tok/s sys of the cell / tok/s sys of its baseline",
    "dacc": ("paired accuracy difference in points on the samples both cells scored (same sample_id); interval: "
             "Clopper-Pearson envelope of the discordant pairs, with McNemar's exact p-value (harness/stats.py)"),
    "[lo, hi]": "95% interval; percentile bootstrap over samples (seeded) unless stated; pairs resampled jointly",
}

# Per-sample collapse of the ok rows: mean over repetitions for counts, median for latencies.
_SAMPLE_MEANS = ["new_tokens", "tokens_vendor", "forwards_total", "forwards_prefill", "forwards_after_prefill",
                 "vendor_nfe", "query_tokens_total", "accept_sum", "accept_steps", "energy_j", "prompt_tokens",
                 "correct_pct", "gpu_seconds", "usd", "forward_time_s", "roofline_floor_s", "prefill_floor_s",
                 "forward_floor_s", "tpot_floor_s"]
_SAMPLE_MEDIANS = ["ttft_s", "tpot_s", "e2e_s", "seconds_per_forward", "output_tokens_per_s"]


@dataclass
class Aggregates:
    """Everything the report shows, derived from the records once."""

    prepared: pd.DataFrame  # raw rows + harness.figures columns
    samples: pd.DataFrame  # one row per (cell, sample)
    cells: pd.DataFrame  # one row per cell: description, status, figures (value, _lo, _hi)
    figures: dict[str, dict[str, Estimate]]  # cell_id -> figure name -> Estimate
    comparisons: pd.DataFrame  # one row per cell with a baseline
    crosscheck: pd.DataFrame  # engine cells against the reference (harness.crosscheck)
    baseline_model: str | None
    boot: Bootstrap | None  # None: point values only, no intervals


def aggregate(records: pd.DataFrame, boot: Bootstrap | None = Bootstrap(), baseline_model: str | None = "auto") -> Aggregates:
    """All per-cell figures and baseline comparisons.

    boot: how intervals are computed (None: point values only, as the end-of-sweep table prints).
    baseline_model: the model whose `ar` cells are the baseline ("auto": qwen3-8b when present,
    otherwise each model's own `ar` mode; None: each model's own `ar` mode).
    """
    prepared = derive(records)
    samples = per_sample(prepared)
    cells = describe_cells(prepared)
    by_cell = {cell_id: group for cell_id, group in samples.groupby("cell_id", sort=False)}
    itls = {cell_id: group["itl_s"] for cell_id, group in prepared[prepared["status"] == "ok"].groupby("cell_id", sort=False)}
    figures = {cell_id: cell_figures(by_cell.get(cell_id, samples.iloc[:0]), itls.get(cell_id), boot)
               for cell_id in cells["cell_id"]}
    crosscheck = crosscheck_table(prepared)
    flags = dict(zip(crosscheck["cell_key"], crosscheck["flag"]))
    cells["crosscheck_flag"] = [flags.get(k, "") for k in cells["cell_key"]]
    cells["distinct"] = distinct_text(cells) if len(cells) else []
    cells = with_figure_columns(cells, figures)
    if baseline_model == "auto":
        has_qwen = ((cells["model"] == "qwen3-8b") & (cells["mode"] == "ar") & (cells["samples"] > 0)).any()
        baseline_model = "qwen3-8b" if has_qwen else None
    comparisons = compare_with_baseline(cells, by_cell, boot, baseline_model)
    return Aggregates(prepared, samples, cells, figures, comparisons, crosscheck, baseline_model, boot)


# --- rows -> samples -> cells ----------------------------------------------------------------------


def per_sample(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, sample) of the ok rows: counts averaged, latencies by median over repetitions."""
    ok = rows[rows["status"] == "ok"]
    numeric = ok[["cell_id", "sample_id", *_SAMPLE_MEANS, *_SAMPLE_MEDIANS]].copy()
    for column in (*_SAMPLE_MEANS, *_SAMPLE_MEDIANS):
        numeric[column] = pd.to_numeric(numeric[column], errors="coerce").astype(float)
    grouped = numeric.groupby(["cell_id", "sample_id"], sort=True)
    samples = grouped[_SAMPLE_MEANS].mean().join(grouped[_SAMPLE_MEDIANS].median())
    samples["repetitions"] = grouped.size()
    # The first repetition's tokens: enough to say whether two modes produced identical outputs.
    first = ok.groupby(["cell_id", "sample_id"], sort=True)["output_token_ids"].first()
    samples["output"] = first.map(lambda v: tuple(v) if v is not None and not isinstance(v, float) and len(v) else ())
    # A request's rate from its median E2E; each time over its floor, per sample.
    samples["output_tokens_per_s"] = samples["new_tokens"] / samples["e2e_s"].where(samples["e2e_s"] > 0)
    for name, (time, floor) in TIMES.items():
        samples[f"{name}_x_floor"] = samples[time] / samples[floor].where(samples[floor] > 0)
    return samples.reset_index()


def describe_cells(prepared: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: its description from its rows, status, counts (no statistics yet)."""
    if prepared.empty:
        return pd.DataFrame(columns=["cell_id", "cell_key", *CELL_IDENTITY, "mode_label", "status", "note", "errors",
                                     "rows", "samples", "prompt_tokens"])
    described = [c for c in CELL_IDENTITY if c in prepared]
    grouped = prepared.groupby("cell_id", sort=True)
    cells = grouped[["cell_key", "mode_label", *[c for c in described if c not in ("batch_size", "concurrency")]]].first()
    cells["batch_size"] = grouped["batch_size"].max()
    cells["concurrency"] = grouped["load"].first()
    statuses = prepared.groupby(["cell_id", "status"]).size().unstack(fill_value=0)
    for status in ("ok", "error", "skipped", "failed"):
        if status not in statuses:
            statuses[status] = 0
    statuses = statuses.reindex(cells.index, fill_value=0)
    cells["status"] = np.select([statuses["failed"] > 0, statuses["skipped"] > 0, statuses["ok"] > 0],
                                ["failed", "skipped", "ok"], "error")
    errors = prepared[prepared["status"].isin(["skipped", "failed"])].groupby("cell_id")["error"].first()
    cells["note"] = [str(errors.get(i, "") or "") if s in ("skipped", "failed") else ""
                     for i, s in zip(cells.index, cells["status"])]
    cells["errors"] = statuses["error"]
    ok = prepared[prepared["status"] == "ok"]
    cells["rows"] = ok.groupby("cell_id").size().reindex(cells.index, fill_value=0)
    cells["samples"] = ok.groupby("cell_id")["sample_id"].nunique().reindex(cells.index, fill_value=0)
    cells["prompt_tokens"] = pd.to_numeric(ok["prompt_tokens"], errors="coerce").groupby(ok["cell_id"]).median().reindex(cells.index)
    cells["timing_only"] = prepared.groupby("cell_id")["timing_only"].agg(lambda s: bool(s.fillna(False).astype(bool).any()))
    return cells.reset_index()


# Description columns every view shows anyway (or that follow from those it shows).
SHOWN_ELSEWHERE = {"model", "mode", "block_length", "threshold", "steps", "draft_lora", "runner", "concurrency", "task",
                   "task_protocol",
                   "context", "context_tokens", "sweep", "model_parameters", "model_weight_bytes", "model_family",
                   "draft_adapter_active", "hardware", "hardware_detected", "model_source"}


def varying_columns(cells: pd.DataFrame) -> list[str]:
    """The other description columns on which these cells differ (seed, generation limit, batch size,
    data, ...): shown beside the usual ones, so that two cells never read as one."""
    return [c for c in CELL_IDENTITY if c in cells and c not in SHOWN_ELSEWHERE
            and cells[c].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)).nunique() > 1]


def distinct_text(cells: pd.DataFrame) -> list[str]:
    columns = varying_columns(cells)
    return [" ".join(f"{c}={plain_text(row[c])}" for c in columns) for _, row in cells.iterrows()]


def plain_text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell_statistics() -> dict:
    """Every bootstrapped figure of a cell: name -> (function of per-sample columns, their names)."""
    stats = {name: ((lambda n, d, s=scale: ratio_of_sums(n, d) * s), (num, den))
             for name, (num, den, scale) in RATIO_FIGURES.items()}
    stats["tok_s_request"] = (median, ("output_tokens_per_s",))
    for name, (time, floor) in TIMES.items():
        if name == "ms_per_forward":
            stats[name] = (percentile(50, 1e3), (time,))
        else:
            for q in PERCENTILES:
                stats[f"{name}_p{q}"] = (percentile(q, 1e3), (time,))
        stats[f"{name}_floor"] = (percentile(50, 1e3), (floor,))
        stats[f"{name}_x_floor"] = (median, (f"{name}_x_floor",))
    return stats


CELL_STATISTICS = cell_statistics()


def cell_figures(samples: pd.DataFrame, itl: pd.Series | None, boot: Bootstrap | None) -> dict[str, Estimate]:
    """Every figure of one cell from its per-sample rows (and its rows' inter-token gaps)."""
    columns = {c: samples[c].to_numpy(dtype=float) for c in {c for _, needs in CELL_STATISTICS.values() for c in needs}}
    figures = {"acc": proportion(samples["correct_pct"].to_numpy(dtype=float) / 100.0, boot)}
    figures.update(bootstrap_statistics(CELL_STATISTICS, columns, boot))
    gaps = [np.asarray(v, dtype=float) for v in (itl if itl is not None else []) if _has_items(v)]
    for q, est in pooled_percentiles(gaps, PERCENTILES, boot).items():
        figures[f"itl_p{q}"] = est.scaled(1e3)
    return figures


def with_figure_columns(cells: pd.DataFrame, figures: dict[str, dict[str, Estimate]]) -> pd.DataFrame:
    columns: dict[str, list] = {}
    for cell_id in cells["cell_id"]:
        for name, est in figures[cell_id].items():
            columns.setdefault(name, []).append(est.value)
            columns.setdefault(f"{name}_lo", []).append(est.low)
            columns.setdefault(f"{name}_hi", []).append(est.high)
    return pd.concat([cells.reset_index(drop=True), pd.DataFrame(columns)], axis=1)


# --- a cell against its baseline -------------------------------------------------------------------


def pairing_key(cell: pd.Series | dict, extra: tuple[str, ...] = ()) -> tuple:
    """The values a cell and its baseline must share (PAIRING_KEYS), comparable across cells."""
    return tuple(_comparable(cell.get(k)) for k in (*PAIRING_KEYS, *extra))


def _comparable(value):
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return value


def differing_keys(a: pd.Series | dict, b: pd.Series | dict) -> list[str]:
    """The PAIRING_KEYS on which two cells differ (why they are not compared)."""
    return [k for k in PAIRING_KEYS if _comparable(a.get(k)) != _comparable(b.get(k))]


def aligned(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """Both cells' per-sample rows on their shared samples (same order); whether the sets were equal."""
    # per_sample's rows come sorted by sample; sort only what does not.
    a = (a if a["sample_id"].is_monotonic_increasing else a.sort_values("sample_id", kind="stable")).reset_index(drop=True)
    b = (b if b["sample_id"].is_monotonic_increasing else b.sort_values("sample_id", kind="stable")).reset_index(drop=True)
    ida, idb = a["sample_id"].to_numpy(), b["sample_id"].to_numpy()
    if len(ida) == len(idb) and (ida == idb).all():
        return a, b, True
    shared = np.intersect1d(ida, idb)
    return a[np.isin(ida, shared)].reset_index(drop=True), b[np.isin(idb, shared)].reset_index(drop=True), False


# Figures of a cell against its baseline: name -> (statistic of the cell over one of the baseline,
# the per-sample columns each side needs). Latency speedup inverts (baseline / cell).
COMPARISONS = {
    **{f"{rule}_ratio": ("ratio", rule) for rule in TPF_RULES},
    "speedup": ("ratio", "tok_s_request"),
    "e2e_speedup": ("inverse", "e2e"),
    "sys_ratio": ("ratio", "tok_s_system"),
}
# Claim metric -> comparison figure.
METRIC_FIGURES = {**{rule: f"{rule}_ratio" for rule in TPF_RULES}, "output_tokens_per_s": "speedup",
                  "system_throughput": "sys_ratio", "e2e": "e2e_speedup", "accuracy": "dacc"}


def _side_statistic(figure: str):
    if figure in RATIO_FIGURES:
        num, den, scale = RATIO_FIGURES[figure]
        return (lambda n, d: ratio_of_sums(n, d) * scale), (num, den)
    if figure == "tok_s_request":
        return median, ("output_tokens_per_s",)
    if figure == "e2e":
        return median, ("e2e_s",)
    raise ValueError(f"unknown figure {figure!r}")


def compare(a: pd.DataFrame, b: pd.DataFrame, boot: Bootstrap | None, names=tuple(COMPARISONS)) -> dict:
    """A cell's per-sample rows against its baseline's: each COMPARISONS figure, the paired
    accuracy difference ("dacc"), and the pair counts ("pairs", `pair_counts`). On the same samples
    both sides are resampled together (paired)."""
    pa, pb, same = aligned(a, b)
    out: dict[str, Estimate] = {"pairs": pair_counts(pa, pb)}
    if "dacc" in names:
        out["dacc"] = paired_difference(pa["correct_pct"].to_numpy(float) / 100, pb["correct_pct"].to_numpy(float) / 100, boot)
    stats = {}
    for name in names:
        if name == "dacc":
            continue
        how, figure = COMPARISONS[name]
        fn, needs = _side_statistic(figure)
        k = len(needs)
        sides = tuple(f"a:{c}" for c in needs) + tuple(f"b:{c}" for c in needs)
        if how == "ratio":
            stats[name] = ((lambda *v, f=fn, k=k: f(*v[:k]) / f(*v[k:])), sides)
        else:
            stats[name] = ((lambda *v, f=fn, k=k: f(*v[k:]) / f(*v[:k])), sides)
    if not stats:
        return out
    needed = {c[2:] for _, cols in stats.values() for c in cols}
    if same:
        columns = {**{f"a:{c}": pa[c].to_numpy(float) for c in needed}, **{f"b:{c}": pb[c].to_numpy(float) for c in needed}}
        out.update(bootstrap_statistics(stats, columns, boot))
    else:
        out.update(_unpaired(stats, a, b, boot))
    return out


def _unpaired(stats: dict, a: pd.DataFrame, b: pd.DataFrame, boot: Bootstrap | None) -> dict[str, Estimate]:
    """Two cells on different samples: each side is resampled on its own (b with the next seed)."""
    import scipy.stats

    out = {}
    for name, (fn, needs) in stats.items():
        ca = [a[c[2:]].to_numpy(float) for c in needs if c.startswith("a:")]
        cb = [b[c[2:]].to_numpy(float) for c in needs if c.startswith("b:")]
        keep_a = np.all([np.isfinite(x) for x in ca], axis=0)
        keep_b = np.all([np.isfinite(x) for x in cb], axis=0)
        ca, cb = [x[keep_a] for x in ca], [x[keep_b] for x in cb]
        n = int(min(keep_a.sum(), keep_b.sum()))
        if n == 0:
            out[name] = Estimate.missing()
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(fn(*ca, *cb))
            if boot is None or n < 2:
                out[name] = Estimate(value, np.nan, np.nan, n)
                continue

            def statistic(ia, ib, axis=-1):
                with np.errstate(divide="ignore", invalid="ignore"):
                    return fn(*(x[ia] for x in ca), *(x[ib] for x in cb))

            result = scipy.stats.bootstrap((np.arange(len(ca[0])), np.arange(len(cb[0]))), statistic, vectorized=True,
                                           n_resamples=boot.resamples, confidence_level=boot.level, method="percentile",
                                           rng=np.random.default_rng(boot.seed))
        out[name] = Estimate(value, float(result.confidence_interval.low), float(result.confidence_interval.high), n)
    return out


def pair_counts(pa: pd.DataFrame, pb: pd.DataFrame) -> dict[str, int]:
    """On aligned samples (`aligned`): pairs, a right & b wrong, a wrong & b right, identical outputs."""
    both = pa["correct_pct"].notna() & pb["correct_pct"].notna()
    ca, cb = pa.loc[both, "correct_pct"] >= 50, pb.loc[both, "correct_pct"] >= 50
    return {
        "pairs": int(both.sum()),
        "only_cell_right": int((ca & ~cb).sum()),
        "only_baseline_right": int((~ca & cb).sum()),
        "identical_outputs": int(sum(x == y for x, y in zip(pa["output"], pb["output"]))),
        "shared_samples": len(pa),
    }


def baseline_index(bases: pd.DataFrame, own_model: bool) -> dict[tuple, pd.Series]:
    """Baseline cells by pairing key (with the model's identity too when each model is its own baseline)."""
    extra = ("model", "model_source", "model_revision") if own_model else ()
    index: dict[tuple, pd.Series] = {}
    for _, base in bases.sort_values("cell_id").iterrows():
        index.setdefault(pairing_key(base, extra), base)
    return index


def compare_with_baseline(cells: pd.DataFrame, samples_of: dict[str, pd.DataFrame], boot: Bootstrap | None,
                          baseline_model: str | None) -> pd.DataFrame:
    """One row per cell that has a baseline cell (mode ar of `baseline_model`, or of the cell's own
    model when None) agreeing on PAIRING_KEYS: TPF ratio, speedups and the paired accuracy difference."""
    ran = cells[cells["status"].isin(["ok", "error"]) & (cells["samples"] > 0)]
    is_base = (ran["mode"] == "ar") & ((ran["model"] == baseline_model) if baseline_model else True)
    index = baseline_index(ran[is_base], own_model=not baseline_model)
    extra = () if baseline_model else ("model", "model_source", "model_revision")
    rows = []
    for _, cell in ran.iterrows():
        if cell["mode"] == "ar" and (not baseline_model or cell["model"] == baseline_model):
            continue
        base = index.get(pairing_key(cell, extra))
        if base is None:
            continue
        a, b = samples_of[cell["cell_id"]], samples_of[base["cell_id"]]
        row = {"cell_id": cell["cell_id"], "baseline_cell_id": base["cell_id"],
               **{k: cell[k] for k in ("model", "mode", "mode_label", "block_length", "threshold", "runner",
                                       "hardware", "task", "task_protocol", "context", "concurrency", "distinct")},
               "baseline": f"{base['model']} {base['mode_label']}"}
        compared = compare(a, b, boot, ("tpf_ratio", "speedup", "e2e_speedup", "sys_ratio", "dacc"))
        row.update(compared.pop("pairs"))
        for name, est in compared.items():
            row.update({name: est.value, f"{name}_lo": est.low, f"{name}_hi": est.high, f"{name}_n": est.n})
            if name == "dacc":
                row["dacc_p_value"] = est.p_value
        rows.append(row)
    return pd.DataFrame(rows)


def _has_items(values) -> bool:
    return values is not None and not (isinstance(values, float) and np.isnan(values)) and len(values) > 0


__all__ += ["BASELINE_MAY_DIFFER", "PAIRING_KEYS", "RATIO_FIGURES", "TPF_RULES", "DEFINITIONS", "compare",
            "differing_keys", "pairing_key", "pair_counts"]
