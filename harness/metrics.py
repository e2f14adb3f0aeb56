"""Every figure the project prints, derived from raw record columns, with its counting rule.

Definitions (DESIGN.md section 5):
  forwards          all model forwards of the sample, prefill included (counted by a hook)
  TPF               new_tokens / forwards
  TPF excl. prefill new_tokens / (forwards - prefill forwards)
  vendor TPF        new_tokens / vendor_nfe (the vendor's own nfe rule for the mode)
  query/forward     query tokens processed / forwards (what each forward costs)
  accept length     mean tokens emitted per verify step (speculative modes)
  TTFT              request start -> first token final;  E2E: start -> last token final
  TPOT              (E2E - TTFT) / (new_tokens - 1)
  output tok/s      new_tokens / E2E
Per-cell aggregates of ratios are ratios of sums (total tokens / total forwards), as the vendor's
evaluation prints them; per-sample values stay available for distributions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reference_decoders.counting import FORWARD_KINDS

# draft_lora separates linear_spec from linear_spec with its draft LoRA (both record mode linear_spec);
# concurrency separates an engine's load levels.
CELL_COLUMNS = ["sweep", "model", "mode", "block_length", "threshold", "draft_lora", "runner", "concurrency",
                "hardware", "context", "task"]

DEFINITIONS = {
    "n": "samples scored (status ok), repetitions collapsed",
    "acc": "exact-match accuracy over those samples",
    "tokens": "mean new tokens per sample (EOS included, capped at max_new_tokens)",
    "TPF": "sum(new tokens) / sum(forwards), prefill included",
    "TPF-np": "sum(new tokens) / sum(forwards excluding prefill)",
    "vTPF": "sum(new tokens) / sum(vendor nfe) under the vendor's rule for the mode",
    "acc_len": "mean tokens emitted per verify step (speculative modes)",
    "q/fwd": "query tokens processed per forward",
    "E2E ms": "median end-to-end latency per request",
    "tok/s": "sum(new tokens) / sum(E2E), single stream",
}


def with_derived(df: pd.DataFrame) -> pd.DataFrame:
    """Per-row derived figures; rows that are not `ok` get NaN."""
    out = df.copy()
    forward_cols = [f"forwards_{k}" for k in FORWARD_KINDS]
    query_cols = [f"query_tokens_{k}" for k in FORWARD_KINDS]
    out["forwards_total"] = out[forward_cols].sum(axis=1, min_count=1)
    out["query_tokens_total"] = out[query_cols].sum(axis=1, min_count=1)
    out["tpf"] = out["new_tokens"] / out["forwards_total"]
    out["tpf_excl_prefill"] = out["new_tokens"] / (out["forwards_total"] - out["forwards_prefill"]).replace(0, np.nan)
    out["vendor_tpf"] = out["new_tokens"] / out["vendor_nfe"].replace(0, np.nan)
    out["query_tokens_per_forward"] = out["query_tokens_total"] / out["forwards_total"]
    out["tpot_s"] = (out["e2e_s"] - out["ttft_s"]) / (out["new_tokens"] - 1).where(out["new_tokens"] > 1)
    out["output_tokens_per_s"] = out["new_tokens"] / out["e2e_s"]
    out["accept_length_mean"] = out["accept_lengths"].map(_mean_or_nan) if "accept_lengths" in out else np.nan
    return out


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell, ratios of sums over its ok rows; skipped / failed cells keep their reason."""
    if df.empty:
        return pd.DataFrame(columns=CELL_COLUMNS + list(DEFINITIONS))
    df = with_derived(df)
    keys = [c for c in CELL_COLUMNS if c in df]
    rows = []
    for key, group in df.groupby(keys, dropna=False, sort=True):
        ok = group[group["status"] == "ok"]
        first_rep = ok[ok["repetition"] == 0]
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row["status"] = _cell_status(group)
        row["n"] = len(first_rep)
        row["errors"] = int((group["status"] == "error").sum())
        row["acc"] = first_rep["correct"].astype("float").mean() if len(first_rep) and first_rep["correct"].notna().any() else np.nan
        row["tokens"] = first_rep["new_tokens"].mean() if len(first_rep) else np.nan
        row["TPF"] = _ratio(first_rep["new_tokens"], first_rep["forwards_total"])
        row["TPF-np"] = _ratio(first_rep["new_tokens"], first_rep["forwards_total"] - first_rep["forwards_prefill"])
        row["vTPF"] = _ratio(first_rep["new_tokens"], first_rep["vendor_nfe"])
        lengths = [x for lst in first_rep["accept_lengths"].dropna() for x in lst] if "accept_lengths" in first_rep else []
        row["acc_len"] = float(np.mean(lengths)) if lengths else np.nan
        row["q/fwd"] = _ratio(first_rep["query_tokens_total"], first_rep["forwards_total"])
        row["E2E ms"] = ok["e2e_s"].median() * 1e3 if len(ok) else np.nan
        row["tok/s"] = _ratio(ok["new_tokens"], ok["e2e_s"])
        row["note"] = group["error"].dropna().iloc[0] if row["status"] in ("skipped", "failed") else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _cell_status(group: pd.DataFrame) -> str:
    statuses = set(group["status"])
    for status in ("failed", "skipped"):
        if status in statuses:
            return status
    return "ok" if "ok" in statuses else "error"


def _ratio(numerator: pd.Series, denominator: pd.Series) -> float:
    total = denominator.sum(min_count=1)
    return float(numerator.sum() / total) if total and not pd.isna(total) else np.nan


def _mean_or_nan(values) -> float:
    return float(np.mean(values)) if values is not None and len(values) else np.nan
