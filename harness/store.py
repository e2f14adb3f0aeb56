"""The results store: one parquet file per cell under ``<results_dir>/<sweep>/``.

Files are written atomically (a hidden temporary name in the same folder, fsync, then rename),
so a killed run never leaves a half-written file and a reader never sees one. Hidden and
``_``-prefixed entries (temporary files, ``_logs``, ``_report``, ``_hydra``) are ignored by
pandas / pyarrow, so ``pandas.read_parquet(<results_dir>/<sweep>)`` returns exactly the records.
A cell is complete when its file exists. A sharded cell has a file per shard beside it
(harness/shards.py: names, completeness, the merge).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.records import SCHEMA, SCHEMA_VERSION, to_table
from harness.shards import METADATA_KEY as SHARD_METADATA_KEY
from harness.shards import Shard, shard_file_name


class ResultStore:
    def __init__(self, results_dir: str | os.PathLike, sweep: str):
        self.root = Path(results_dir) / sweep

    def cell_file(self, cell_key: str, label: str, shard: Shard | None = None) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label)
        return shard_file_name(self.root / f"{safe}-{cell_key}.parquet", shard)

    def find_cell(self, cell_key: str, shard: Shard | None = None) -> Path | None:
        suffix = shard.suffix if shard is not None else ""
        matches = sorted(self.root.glob(f"*-{cell_key}{suffix}.parquet"))
        return matches[0] if matches else None

    def is_complete(self, cell_key: str, shard: Shard | None = None) -> bool:
        """A cell is complete once its file exists and it did not fail as a whole.

        A `failed` cell (the model would not load, the server died) is retried by the next run;
        a `skipped` one (the combination cannot run) is not: rerunning it changes nothing. Except
        a cell skipped because its engine build cannot serve it (`engine_build_required` set on
        the skipped row): installing that build changes everything, and re-probing takes seconds.
        """
        path = self.find_cell(cell_key, shard)
        if path is None:
            return False
        names = set(pq.read_schema(path).names)
        table = pq.read_table(path, columns=[c for c in ("status", "engine_build_required") if c in names])
        statuses = set(table.column("status").to_pylist())
        if statuses == {"skipped"} and "engine_build_required" in names:
            return all(build is None for build in table.column("engine_build_required").to_pylist())
        return statuses != {"failed"}

    def write_cell(self, cell_key: str, label: str, rows: list[dict], metadata: dict[str, str] | None = None,
                   shard: Shard | None = None) -> Path:
        table = to_table(rows)
        meta = {**(table.schema.metadata or {}), b"dlm_bench_schema_version": SCHEMA_VERSION.encode()}
        meta.update({k.encode(): v.encode() for k, v in (metadata or {}).items()})
        if shard is not None:
            meta[SHARD_METADATA_KEY.encode()] = str(shard).encode()
        table = table.replace_schema_metadata(meta)
        path = self.cell_file(cell_key, label, shard)
        atomic_write_parquet(table, path)
        return path

    def read(self) -> pd.DataFrame:
        return read_results(self.root)


def atomic_write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Every record under a sweep folder (or a folder of sweeps), as one tidy DataFrame."""
    files = sorted(p for p in Path(path).rglob("*.parquet") if not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
    if not files:
        return SCHEMA.empty_table().to_pandas()
    tables = [pq.read_table(f) for f in files]
    return pa.concat_tables(tables, promote_options="default").to_pandas()
