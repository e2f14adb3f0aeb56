"""Record tables with known values, written as a sweep writes them, for the report's tests.

Rows go through `harness.records.to_table` (the real schema); columns that other parts of the
harness are adding (concurrency, cell_duration_s, gpu_energy_j, hw_price_per_gpu_hour, ...) and that
the schema does not have yet are appended as extra Arrow columns, the way a newer file carries
them, so the same helper keeps working once they land in harness.records. Each file is one cell:
rows without a `cell_key` get the file's name as theirs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from harness.records import COLUMN_NAMES, SCHEMA_VERSION, to_table

STARTED = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)


def base_row(**cell) -> dict:
    """The identity and environment columns of a cell (override any with keyword arguments)."""
    row = dict(schema_version=SCHEMA_VERSION, sweep="synthetic", cell_key=None, status="ok", model="qwen3-8b",
               model_source="test", model_family="qwen3", model_dtype="bfloat16", mode="ar", temperature=0.0,
               batch_size=1, runner="reference", hardware="h100", hardware_detected="NVIDIA H100 80GB HBM3",
               context="natural", context_tokens=0, task="gsm8k", task_version="1", seed=0, timing_only=False,
               max_new_tokens=256, env_python="3.11.7", env_torch="2.13.0", env_transformers="5.24.0",
               env_gpu_name="NVIDIA H100 80GB HBM3", env_driver="570.1", env_cuda="12.8", env_git_sha="abc123",
               env_git_dirty=False, env_host="node1", env_cpu="x86", env_platform="Linux", started_at=STARTED)
    row.update(cell)
    return row


def sample_row(cell: dict, i: int, *, new_tokens: int, forwards: dict[str, int], e2e_s: float, ttft_s: float,
               correct: bool | None, repetition: int = 0, vendor_nfe: int | None = None,
               tokens_untrimmed: int | None = None, accept_lengths: list[int] | None = None,
               output: list[int] | None = None, **extra) -> dict:
    row = dict(cell)
    row.update(sample_id=f"s{i:03d}", repetition=repetition, prompt_tokens=row.get("prompt_tokens", 50),
               new_tokens=new_tokens, tokens_untrimmed=tokens_untrimmed, finish_reason="length",
               output_token_ids=output if output is not None else [i] * 3, e2e_s=e2e_s, ttft_s=ttft_s,
               correct=correct, vendor_nfe=vendor_nfe if vendor_nfe is not None else sum(forwards.values()),
               accept_lengths=accept_lengths)
    for kind, count in forwards.items():
        row[f"forwards_{kind}"] = count
        row[f"query_tokens_{kind}"] = count * (50 if kind == "prefill" else 32)
    row.update(extra)
    return row


def write_cell(folder: Path, name: str, rows: list[dict]) -> Path:
    """One cell's parquet file: schema columns through to_table, newer columns appended."""
    rows = [{**r, "cell_key": r.get("cell_key") or name} for r in rows]
    known = [{k: v for k, v in r.items() if k in COLUMN_NAMES} for r in rows]
    table = to_table(known)
    extras = sorted({k for r in rows for k in r} - set(COLUMN_NAMES))
    for name_ in extras:
        table = table.append_column(name_, pa.array([r.get(name_) for r in rows]))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    pq.write_table(table, path)
    return path
