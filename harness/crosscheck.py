"""Cross-runner consistency: does an engine decode a mode as our reference decoders do?

For an engine cell (vllm, sglang) and the reference cell of the same sweep with the same model,
mode, block length, threshold, temperature, task, context and generation limit (so the same
prompts), compare, each under its stated rule:
  tokens per forward   engine: from its counters (see each runner's `engine_counter_rule`);
                       reference: sum(new tokens) / sum(forwards excluding the prefill), since no
                       engine counts the prefill in its draft / denoising / verify counts
  acceptance length    mean tokens emitted per verify step, bonus token included
A relative difference beyond `TOLERANCE` is a mismatch: public measurements found an engine's
graph path silently drafting without the draft LoRA, and engines leaving the prefill out of
their NFE while PyTorch paths counted it. Computed when the report reads the records (never stored
at run time, so the flag does not depend on which cell ran first): `crosscheck_table`.
"""

from __future__ import annotations

import pandas as pd

from harness.contracts import ENGINE_RUNNERS
from harness.engine_metrics import accept_length_per_verify
from harness.figures import derive

TOLERANCE = 0.10  # relative: engines and the reference differ in small algorithmic details
MATCH_KEYS = ["sweep", "model", "mode", "block_length", "threshold", "temperature", "task", "task_protocol", "context",
              "max_new_tokens"]


def engine_figures(cell: pd.DataFrame) -> tuple[float | None, float | None, str]:
    """(tokens per forward, acceptance length, why none) of one engine cell's ok rows."""
    first = cell.iloc[0]
    mode = first["mode"]
    new_tokens = cell["new_tokens"].sum()
    drafts = _value(first, "engine_spec_num_drafts")
    if mode == "ar":
        if drafts or _column_sum(cell, "engine_spec_verify_ct"):
            return None, None, "engine speculative decoding (e.g. EAGLE-3) has no reference counterpart"
        return None, None, "ar emits one token per forward by construction; nothing to compare"
    if mode == "diffusion":
        steps = _value(first, "engine_diffusion_denoising_steps")
        committed = _value(first, "engine_diffusion_committed_tokens")
        if steps:
            return committed / steps, None, ""
        return None, None, "the engine reports no denoising-step counts for this cell"
    if mode == "linear_spec":
        verify = _column_sum(cell, "engine_spec_verify_ct")
        if verify:
            complete = "engine_spec_accepted_drafts" in cell and cell["engine_spec_accepted_drafts"].notna().all()
            accepted = cell["engine_spec_accepted_drafts"].sum() if complete else None
            # tokens per verify step with the prefill's first token left out, as the reference counts
            accept = accept_length_per_verify(verify, accepted, new_tokens, requests=len(cell))
            return new_tokens / verify / 2, accept, ""  # one draft + one verify forward per block
        return None, None, "the engine reports no verify-step counts for this cell"
    return None, None, f"no engine runs mode {mode}"


def reference_figures(cell: pd.DataFrame) -> tuple[float | None, float | None]:
    """sum(new tokens) / sum(forwards after the prefill), and tokens per verify step, of derived rows."""
    non_prefill = cell["forwards_after_prefill"].sum()
    tpf = cell["new_tokens"].sum() / non_prefill if non_prefill else None
    steps = cell["accept_steps"].sum()
    return tpf, (float(cell["accept_sum"].sum() / steps) if steps else None)


def crosscheck_table(records: pd.DataFrame, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """One row per engine cell: its figures, the reference's, the relative differences and a flag
    (`ok`, `mismatch: ...`, `no_reference`, `not_comparable: ...`)."""
    columns = ["cell_key", "runner", *MATCH_KEYS, "concurrency", "engine_tpf", "reference_tpf", "tpf_rel_diff",
               "engine_accept_length", "reference_accept_length", "accept_rel_diff", "tolerance", "flag"]
    if records.empty or "runner" not in records:
        return pd.DataFrame(columns=columns)
    if "forwards_after_prefill" not in records:
        records = derive(records)
    records = records.assign(**{k: None for k in MATCH_KEYS if k not in records})  # older files lack some
    ok = records[records["status"] == "ok"]
    engines = ok[ok["runner"].isin(ENGINE_RUNNERS)]
    reference = ok[ok["runner"] == "reference"]
    rows = []
    for cell_key, cell in engines.groupby("cell_key", sort=True):
        first = cell.iloc[0]
        match = reference
        for key in MATCH_KEYS:
            match = match[_same(match[key], first[key])]
        row = {"cell_key": cell_key, "runner": first["runner"], **{k: first[k] for k in MATCH_KEYS},
               "concurrency": first.get("concurrency"), "tolerance": tolerance}
        engine_tpf, engine_accept, why = engine_figures(cell)
        ref_tpf, ref_accept = reference_figures(match) if not match.empty else (None, None)
        row.update(engine_tpf=engine_tpf, reference_tpf=ref_tpf, engine_accept_length=engine_accept,
                   reference_accept_length=ref_accept, tpf_rel_diff=_rel(engine_tpf, ref_tpf),
                   accept_rel_diff=_rel(engine_accept, ref_accept))
        if match.empty:
            row["flag"] = "no_reference"
        elif set(match["sample_id"]) != set(cell["sample_id"]):
            row["flag"] = "not_comparable: the reference cell decoded other samples"
        elif why:
            row["flag"] = f"not_comparable: {why}"
        else:
            row["flag"] = _flag(row, tolerance)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _flag(row: dict, tolerance: float) -> str:
    problems = []
    for name, engine, ref, diff in (("TPF", row["engine_tpf"], row["reference_tpf"], row["tpf_rel_diff"]),
                                    ("acceptance length", row["engine_accept_length"], row["reference_accept_length"],
                                     row["accept_rel_diff"])):
        if diff is not None and abs(diff) > tolerance:
            problems.append(f"{name} engine {engine:.3f} vs reference {ref:.3f} ({diff:+.0%}, tolerance {tolerance:.0%})")
    return "mismatch: " + "; ".join(problems) if problems else "ok"


def _rel(engine: float | None, reference: float | None) -> float | None:
    if engine is None or reference is None or not reference:
        return None
    return float(engine / reference - 1.0)


def _same(series: pd.Series, value) -> pd.Series:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return series.isna()
    return series == value


def _value(row: pd.Series, column: str):
    value = row.get(column)
    return None if value is None or pd.isna(value) else value


def _column_sum(cell: pd.DataFrame, column: str):
    if column not in cell or cell[column].isna().all():
        return None
    return cell[column].sum()
