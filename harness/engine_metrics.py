"""Serving figures of engine cells in `vllm bench serve`'s form (vllm/benchmarks/serve.py): mean,
median, p90 and p99 of each latency over requests, and the cell's throughputs.

  TTFT               request start -> first output-bearing stream chunk
  ITL                gaps between consecutive output-bearing chunks, pooled over all requests
                     (one gap per chunk: a multi-token chunk is one gap)             itl_s
  ITL (split)        SGLang bench_serving's: each gap divided evenly over the tokens of the
                     chunk that ends it, one value per token (the first chunk gives none) itl_split_s
  TPOT               per request (E2E - TTFT) / (output tokens - 1), requests with > 1 token only
  E2E                request start -> last output-bearing chunk
  output throughput  sum(output tokens) / cell duration        (tokens/s, all requests together)
  request throughput completed requests / cell duration         (requests/s)
  cell duration      first request sent -> last response finished
Each latency is reported as mean, median, p90 and p99 over requests (ITL: over gaps), in ms. The
two ITLs agree when every chunk carries one token; with speculative or diffusion decoding the
split one pools more, smaller values (a chunk of n tokens gives n values of gap / n). The
per-request functions below are the only place either ITL and the engines' acceptance length are
defined; the runners store what they return.
The per-request TPOT and each request's share of the duration are `harness.figures.derive`'s,
the same the report aggregates; this only summarises them the way vLLM prints them, in ms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.figures import derive
from harness.records import CELL_IDENTITY

PERCENTILES = {"median": 50, "p90": 90, "p99": 99}


def itl_per_chunk(chunk_times_s: list[float]) -> list[float]:
    """vLLM's ITL: one gap per output-bearing chunk after the first, whatever it carries."""
    return [b - a for a, b in zip(chunk_times_s, chunk_times_s[1:])]


def itl_split_per_token(chunk_times_s: list[float], chunk_tokens: list[int]) -> list[float]:
    """SGLang bench_serving's ITL: a chunk's gap split evenly over its tokens (n values of gap / n)."""
    out: list[float] = []
    for gap, tokens in zip(itl_per_chunk(chunk_times_s), chunk_tokens[1:]):
        out += [gap / tokens] * tokens
    return out


def accept_length_per_verify(verify_steps: int | None, accepted_drafts: int | None,
                             new_tokens: int | None, requests: int = 1) -> float | None:
    """Tokens emitted per verify step, the bonus token included and the prefill's first token left
    out: 1 + accepted drafts / verify steps, vLLM's `mean_acceptance_length` and the reference
    decoders' acceptance length. SGLang's own `spec_accept_length` is completion tokens / verify
    steps, the first token included; without an accepted-draft count it is normalised as
    (new tokens - 1) / verify steps (equal unless the last step was cut by max_tokens or EOS).
    Over several requests pass the sums and the request count (one first token each)."""
    if not verify_steps:
        return None
    if accepted_drafts is not None:
        return 1.0 + accepted_drafts / verify_steps
    return (new_tokens - requests) / verify_steps if new_tokens else None


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
        if "itl_split_s" in ok:
            row.update(_stats("itl_split", [gap for gaps in ok["itl_split_s"].dropna() for gap in gaps]))
        row.update(_stats("e2e", ok["e2e_s"]))
        rows.append(row)
    return pd.DataFrame(rows)
