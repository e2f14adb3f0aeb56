"""Serving figures of engine cells in `vllm bench serve`'s form (vllm/benchmarks/serve.py): mean,
median, p90 and p99 of each latency over requests, and the cell's throughputs.

  TTFT               request start -> first output-bearing stream chunk
  ITL                gaps between consecutive output-bearing chunks, pooled over all requests
                     (one gap per chunk: a multi-token chunk is one gap)
  TPOT               per request (E2E - TTFT) / (output tokens - 1), requests with > 1 token only
  E2E                request start -> last output-bearing chunk
  output throughput  sum(output tokens) / cell duration        (tokens/s, all requests together)
  request throughput completed requests / cell duration         (requests/s)
  cell duration      first request sent -> last response finished
The per-request figures (TPOT, each request's share of the duration) are `harness.figures.derive`'s,
the same the report aggregates; this only summarises them the way vLLM prints them, in ms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.figures import derive
from harness.records import CELL_IDENTITY

PERCENTILES = {"median": 50, "p90": 90, "p99": 99}


def _stats(name: str, values_s) -> dict:
    values = np.asarray([v for v in values_s if v is not None and not pd.isna(v)], dtype=float) * 1e3
    if values.size == 0:
        return {f"{stat}_{name}_ms": np.nan for stat in ("mean", *PERCENTILES)}
    out = {f"mean_{name}_ms": float(values.mean())}
    out.update({f"{stat}_{name}_ms": float(np.percentile(values, q)) for stat, q in PERCENTILES.items()})
    return out


def cell_metrics(records: pd.DataFrame) -> pd.DataFrame:
    """One row per engine cell (rows with a `cell_duration_s`), its serving figures."""
    if records.empty or "cell_duration_s" not in records:
        return pd.DataFrame()
    engine = derive(records[records["cell_duration_s"].notna()])
    rows = []
    for cell_key, cell in engine.groupby("cell_key", sort=True):
        ok = cell[cell["status"] == "ok"]
        first = cell.iloc[0]
        duration = float(first["cell_duration_s"])
        output_tokens = int(ok["new_tokens"].sum())
        held = ok["gpu_seconds"].sum()  # the requests' shares of the duration: the duration itself
        row = {"cell_key": cell_key, **{k: first.get(k) for k in CELL_IDENTITY if k in cell},
               "completed": len(ok), "failed": int((cell["status"] != "ok").sum()), "duration_s": duration,
               "output_tokens": output_tokens, "output_throughput": output_tokens / held if held else np.nan,
               "request_throughput": len(ok) / duration if duration else np.nan}
        row.update(_stats("ttft", ok["ttft_s"]))
        row.update(_stats("tpot", ok["tpot_s"]))
        row.update(_stats("itl", [gap for gaps in ok["itl_s"].dropna() for gap in gaps]))
        row.update(_stats("e2e", ok["e2e_s"]))
        rows.append(row)
    return pd.DataFrame(rows)
