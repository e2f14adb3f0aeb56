"""`dlm-bench-validate <results folder>`: is this folder a sound set of records?

Checks: every parquet file reads; its schema version is one this harness knows; no column outside
the schema and every column of the schema's type (`harness.store.check_schema`, the check the
readers and the report apply too); each cell has exactly one file, or one file per shard of one
shard count (harness/shards.py); no (cell, sample, repetition) appears twice. Lists failed,
skipped and errored cells with their reasons, sharded cells with shards still to run, and files
set aside (corrupt, superseded). Exit status 0 = sound, 1 = problems.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.records import SCHEMA_VERSION
from harness.store import check_file, read_results, result_files, set_aside_files
from harness.shards import CellFile, missing_shards, parse_cell_file, shard_sets_problems


@dataclass
class Validation:
    files: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    sample_errors: int = 0
    set_aside: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # sharded cells with shards not yet written

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(folder: Path) -> Validation:
    result = Validation()
    files = result_files(folder)
    result.files = len(files)
    cells: dict[str, list[CellFile]] = {}
    for path in files:
        _, problems = check_file(path)
        result.problems += problems
        named = parse_cell_file(path) or CellFile(path, path.stem.rsplit("-", 1)[-1], None)
        cells.setdefault(named.key, []).append(named)
    for key, cell_files in cells.items():
        result.problems += shard_sets_problems(cell_files)
        missing = missing_shards(cell_files)
        if missing:
            result.incomplete.append(f"cell {key}: shard(s) {', '.join(map(str, missing))} not written yet")
    for sweep in sorted({p.parent for p in files} | {folder}):
        result.set_aside += [f"{s.path.relative_to(folder)} ({s.kind}, set aside {s.when:%Y-%m-%d %H:%M:%S} UTC)"
                             for s in set_aside_files(sweep)]
    if result.problems:
        return result
    records = read_results(folder)
    result.problems += records.attrs.get("left_out", [])  # data pages that do not read
    result.records = len(records)
    if records.empty:
        return result
    samples = records[records["sample_id"].notna()]
    duplicated = samples[samples.duplicated(["cell_key", "sample_id", "repetition"], keep=False)]
    for (key, sample, repetition), _ in duplicated.groupby(["cell_key", "sample_id", "repetition"]):
        result.problems.append(f"duplicate record: cell {key} sample {sample} repetition {repetition}")
    for row in records[records["status"].isin(["failed", "skipped"])].itertuples():
        line = f"{row.model} {row.mode} {row.task} {row.context} ({row.cell_key}): {str(row.error).strip().splitlines()[-1]}"
        (result.failed if row.status == "failed" else result.skipped).append(line)
    result.sample_errors = int((records["status"] == "error").sum())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlm-bench-validate", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a sweep folder, e.g. results/embedded")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"dlm-bench-validate: {args.results} is not a folder", file=sys.stderr)
        return 2
    v = validate(args.results)
    print(f"{args.results}: {v.files} cell files, {v.records} records, schema {SCHEMA_VERSION}")
    for title, lines in (("failed cells", v.failed), ("skipped cells", v.skipped), ("incomplete sharded cells", v.incomplete)):
        if lines:
            print(f"{len(lines)} {title}:")
            print("\n".join(f"  {line}" for line in lines))
    if v.set_aside:
        print(f"{len(v.set_aside)} file(s) set aside (hidden; not records):")
        print("\n".join(f"  {line}" for line in v.set_aside))
    if v.sample_errors:
        print(f"{v.sample_errors} sample records with status error (see the error column)")
    if v.problems:
        print(f"{len(v.problems)} problem(s):")
        print("\n".join(f"  {p}" for p in v.problems))
        return 1
    print("sound: one file per cell (or per shard of it), no duplicate records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
