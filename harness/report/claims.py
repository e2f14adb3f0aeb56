"""Vendor claims as data (configs/claims/*.yaml), and a verdict on each from the records.

A claim compares a *subject* (records matching its conditions) with a *baseline* on one figure,
cell by cell: each subject cell is paired with the baseline cell that shares the claim's `match`
columns (same sweep, hardware, ...). Each pair gives a measurement with a 95% bootstrap interval,
judged against the claimed value and its tolerance:

  at_least  the claim holds if the true value >= claimed - tolerance:
            confirmed when the whole interval is >= that bound, refuted when it is all below,
            inconclusive when it straddles the bound
  within    the claim holds if |true value - claimed| <= tolerance:
            confirmed when the interval lies inside the band, refuted when it lies outside,
            inconclusive when it crosses an edge

A claim is inconclusive when a condition is missing from the records (no subject or baseline
rows, no pair sharing the `match` columns) or no interval could be computed (fewer than two
samples). Over several measurements: confirmed if at least one confirms and none refutes, refuted
if at least one refutes and none confirms, inconclusive otherwise (the measurements disagree or
none decides). Timing-only rows (random weights) and failed samples never count.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from harness.config import ConfigError
from harness.records import COLUMN_NAMES
from harness.report.aggregate import (CELL_KEYS, OPTIONAL_COLUMNS, RATIO_FIGURES, TPF_RULES, Aggregates,
                                      Estimate, compare_figure, find_baseline, pair_counts)

DEFAULT_CLAIMS = Path(__file__).resolve().parents[2] / "configs" / "claims" / "vendor.yaml"

# metric -> the comparison it is judged on (ratio: subject / baseline; difference: subject - baseline)
METRICS = {
    "tpf": "ratio", "tpf_excl_prefill": "ratio", "vendor_tpf": "ratio", "vendor_tpf_untrimmed": "ratio",
    "system_throughput": "ratio", "output_tokens_per_s": "ratio", "accuracy": "difference",
}
METRIC_UNITS = {"accuracy": "points", "system_throughput": "x", "output_tokens_per_s": "x"}
DIRECTIONS = ("at_least", "within")
VERDICTS = ("confirmed", "refuted", "inconclusive")
CONDITION_KEYS = tuple(sorted(set(COLUMN_NAMES) | set(OPTIONAL_COLUMNS)))


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    metric: str
    comparison: str
    claimed: float
    tolerance: float
    direction: str
    subject: dict[str, Any]
    baseline: dict[str, Any]
    require: dict[str, Any] = field(default_factory=dict)  # conditions on both sides
    match: tuple[str, ...] = ("sweep", "hardware", "runner", "task", "context", "concurrency")
    evidence_metrics: tuple[str, ...] = ()  # other counting rules shown beside the verdict's
    source: str = ""
    note: str = ""

    def __post_init__(self):
        key = f"claims[{self.id}]"
        _require(bool(self.id) and isinstance(self.id, str), f"{key}.id", "give every claim a non-empty id")
        _choice(self.metric, f"{key}.metric", tuple(METRICS))
        _choice(self.comparison, f"{key}.comparison", (METRICS[self.metric],))
        _choice(self.direction, f"{key}.direction", DIRECTIONS)
        _require(isinstance(self.claimed, (int, float)) and math.isfinite(self.claimed), f"{key}.claimed",
                 f"must be a number, got {self.claimed!r}")
        _require(isinstance(self.tolerance, (int, float)) and self.tolerance >= 0, f"{key}.tolerance",
                 f"must be a number >= 0, got {self.tolerance!r}")
        for side in ("subject", "baseline", "require"):
            conditions = getattr(self, side)
            _require(isinstance(conditions, dict), f"{key}.{side}", "must be a mapping of record column -> value")
            for column in conditions:
                _choice(column, f"{key}.{side}", CONDITION_KEYS)
        _require(bool(self.subject) and bool(self.baseline), f"{key}.subject/baseline", "both need at least one condition")
        for column in self.match:
            _choice(column, f"{key}.match", tuple(CELL_KEYS))
        for metric in self.evidence_metrics:
            _choice(metric, f"{key}.evidence_metrics", tuple(m for m, c in METRICS.items() if c == METRICS[self.metric]))

    @property
    def unit(self) -> str:
        return METRIC_UNITS.get(self.metric, "x")

    def target_text(self) -> str:
        unit = " points" if self.unit == "points" else "x"
        if self.direction == "at_least":
            return f">= {self.claimed:g}{unit} (tolerance {self.tolerance:g})"
        return f"within {self.claimed:g} +/- {self.tolerance:g}{unit}"


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _choice(value: Any, key: str, choices: tuple) -> None:
    _require(value in choices, key, f"{value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


CLAIM_FIELDS = tuple(Claim.__dataclass_fields__)


def load_claims(path: str | Path = DEFAULT_CLAIMS) -> list[Claim]:
    """Claims from a YAML file with a top-level `claims:` list; every field validated."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"claims file {path}: cannot be read ({exc})") from None
    _require(isinstance(data, dict) and isinstance(data.get("claims"), list), f"claims file {path}",
             "needs a top-level `claims:` list")
    claims = []
    for i, entry in enumerate(data["claims"]):
        _require(isinstance(entry, dict), f"claims[{i}]", "each claim is a mapping")
        unknown = sorted(set(entry) - set(CLAIM_FIELDS))
        _require(not unknown, f"claims[{entry.get('id', i)}]",
                 f"unknown field(s) {unknown}; valid fields: {', '.join(CLAIM_FIELDS)}")
        missing = [f for f in ("id", "statement", "metric", "comparison", "claimed", "tolerance", "direction",
                               "subject", "baseline") if f not in entry]
        _require(not missing, f"claims[{entry.get('id', i)}]", f"missing field(s) {missing}")
        entry = dict(entry)
        for name in ("match", "evidence_metrics"):
            if name in entry:
                entry[name] = tuple(entry[name])
        claims.append(Claim(**entry))
    ids = [c.id for c in claims]
    _require(len(ids) == len(set(ids)), f"claims file {path}", f"duplicate claim ids in {ids}")
    return claims


# --- conditions on records ---------------------------------------------------------------------


def condition_mask(values: pd.Series, condition: Any) -> pd.Series:
    """Rows whose value meets a condition: a value, a list (any of), or a string pattern with * or ?
    (a pattern never matches null; null matches only null)."""
    if isinstance(condition, (list, tuple)):
        mask = pd.Series(False, index=values.index)
        for option in condition:
            mask |= condition_mask(values, option)
        return mask
    if condition is None:
        return values.isna()
    if isinstance(condition, str):
        return values.map(lambda v: isinstance(v, str) and fnmatch.fnmatchcase(v, condition))
    if isinstance(condition, bool):
        return values.map(lambda v: v is not None and not (isinstance(v, float) and np.isnan(v)) and bool(v) == condition)
    numeric = pd.to_numeric(values, errors="coerce")
    return pd.Series(np.isclose(numeric.to_numpy(dtype=float), float(condition), equal_nan=False), index=values.index)


def select(rows: pd.DataFrame, conditions: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """Rows meeting every condition; when none do, the first condition that emptied them and what
    values the records have for it."""
    current, met = rows, {}
    for column, condition in conditions.items():
        narrowed = current[condition_mask(current[column], condition)]
        if narrowed.empty:
            # Name every condition that no record meets on its own; else the combination is missing.
            alone = [(c, cond) for c, cond in conditions.items() if not condition_mask(rows[c], cond).any()]
            if alone:
                return narrowed, "; ".join(f"no records with {c}={cond!r} (they have: {_values(rows[c])})" for c, cond in alone)
            return narrowed, (f"no records with {column}={condition!r} among those with {conditions_text(met)} "
                              f"(they have {column}: {_values(current[column])})")
        met[column] = condition
        current = narrowed
    return current, ""


def conditions_text(conditions: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in conditions.items()) or "-"


def _values(series: pd.Series) -> str:
    have = sorted({_text(v) for v in series.tolist()})
    return (", ".join(have[:8]) + (", ..." if len(have) > 8 else "")) or "none"


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- verdicts ----------------------------------------------------------------------------------


@dataclass
class Measurement:
    subject: str  # the subject cell, in words
    baseline: str
    where: str  # the shared conditions (sweep, hardware, task, ...)
    estimate: Estimate
    verdict: str
    reason: str
    rules: dict[str, Estimate] = field(default_factory=dict)  # metric -> comparison under that rule
    subject_figures: dict[str, Estimate] = field(default_factory=dict)  # the subject cell's own figure per rule
    notes: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    reason: str
    measurements: list[Measurement] = field(default_factory=list)
    reproducing_rules: list[str] = field(default_factory=list)  # counting rules that reproduce the claimed figure

    def measured_text(self) -> str:
        values = [m.estimate for m in self.measurements if np.isfinite(m.estimate.value)]
        if not values:
            return "-"
        if len(values) == 1:
            return values[0].text()
        return f"{len(values)} cells: {min(v.value for v in values):.3g} to {max(v.value for v in values):.3g}"


def judge(estimate: Estimate, claim: Claim) -> tuple[str, str]:
    if not np.isfinite(estimate.value):
        return "inconclusive", "the figure could not be computed from these records"
    if not estimate.has_interval:
        return "inconclusive", f"n={estimate.n}: too few samples for an interval"
    low, high = estimate.low, estimate.high
    interval = f"95% interval [{low:.3g}, {high:.3g}]"
    if claim.direction == "at_least":
        bound = claim.claimed - claim.tolerance
        if low >= bound:
            return "confirmed", f"{interval} is at or above {bound:g} (claimed {claim.claimed:g} - tolerance {claim.tolerance:g})"
        if high < bound:
            return "refuted", f"{interval} is below {bound:g} (claimed {claim.claimed:g} - tolerance {claim.tolerance:g})"
        return "inconclusive", f"{interval} straddles {bound:g} (claimed {claim.claimed:g} - tolerance {claim.tolerance:g})"
    lo_edge, hi_edge = claim.claimed - claim.tolerance, claim.claimed + claim.tolerance
    band = f"[{lo_edge:g}, {hi_edge:g}]"
    if low >= lo_edge and high <= hi_edge:
        return "confirmed", f"{interval} lies inside {band}"
    if high < lo_edge or low > hi_edge:
        return "refuted", f"{interval} lies outside {band}"
    return "inconclusive", f"{interval} crosses an edge of {band}"


def combine(measurements: list[Measurement]) -> tuple[str, str]:
    """One verdict from several; pairs whose records lack the figure (e.g. unscored engine rows in an
    accuracy claim) are named but do not vote."""
    usable = [m for m in measurements if np.isfinite(m.estimate.value)]
    if not usable:
        return "inconclusive", f"missing conditions: {measurements[0].reason} ({len(measurements)} pair(s))"
    unused = len(measurements) - len(usable)
    aside = f"; {unused} pair(s) without the figure left aside" if unused else ""
    verdicts = [m.verdict for m in usable]
    confirmed, refuted = verdicts.count("confirmed"), verdicts.count("refuted")
    if confirmed and not refuted:
        return "confirmed", f"confirmed in {confirmed} of {len(verdicts)} measurement(s), refuted in none{aside}"
    if refuted and not confirmed:
        return "refuted", f"refuted in {refuted} of {len(verdicts)} measurement(s), confirmed in none{aside}"
    if confirmed and refuted:
        return "inconclusive", f"measurements disagree: confirmed in {confirmed}, refuted in {refuted} (see conditions){aside}"
    return "inconclusive", (usable[0].reason if len(usable) == 1 else "no measurement decides") + aside


def evaluate_claims(claims: list[Claim], aggregates: Aggregates) -> list[Verdict]:
    return [evaluate_claim(claim, aggregates) for claim in claims]


def evaluate_claim(claim: Claim, ag: Aggregates) -> Verdict:
    rows = ag.prepared[(ag.prepared["status"] == "ok") & ~ag.prepared["timing_only"].fillna(False).astype(bool)]
    if rows.empty:
        return Verdict(claim, "inconclusive", "missing conditions: no scored records (status ok, real weights)")
    subject_rows, why = select(rows, {**claim.require, **claim.subject})
    if subject_rows.empty:
        return Verdict(claim, "inconclusive", f"missing conditions (subject): {why}")
    baseline_rows, why = select(rows, {**claim.require, **claim.baseline})
    if baseline_rows.empty:
        return Verdict(claim, "inconclusive", f"missing conditions (baseline): {why}")
    cells = ag.cells.set_index("cell_id", drop=False)
    subject_cells = cells.loc[sorted(subject_rows["cell_id"].unique())]
    baseline_cells = cells.loc[sorted(baseline_rows["cell_id"].unique())]
    measurements = []
    for _, cell in subject_cells.iterrows():
        base = find_baseline(cell, baseline_cells, claim.match)
        if base is not None:
            measurements.append(measure(claim, cell, base, ag))
    if not measurements:
        subject_has = _describe(subject_cells, claim.match)
        baseline_has = _describe(baseline_cells, claim.match)
        return Verdict(claim, "inconclusive",
                       f"missing conditions: no baseline cell shares {', '.join(claim.match)} with a subject cell "
                       f"(subject: {subject_has}; baseline: {baseline_has})")
    verdict, reason = combine(measurements)
    reproducing = []
    rules = (claim.metric, *claim.evidence_metrics)
    for rule in rules:
        values = [m.rules[rule].value for m in measurements if rule in m.rules]
        if values and all(np.isfinite(v) and abs(v - claim.claimed) <= claim.tolerance for v in values):
            reproducing.append(rule)
    return Verdict(claim, verdict, reason, measurements, reproducing)


def measure(claim: Claim, cell: pd.Series, base: pd.Series, ag: Aggregates) -> Measurement:
    a = ag.samples[ag.samples["cell_id"] == cell["cell_id"]]
    b = ag.samples[ag.samples["cell_id"] == base["cell_id"]]
    a_rows = ag.prepared[ag.prepared["cell_id"] == cell["cell_id"]]
    b_rows = ag.prepared[ag.prepared["cell_id"] == base["cell_id"]]
    estimate = compare_figure(claim.metric, a, b, ag.boot, a_rows, b_rows)
    verdict, reason = judge(estimate, claim)
    m = Measurement(
        subject=f"{cell['model']} {cell['mode_label']}", baseline=f"{base['model']} {base['mode_label']}",
        where=", ".join(f"{k}={_text(cell[k])}" for k in claim.match), estimate=estimate, verdict=verdict, reason=reason)
    for rule in (claim.metric, *claim.evidence_metrics):
        m.rules[rule] = estimate if rule == claim.metric else compare_figure(rule, a, b, ag.boot, a_rows, b_rows)
        if rule in RATIO_FIGURES:
            m.subject_figures[rule] = ag.figures[cell["cell_id"]][rule]
    if claim.metric == "accuracy":
        counts = pair_counts(a, b)
        m.notes.append(f"{counts['pairs']} paired samples: only the subject right on {counts['only_cell_right']}, "
                       f"only the baseline right on {counts['only_baseline_right']}; identical outputs on "
                       f"{counts['identical_outputs']} of {counts['shared_samples']}")
    for label, c in (("subject", cell), ("baseline", base)):
        if c["errors"]:
            m.notes.append(f"{label} cell: {c['errors']} failed sample(s) excluded")
        if c["crosscheck_flag"]:
            m.notes.append(f"{label} cell flagged by the cross-runner check: {c['crosscheck_flag']}")
    lora = a_rows["draft_adapter_active"]
    if cell["draft_lora"] and isinstance(cell["draft_lora"], str) and not lora.fillna(False).astype(bool).all():
        m.notes.append("the draft LoRA is configured but was not active in every draft pass (draft_adapter_active)")
    return m


def _describe(cells: pd.DataFrame, keys) -> str:
    combos = sorted({", ".join(f"{k}={_text(c[k])}" for k in keys) for _, c in cells.iterrows()})
    return "; ".join(combos[:4]) + (" ..." if len(combos) > 4 else "")


def rule_description(rule: str) -> str:
    return TPF_RULES.get(rule, {"system_throughput": "system output tokens/s ratio",
                                "output_tokens_per_s": "per-request output tokens/s, ratio of medians",
                                "accuracy": "paired accuracy difference (points)"}.get(rule, rule))
