"""Serving figures of engine cells, derived from raw per-request records as `vllm bench serve`
defines them (vllm/benchmarks/serve.py):

  TTFT               request start -> first output-bearing stream chunk
  ITL                gaps between consecutive output-bearing chunks, pooled over all requests
                     (one gap per chunk: a multi-token chunk is one gap)
  TPOT               per request (E2E - TTFT) / (output tokens - 1), requests with > 1 token only
  E2E                request start -> last output-bearing chunk
  output throughput  sum(output tokens) / cell duration        (tokens/s, all requests together)
  request throughput completed requests / cell duration         (requests/s)
  cell duration      first request sent -> last response finished
Each latency is reported as mean, median, p90 and p99 over requests (ITL: over gaps), in ms.
Pure functions over records; nothing here is stored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.metrics import CELL_COLUMNS

PERCENTILES = {"median": 50, "p90": 90, "p99": 99}


def _stats(name: str, values_s) -> dict:
    values = np.asarray([v for v in values_s if v is not None and not pd.isna(v)], dtype=float) * 1e3
    if values.size == 0:
        return {f"{stat}_{name}_ms": np.nan for stat in ("mean", *PERCENTILES)}
    out = {f"mean_{name}_ms": float(values.mean())}
    out.update({f"{stat}_{name}_ms": float(np.percentile(values, q)) for stat, q in PERCENTILES.items()})
    return out


def request_tpot_s(rows: pd.DataFrame) -> pd.Series:
    return ((rows["e2e_s"] - rows["ttft_s"]) / (rows["new_tokens"] - 1)).where(rows["new_tokens"] > 1)


def cell_metrics(records: pd.DataFrame) -> pd.DataFrame:
    """One row per engine cell (rows with a `cell_duration_s`), its serving figures."""
    if records.empty or "cell_duration_s" not in records:
        return pd.DataFrame()
    engine = records[records["cell_duration_s"].notna()]
    rows = []
    for cell_key, cell in engine.groupby("cell_key", sort=True):
        ok = cell[cell["status"] == "ok"]
        first = cell.iloc[0]
        duration = float(first["cell_duration_s"])
        output_tokens = int(ok["new_tokens"].sum())
        row = {"cell_key": cell_key, **{k: first.get(k) for k in CELL_COLUMNS if k in cell}, "concurrency": first.get("concurrency"),
               "completed": len(ok), "failed": int((cell["status"] != "ok").sum()), "duration_s": duration,
               "output_tokens": output_tokens, "output_throughput": output_tokens / duration if duration else np.nan,
               "request_throughput": len(ok) / duration if duration else np.nan}
        row.update(_stats("ttft", ok["ttft_s"]))
        row.update(_stats("tpot", request_tpot_s(ok)))
        row.update(_stats("itl", [gap for gaps in ok["itl_s"].dropna() for gap in gaps]))
        row.update(_stats("e2e", ok["e2e_s"]))
        rows.append(row)
    return pd.DataFrame(rows)
