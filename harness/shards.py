"""Sharded cells: one cell's samples split over N jobs, merged back into one cell by the store.

A shard is (cell_key, i/N), 0-based like SLURM array indices: `task.shard=2/4` runs the third of
four. The shard spec is not part of the cell key (harness.cell.NOT_IDENTITY), so every shard of a
cell, and the unsharded run of it, share one key. `runner.shards=N` asks the sweep to expand the
cell into N shard jobs (`expand_shard_jobs`); a job with `runner.shards=N` and no `task.shard`
runs its N shards one after another in its own process.

Which samples a shard takes (`shard_samples`): the cell's full, deterministic sample list is built
first (harness.prompts.build_samples), then cut into the runner's batches of `mode.batch_size`
fitted samples, and each shard takes a contiguous run of whole batches. Every batch of a sharded
cell is therefore a batch of the unsharded run: the same prompts padded together, the same seed
(the reference runner seeds a batch from its first sample's id), so the same tokens.

Files: an unsharded cell is ``<label>-<key>.parquet``; shard i of N is
``<label>-<key>.shard<i>of<N>.parquet`` beside it, written through the same atomic write path.
A shard is complete when its file is (harness.store.ResultStore.is_complete's rule per file); a
cell when its unsharded file is, or all N shard files of one N are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

SHARD_OVERRIDE = "task.shard"
SHARDS_OVERRIDE = "runner.shards"
METADATA_KEY = "dlm_bench_shard"  # file metadata: "i/N"
_SPEC = re.compile(r"(\d+)/(\d+)")
_FILE = re.compile(r"^(?P<stem>.*)-(?P<key>[^-.]+?)(?:\.shard(?P<index>\d+)of(?P<count>\d+))?\.parquet$")


@dataclass(frozen=True, order=True)
class Shard:
    index: int  # 0-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def suffix(self) -> str:
        return f".shard{self.index}of{self.count}"


def parse_shard(spec: str, key: str = SHARD_OVERRIDE) -> Shard:
    """'i/N' -> Shard; ValueError naming the key and the valid form otherwise."""
    match = _SPEC.fullmatch(str(spec).strip())
    if not match:
        raise ValueError(f"{key}: {spec!r} is not a shard; write i/N with 0 <= i < N, e.g. 0/4 (the first of four)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"{key}: {spec!r} is out of range; i/N needs N >= 1 and 0 <= i < N (0-based, like SLURM arrays)")
    return Shard(index, count)


def all_shards(count: int) -> list[Shard]:
    return [Shard(i, count) for i in range(count)]


def batch_units(samples: Sequence, batch_size: int, fitted: Callable[[object], bool]) -> list[int]:
    """For each sample, the index of the runner's batch it belongs to.

    The runner batches the fitted samples in order, `batch_size` at a time; a sample that cannot be
    fitted (an error row, never decoded) goes with the batch of the next fitted sample, or the last
    batch when none follows.
    """
    units, seen = [], 0
    n_batches = max(1, -(-sum(1 for s in samples if fitted(s)) // batch_size))
    for sample in samples:
        units.append(min(seen // batch_size, n_batches - 1))
        seen += bool(fitted(sample))
    return units


def shard_batches(n_batches: int, shard: Shard) -> range:
    """The contiguous batches shard i of N takes: sizes differ by at most one, earlier shards larger."""
    base, extra = divmod(n_batches, shard.count)
    start = shard.index * base + min(shard.index, extra)
    return range(start, start + base + (shard.index < extra))


def shard_samples(samples: Sequence, batch_size: int, shard: Shard | None, fitted: Callable[[object], bool]) -> list:
    """The samples of one shard, in the unsharded order; all of them for no shard. A shard beyond
    the cell's batch count takes none (its file holds no rows and still counts as complete)."""
    if shard is None or shard.count == 1:
        return list(samples)
    units = batch_units(samples, batch_size, fitted)
    taken = shard_batches(max(units, default=-1) + 1, shard)
    return [s for s, unit in zip(samples, units) if unit in taken]


# ---- the sweep: one job per shard ----------------------------------------------------------------

def override_value(job: Sequence[str], key: str) -> str | None:
    """The value a job's overrides give `key` (the last one wins, as in Hydra), or None."""
    value = None
    for override in job:
        name, sep, rest = override.lstrip("+~").partition("=")
        if sep and name == key:
            value = rest
    return value


def expand_shard_jobs(jobs: Sequence[Sequence[str]], shards_of: Callable[[Sequence[str]], int]) -> list[list[str]]:
    """Each job whose cell has `runner.shards` = N > 1 (`shards_of(job)`, from its composed config)
    and no explicit `task.shard` becomes N jobs, `task.shard=0/N` .. `task.shard=N-1/N`, in place."""
    expanded = []
    for job in jobs:
        count = 1 if override_value(job, SHARD_OVERRIDE) not in (None, "null") else shards_of(job)
        if count <= 1:
            expanded.append(list(job))
        else:
            expanded += [[*job, f"{SHARD_OVERRIDE}={shard}"] for shard in all_shards(count)]
    return expanded


# ---- the store: which files hold a cell ----------------------------------------------------------

@dataclass(frozen=True)
class CellFile:
    path: Path
    key: str
    shard: Shard | None


def parse_cell_file(path: Path) -> CellFile | None:
    """A store file name -> its cell key and shard (None: not a cell file name)."""
    match = _FILE.match(path.name)
    if not match:
        return None
    shard = Shard(int(match["index"]), int(match["count"])) if match["index"] is not None else None
    return CellFile(path, match["key"], shard)


def shard_file_name(unsharded: Path, shard: Shard | None) -> Path:
    return unsharded if shard is None else unsharded.with_name(unsharded.name[: -len(".parquet")] + shard.suffix + ".parquet")


def cell_files(root: Path, cell_key: str) -> list[CellFile]:
    """Every file of one cell under a sweep folder: the unsharded one and any shard files."""
    found = (parse_cell_file(p) for p in sorted(root.glob(f"*-{cell_key}*.parquet")))
    return [f for f in found if f is not None and f.key == cell_key]


def shard_sets_problems(files: Sequence[CellFile]) -> list[str]:
    """What is wrong with one cell's files (for validate): empty when they hold it once."""
    unsharded = [f for f in files if f.shard is None]
    counts = sorted({f.shard.count for f in files if f.shard is not None})
    key = files[0].key if files else "?"
    problems = []
    if len(unsharded) > 1:
        problems.append(f"cell {key} has two files: {unsharded[0].path.name} and {unsharded[1].path.name}")
    if unsharded and counts:
        problems.append(f"cell {key} has an unsharded file ({unsharded[0].path.name}) and shard files of "
                        f"{'/'.join(map(str, counts))} shards: its samples are counted twice; remove one")
    if len(counts) > 1:
        problems.append(f"cell {key} has shard files of {' and '.join(map(str, counts))} shards: its samples are "
                        "counted twice; remove one set")
    return problems


def missing_shards(files: Sequence[CellFile]) -> list[Shard]:
    """Shards of a sharded cell with no file (the cell is incomplete: its report counts are partial)."""
    have = {f.shard for f in files if f.shard is not None}
    counts = {s.count for s in have}
    return [s for count in sorted(counts) for s in all_shards(count) if s not in have]


def shard_complete(store, cell_key: str, shard: Shard | None) -> bool:
    """Whether a job for (cell, shard) has nothing left to do: its own file is complete, or the
    cell is complete in another form (unsharded, or every shard of one N)."""
    if shard is not None and store.is_complete(cell_key, shard):
        return True
    if store.is_complete(cell_key):
        return True
    counts = {f.shard.count for f in cell_files(store.root, cell_key) if f.shard is not None}
    return any(all(store.is_complete(cell_key, s) for s in all_shards(n)) for n in sorted(counts))


def retire_superseded(store, cell_key: str, written: Shard | None) -> list[Path]:
    """After a complete write, set aside (the store's hidden `.superseded-` rename, never a delete)
    the cell's files that now hold its samples twice: shard files once an unsharded file is
    complete, and the unsharded file and other shard sets once every shard of this N is. Until then
    the old form stays (a rerun that fails loses nothing). Returns the set-aside paths."""
    files = cell_files(store.root, cell_key)
    if written is None:
        if not store.is_complete(cell_key):
            return []
        stale = [f.path for f in files if f.shard is not None]
    else:
        if not all(store.is_complete(cell_key, s) for s in all_shards(written.count)):
            return []
        stale = [f.path for f in files if f.shard is None or f.shard.count != written.count]
    form = "unsharded" if written is None else f"{written.count} shards"
    moved = [store.set_aside(path, "superseded", f"cell {cell_key} is complete as {form}") for path in stale]
    return [path for path in moved if path is not None]
