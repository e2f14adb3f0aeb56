"""Vendor claims as data (configs/claims/*.yaml), and a verdict on each from the records.

A claim compares a *subject* (records matching its conditions) with a *baseline* on one figure,
cell by cell, on the tasks it names: each subject cell is paired with the baseline cell that agrees
with it on every column of `harness.records.PAIRING_KEYS` (only the model and its decoding may
differ: same sweep, hardware, runner, task, context, generation limit, seed, data, concurrency, ...).
Each pair is a measurement with a 95% interval (harness/stats.py), judged against the claimed value
and its tolerance:

  at_least  the claim holds if the true value >= claimed - tolerance:
            confirmed when the whole interval is >= that bound, refuted when it is all below,
            inconclusive when it straddles the bound
  within    the claim holds if |true value - claimed| <= tolerance:
            confirmed when the interval lies inside the band, refuted when it lies outside,
            inconclusive when it crosses an edge

A measurement has *insufficient evidence* when it rests on fewer samples than the claim's
`min_samples`, or its interval is degenerate (none, or of zero width). The claim's verdict:

  not measured           a condition it needs is missing from the records: no subject or baseline
                         records, no pair, or one of the claim's `tasks` without a measurement
                         (the reason names what is missing and what the records have instead)
  insufficient evidence  some measurement has insufficient evidence
  confirmed / refuted    every measurement confirms / every measurement refutes
  inconclusive           otherwise: an interval straddles the bound, or measurements disagree
                         (e.g. 4x at one request but 2x at 64)

Timing-only rows (random weights) and failed samples never count.
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
from harness.records import COLUMN_NAMES, PAIRING_KEYS
from harness.report.aggregate import (METRIC_FIGURES, RATIO_FIGURES, TPF_RULES, Aggregates, Estimate, compare,
                                      differing_keys, pairing_key)

DEFAULT_CLAIMS = Path(__file__).resolve().parents[2] / "configs" / "claims" / "vendor.yaml"

# metric -> the comparison it is judged on (ratio: subject / baseline; difference: subject - baseline)
METRICS = {
    "tpf": "ratio", "tpf_excl_prefill": "ratio", "vendor_tpf": "ratio", "vendor_tpf_untrimmed": "ratio",
    "system_throughput": "ratio", "output_tokens_per_s": "ratio", "accuracy": "difference",
}
METRIC_UNITS = {"accuracy": "points", "system_throughput": "x", "output_tokens_per_s": "x"}
DIRECTIONS = ("at_least", "within")
VERDICTS = ("confirmed", "refuted", "inconclusive", "insufficient evidence", "not measured")
CONDITION_KEYS = tuple(sorted(COLUMN_NAMES))


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
    tasks: tuple[str, ...]  # task names (patterns with * or ?) the claim is about; each needs a measurement
    min_samples: int  # paired samples a measurement needs before it can confirm or refute
    require: dict[str, Any] = field(default_factory=dict)  # conditions on both sides
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
        _require(isinstance(self.tasks, tuple) and len(self.tasks) > 0 and all(isinstance(t, str) and t for t in self.tasks),
                 f"{key}.tasks", "list the tasks the claim is about (task names, * and ? allowed), e.g. [gsm8k, math500]")
        _require(isinstance(self.min_samples, int) and not isinstance(self.min_samples, bool) and self.min_samples >= 2,
                 f"{key}.min_samples", f"must be an integer >= 2 (samples a measurement needs), got {self.min_samples!r}")
        for side in ("subject", "baseline", "require"):
            conditions = getattr(self, side)
            _require(isinstance(conditions, dict), f"{key}.{side}", "must be a mapping of record column -> value")
            for column in conditions:
                _choice(column, f"{key}.{side}", CONDITION_KEYS)
        _require("task" not in {**self.subject, **self.baseline, **self.require}, f"{key}.subject/baseline/require",
                 "name the tasks in `tasks`, not as a condition")
        _require(bool(self.subject) and bool(self.baseline), f"{key}.subject/baseline", "both need at least one condition")
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

    def reproduces(self, value: float) -> bool:
        """A counting rule reproduces the claimed figure when its point value is within the tolerance of it."""
        return bool(np.isfinite(value) and abs(value - self.claimed) <= self.tolerance)


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _choice(value: Any, key: str, choices: tuple) -> None:
    _require(value in choices, key, f"{value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


CLAIM_FIELDS = tuple(Claim.__dataclass_fields__)
REQUIRED_FIELDS = ("id", "statement", "metric", "comparison", "claimed", "tolerance", "direction", "subject",
                   "baseline", "tasks", "min_samples")


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
        missing = [f for f in REQUIRED_FIELDS if f not in entry]
        _require(not missing, f"claims[{entry.get('id', i)}]", f"missing field(s) {missing}")
        entry = dict(entry)
        for name in ("tasks", "evidence_metrics"):
            if isinstance(entry.get(name), list):
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
    rows = rows.assign(**{c: None for c in conditions if c not in rows})  # a column older files lack: null
    current = rows
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
    where: str  # the shared conditions (task, context, concurrency, ...)
    task: str
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
    tasks_present: list[str] = field(default_factory=list)  # the claim's tasks that have a measurement
    tasks_missing: list[str] = field(default_factory=list)

    def measured_text(self) -> str:
        values = [m.estimate for m in self.measurements if np.isfinite(m.estimate.value)]
        if not values:
            return "-"
        if len(values) == 1:
            return values[0].text()
        return f"{len(values)} cells: {min(v.value for v in values):.3g} to {max(v.value for v in values):.3g}"

    def reproducing(self) -> dict[str, int]:
        """Counting rule -> in how many measurements it reproduces the claimed figure."""
        rules = (self.claim.metric, *self.claim.evidence_metrics)
        return {rule: sum(self.claim.reproduces(m.rules[rule].value) for m in self.measurements if rule in m.rules)
                for rule in rules}

    def reproducing_text(self) -> str:
        counts = {rule: k for rule, k in self.reproducing().items() if k}
        if not self.measurements or not self.claim.evidence_metrics:  # a question about counting rules only
            return "-"
        return ", ".join(f"{rule} ({k} of {len(self.measurements)})" for rule, k in counts.items()) or "none"


def judge(estimate: Estimate, claim: Claim) -> tuple[str, str]:
    """One measurement's verdict: confirmed / refuted / inconclusive, or insufficient evidence."""
    if not np.isfinite(estimate.value):
        return "not measured", "the figure could not be computed from these records"
    if estimate.n < claim.min_samples:
        return "insufficient evidence", f"n={estimate.n} paired samples, the claim needs at least {claim.min_samples}"
    if estimate.degenerate:
        what = "no interval" if not estimate.has_interval else f"a zero-width interval [{estimate.low:.3g}, {estimate.high:.3g}]"
        return "insufficient evidence", f"n={estimate.n} gives {what}: the samples say nothing about the spread"
    low, high = estimate.low, estimate.high
    interval = f"95% interval [{low:.3g}, {high:.3g}] ({estimate.method}, n={estimate.n})"
    if claim.direction == "at_least":
        bound = claim.claimed - claim.tolerance
        detail = f"{bound:g} (claimed {claim.claimed:g} - tolerance {claim.tolerance:g})"
        if low >= bound:
            return "confirmed", f"{interval} is at or above {detail}"
        if high < bound:
            return "refuted", f"{interval} is below {detail}"
        return "inconclusive", f"{interval} straddles {detail}"
    lo_edge, hi_edge = claim.claimed - claim.tolerance, claim.claimed + claim.tolerance
    band = f"[{lo_edge:g}, {hi_edge:g}]"
    if low >= lo_edge and high <= hi_edge:
        return "confirmed", f"{interval} lies inside {band}"
    if high < lo_edge or low > hi_edge:
        return "refuted", f"{interval} lies outside {band}"
    return "inconclusive", f"{interval} crosses an edge of {band}"


def combine(measurements: list[Measurement], missing_tasks: list[str], present_tasks: list[str]) -> tuple[str, str]:
    """The claim's verdict from its measurements (module docstring)."""
    if missing_tasks:
        return "not measured", (f"the claim needs a measurement on each of its tasks: missing "
                                f"{', '.join(missing_tasks)} (present: {', '.join(present_tasks) or 'none'})")
    verdicts = [m.verdict for m in measurements]
    count = {v: verdicts.count(v) for v in VERDICTS}
    total = len(verdicts)
    if count["not measured"] == total:
        return "not measured", f"{measurements[0].reason} ({total} pair(s))"
    if count["insufficient evidence"]:
        first = next(m for m in measurements if m.verdict == "insufficient evidence")
        return "insufficient evidence", (f"{count['insufficient evidence']} of {total} measurement(s) have insufficient "
                                         f"evidence, e.g. {first.where}: {first.reason}")
    if count["confirmed"] == total:
        return "confirmed", f"confirmed in {total} of {total} measurement(s)"
    if count["refuted"] == total:
        return "refuted", f"refuted in {total} of {total} measurement(s)"
    if count["confirmed"] and count["refuted"]:
        return "inconclusive", (f"measurements disagree: confirmed in {count['confirmed']}, refuted in "
                                f"{count['refuted']} of {total} (see conditions)")
    decided = ", ".join(f"{v} in {count[v]}" for v in VERDICTS if count[v])
    undecided = next(m for m in measurements if m.verdict in ("inconclusive", "not measured"))
    return "inconclusive", f"{decided} of {total} measurement(s); e.g. {undecided.where}: {undecided.reason}"


def evaluate_claims(claims: list[Claim], aggregates: Aggregates) -> list[Verdict]:
    return [evaluate_claim(claim, aggregates) for claim in claims]


def evaluate_claim(claim: Claim, ag: Aggregates) -> Verdict:
    rows = ag.prepared[(ag.prepared["status"] == "ok") & ~ag.prepared["timing_only"].fillna(False).astype(bool)]
    if rows.empty:
        return Verdict(claim, "not measured", "no scored records (status ok, real weights)", tasks_missing=list(claim.tasks))
    on_tasks, why = select(rows, {"task": list(claim.tasks)})
    if on_tasks.empty:
        return Verdict(claim, "not measured", f"none of the claim's tasks: {why}", tasks_missing=list(claim.tasks))
    subject_rows, why = select(on_tasks, {**claim.require, **claim.subject})
    if subject_rows.empty:
        return Verdict(claim, "not measured", f"missing conditions (subject): {why}", tasks_missing=list(claim.tasks))
    baseline_rows, why = select(on_tasks, {**claim.require, **claim.baseline})
    if baseline_rows.empty:
        return Verdict(claim, "not measured", f"missing conditions (baseline): {why}", tasks_missing=list(claim.tasks))
    cells = ag.cells.set_index("cell_id", drop=False)
    subject_cells = cells.loc[sorted(subject_rows["cell_id"].unique())]
    baseline_cells = cells.loc[sorted(baseline_rows["cell_id"].unique())]
    bases: dict[tuple, pd.Series] = {}
    for _, base in baseline_cells.iterrows():
        bases.setdefault(pairing_key(base), base)
    measurements = []
    for _, cell in subject_cells.iterrows():
        base = bases.get(pairing_key(cell))
        if base is not None and base["cell_id"] != cell["cell_id"]:
            measurements.append(measure(claim, cell, base, ag))
    present = sorted({m.task for m in measurements})
    missing = [t for t in claim.tasks if not any(fnmatch.fnmatchcase(p, t) for p in present)]
    if not measurements:
        closest = min(((differing_keys(c, b), c, b) for _, c in subject_cells.iterrows() for _, b in baseline_cells.iterrows()),
                      key=lambda x: len(x[0]))
        differ = ", ".join(f"{k} ({_text(closest[1].get(k))} vs {_text(closest[2].get(k))})" for k in closest[0])
        return Verdict(claim, "not measured",
                       f"no baseline cell agrees with a subject cell on every pairing column; the closest pair differs "
                       f"in {differ}", tasks_missing=missing)
    verdict, reason = combine(measurements, missing, present)
    return Verdict(claim, verdict, reason, measurements, present, missing)


def measure(claim: Claim, cell: pd.Series, base: pd.Series, ag: Aggregates) -> Measurement:
    a = ag.samples[ag.samples["cell_id"] == cell["cell_id"]]
    b = ag.samples[ag.samples["cell_id"] == base["cell_id"]]
    rules = (claim.metric, *claim.evidence_metrics)
    compared = compare(a, b, ag.boot, tuple(dict.fromkeys(METRIC_FIGURES[r] for r in rules)))
    estimate = compared[METRIC_FIGURES[claim.metric]]
    verdict, reason = judge(estimate, claim)
    shown = [k for k in PAIRING_KEYS if k in ("task", "context", "concurrency", "hardware", "runner")]
    m = Measurement(
        subject=f"{cell['model']} {cell['mode_label']}", baseline=f"{base['model']} {base['mode_label']}",
        where=", ".join(f"{k}={_text(cell[k])}" for k in shown), task=str(cell["task"]), estimate=estimate,
        verdict=verdict, reason=reason)
    for rule in rules:
        m.rules[rule] = compared[METRIC_FIGURES[rule]]
        if rule in RATIO_FIGURES:
            m.subject_figures[rule] = ag.figures[cell["cell_id"]][rule]
    if claim.metric == "accuracy":
        counts = compared["pairs"]
        p_value = estimate.p_value
        m.notes.append(f"{counts['pairs']} paired samples: only the subject right on {counts['only_cell_right']}, "
                       f"only the baseline right on {counts['only_baseline_right']} (McNemar exact p = "
                       f"{p_value:.3g}); identical outputs on {counts['identical_outputs']} of {counts['shared_samples']}")
    for label, c in (("subject", cell), ("baseline", base)):
        if c["errors"]:
            m.notes.append(f"{label} cell: {c['errors']} failed sample(s) excluded")
        if c.get("crosscheck_flag") and c["crosscheck_flag"] != "ok":
            m.notes.append(f"{label} cell, cross-runner check: {c['crosscheck_flag']}")
    lora = ag.prepared.loc[ag.prepared["cell_id"] == cell["cell_id"], "draft_adapter_active"]
    if cell["draft_lora"] and isinstance(cell["draft_lora"], str) and not lora.fillna(False).astype(bool).all():
        m.notes.append("the draft LoRA is configured but was not active in every draft pass (draft_adapter_active)")
    return m


def rule_description(rule: str) -> str:
    return TPF_RULES.get(rule, {"system_throughput": "system output tokens/s ratio",
                                "output_tokens_per_s": "per-request output tokens/s, ratio of medians",
                                "accuracy": "paired accuracy difference (points)"}.get(rule, rule))
