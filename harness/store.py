"""The results store: one parquet file per cell under ``<results_dir>/<sweep>/``.

Files are written atomically (a hidden temporary name in the same folder, fsync, then rename),
so a killed run never leaves a half-written file and a reader never sees one. Hidden and
``_``-prefixed entries (temporary files, set-aside files, ``_logs``, ``_report``, ``_hydra``) are
ignored by pandas / pyarrow, so ``pandas.read_parquet(<results_dir>/<sweep>)`` returns exactly the
records. A cell is complete when its file exists, reads, and did not fail as a whole.

Files are created with the permissions the umask allows (as `open` would), not mkstemp's 0600, so
a team sharing the results folder can read them.

A file that cannot be read (truncated, garbage) is never deleted: the run that finds it renames it
to ``.<name>.corrupt-<UTC time>`` (hidden from every reader), logs that, and reruns the cell. A
complete file that a newer version of the same cell (the same configuration with another checkpoint,
data file or task version: `harness.cell`) replaced is renamed ``.<name>.superseded-<UTC time>`` once
the replacement is complete. `set_aside_files` lists both kinds for the end-of-sweep summary.
harness/README.md ("Results store and cell keys") has the rules.
A sharded cell has a file per shard beside it (harness/shards.py: names, completeness, the merge).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.records import COLUMN_NAMES, SCHEMA, SCHEMA_VERSION, to_table
from harness.shards import METADATA_KEY as SHARD_METADATA_KEY
from harness.shards import Shard, parse_cell_file, shard_file_name

log = logging.getLogger("dlm-bench")

KNOWN_MAJOR = SCHEMA_VERSION.split(".")[0]
SET_ASIDE_KINDS = ("corrupt", "superseded")
# A hidden temporary is `.<final name>.<host>.<pid>.<random>.tmp`: the process that writes it is
# named in it, so another process can tell a live write from one a kill left behind.
_TMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.[^.]+\.tmp$")
# Temporaries whose owner cannot be checked (written on another host of a shared file system, or by
# an older harness without the owner in the name) are stale after this long without a write: one
# cell's file is written in seconds, and the writer touches it throughout.
STALE_TMP_AGE_S = 3600.0


@dataclass(frozen=True)
class CellState:
    """What the store holds for one cell key."""

    path: Path
    statuses: frozenset[str]
    complete: bool
    env_git_sha: str | None  # harness commit the rows were recorded at
    model_revision: str | None


@dataclass(frozen=True)
class SetAside:
    path: Path  # the hidden file it is now
    original: str  # the file name it had
    kind: str  # corrupt | superseded
    when: dt.datetime  # when it was set aside (UTC)


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

    def inspect(self, cell_key: str, shard: Shard | None = None) -> CellState | None:
        """The cell's (or its shard's) file and what it holds; None when there is none. A file that
        cannot be read is set aside (renamed, never deleted) and the cell counts as absent."""
        while True:
            path = self.find_cell(cell_key, shard)
            if path is None:
                return None
            try:
                before = path.stat().st_ino
                return _read_state(path)
            except FileNotFoundError:
                continue  # replaced or set aside by a concurrent run between the glob and the read
            except Exception as exc:
                try:
                    if path.stat().st_ino != before:
                        continue  # a concurrent run replaced it atomically: read the new one
                except FileNotFoundError:
                    continue
                self.set_aside(path, "corrupt", f"unreadable parquet ({type(exc).__name__}: {exc})")
                if path.exists():
                    return None  # it could not be renamed (a read-only folder): absent all the same

    def is_complete(self, cell_key: str, shard: Shard | None = None) -> bool:
        """A cell is complete once its file exists, reads, and it did not fail as a whole.

        A `failed` cell (the model would not load, the server died) is retried by the next run;
        a `skipped` one (the combination cannot run) is not: rerunning it changes nothing. Except
        a cell skipped because its engine build cannot serve it (`engine_build_required` set on
        the skipped row): installing that build changes everything, and re-probing takes seconds.
        """
        state = self.inspect(cell_key, shard)
        return state is not None and state.complete

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

    def set_aside(self, path: Path, kind: str, reason: str) -> Path | None:
        """Rename `path` to a hidden `.<name>.<kind>-<UTC time>` beside it; None if it is gone already."""
        assert kind in SET_ASIDE_KINDS, kind
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        target = path.with_name(f".{path.name}.{kind}-{stamp}")
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None  # another run set it aside (or replaced it) first
        except OSError as exc:
            log.error("cannot set aside %s cell file %s (%s): %s", kind, path.name, reason, exc)
            return None
        from harness import progress

        progress.attach_sweep_log(self.root)  # the folder took a rename, so it takes the log too
        log.warning("set aside %s cell file %s as %s: %s", kind, path.name, target.name, reason)
        return target

    def supersede(self, config_key: str, keep_key: str) -> list[Path]:
        """Set aside every other version of the configuration `config_key` (cell keys that start
        with it), once the version `keep_key` is complete."""
        moved = []
        for path in sorted(self.root.glob(f"*-{config_key}*.parquet")):
            named = parse_cell_file(path)  # shard files of keep_key are the cell itself
            key = named.key if named is not None else path.stem.rsplit("-", 1)[-1]
            if key != keep_key and key.startswith(config_key):
                target = self.set_aside(path, "superseded", f"cell {keep_key} replaces it (same configuration; "
                                        "checkpoint, data or task version changed)")
                if target is not None:
                    moved.append(target)
        return moved

    def clean_temporaries(self) -> list[Path]:
        """Remove hidden temporaries that kills left behind; see `stale_temporary` for the rule."""
        removed = []
        if not self.root.is_dir():
            return removed
        for path in self.root.glob(".*.tmp"):
            if stale_temporary(path):
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:  # a read-only folder: the readers ignore it anyway
                    log.warning("cannot remove the stale temporary %s: %s", path.name, exc)
                    continue
                removed.append(path)
                log.info("removed a temporary file a killed run left: %s", path.name)
        return removed

    def read(self) -> pd.DataFrame:
        return read_results(self.root)


def _read_state(path: Path) -> CellState:
    schema = pq.read_schema(path)
    names = set(schema.names)
    wanted = [c for c in ("status", "engine_build_required", "env_git_sha", "model_revision") if c in names]
    table = pq.read_table(path, columns=wanted)
    statuses = frozenset(table.column("status").to_pylist()) if "status" in names else frozenset()
    if statuses == {"skipped"} and "engine_build_required" in names:
        complete = all(build is None for build in table.column("engine_build_required").to_pylist())
    else:
        # a shard past the cell's last batch holds no rows and is complete all the same
        empty_shard = not statuses and SHARD_METADATA_KEY.encode() in (schema.metadata or {})
        complete = (bool(statuses) or empty_shard) and statuses != {"failed"}

    def first(column: str) -> str | None:
        return table.column(column)[0].as_py() if column in names and table.num_rows else None

    return CellState(path, statuses, complete, first("env_git_sha"), first("model_revision"))


def stale_temporary(path: Path, now: float | None = None) -> bool:
    """A hidden temporary is stale when the process named in it (on this host) is not running, or,
    when that cannot be checked, when nothing has written to it for `STALE_TMP_AGE_S`."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    match = _TMP_PATTERN.match(path.name)
    if match and match["host"] == _host():
        return not _pid_running(int(match["pid"]))
    return age > STALE_TMP_AGE_S


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


@lru_cache(maxsize=1)
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname()) or "host"


def file_mode() -> int:
    """0666 less the process's umask: the mode `open` gives a new file (mkstemp's is 0600)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux reports the umask in /proc; elsewhere it can only be read by setting it (and back).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write(path: Path, write, mode: str = "wb") -> None:
    """Write `path` through `write(handle)` into a hidden temporary beside it, fsync, rename: readers
    see the old file or the new one, never a part. The file gets the umask's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            write(handle)
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


def atomic_write_parquet(table: pa.Table, path: Path) -> None:
    atomic_write(path, lambda handle: pq.write_table(table, handle))


def check_schema(name: str, schema: pa.Schema, extra_columns: bool = False) -> list[str]:
    """Problems that keep a file's records out of a results table: a schema version this harness
    does not read, columns of another type than the schema's, and (unless `extra_columns`: readers
    tolerate them, validate does not) columns outside the schema. One check for the store's readers,
    validate and the report."""
    problems = []
    version = (schema.metadata or {}).get(b"dlm_bench_schema_version", b"?").decode()
    if version.split(".")[0] != KNOWN_MAJOR:
        problems.append(f"{name}: schema version {version}, this harness reads {KNOWN_MAJOR}.x")
    extra = set(schema.names) - set(COLUMN_NAMES)
    if extra and not extra_columns:
        problems.append(f"{name}: columns outside the schema: {sorted(extra)}")
    mistyped = [f"{f.name} is {f.type} (the schema says {SCHEMA.field(f.name).type})" for f in schema
                if f.name in SCHEMA.names and f.type != SCHEMA.field(f.name).type and f.type != pa.null()]
    if mistyped:
        problems.append(f"{name}: column types differ from the schema: {'; '.join(mistyped)}")
    return problems


def check_file(path: Path, extra_columns: bool = False) -> tuple[pa.Schema | None, list[str]]:
    """The file's schema and its problems (`check_schema`, or why it does not read at all)."""
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        return None, [f"{path.name}: unreadable parquet ({type(exc).__name__}: {exc}); the next run of its cell "
                      "sets it aside and reruns the cell"]
    return schema, check_schema(path.name, schema, extra_columns)


def result_files(path: str | os.PathLike) -> list[Path]:
    """The cell files under a sweep folder (or a folder of sweeps): hidden and `_` entries excluded."""
    root = Path(path)
    return sorted(p for p in root.rglob("*.parquet") if not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Every record under a sweep folder (or a folder of sweeps), as one tidy DataFrame.

    A file that does not read, or that `check_schema` refuses (another major schema version,
    mistyped columns; extra columns are read), is left out with a warning naming it and why; the messages are also in
    ``frame.attrs["left_out"]``."""
    tables, left_out = [], []
    for file in result_files(path):
        schema, problems = check_file(file, extra_columns=True)
        if not problems:
            try:
                tables.append(pq.read_table(file))
            except Exception as exc:
                problems = [f"{file.name}: unreadable parquet ({type(exc).__name__}: {exc})"]
        for problem in problems:
            log.warning("records of %s left out: %s", file, problem)
        left_out += problems
    frame = (pa.concat_tables(tables, promote_options="default") if tables else SCHEMA.empty_table()).to_pandas()
    frame.attrs["left_out"] = left_out
    return frame


KEPT_FAILURES = "_logs/kept-failures"


def note_kept_failure(folder: str | os.PathLike, cell_key: str, label: str, reason: str) -> Path:
    """A rerun of a complete cell that failed writes no row (the complete file stays), so its failure
    is noted here, one small JSON file per cell, for the run's exit status (`kept_failures`)."""
    path = Path(folder) / KEPT_FAILURES / f"{cell_key}.json"
    note = json.dumps({"cell_key": cell_key, "label": label, "reason": reason, "at": time.time()})
    atomic_write(path, lambda handle: handle.write(note), mode="w")
    return path


def kept_failures(folder: str | os.PathLike, cell_keys: list[str], since: float) -> list[tuple[str, str]]:
    """(label, reason) of the given cells whose rerun failed at or after `since` (epoch seconds)."""
    found = []
    for key in cell_keys:
        path = Path(folder) / KEPT_FAILURES / f"{key}.json"
        try:
            note = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if note.get("at", 0) >= since:
            found.append((f"{note['label']} (rerun failed; its complete file was kept)", note.get("reason", "")))
    return found


def set_aside_files(folder: str | os.PathLike, since: float | None = None) -> list[SetAside]:
    """Files set aside in a sweep folder (corrupt or superseded), oldest first; `since` (epoch
    seconds) keeps those set aside at or after it, e.g. by this run."""
    found = []
    pattern = re.compile(rf"^\.(?P<name>.+)\.(?P<kind>{'|'.join(SET_ASIDE_KINDS)})-(?P<when>\d{{8}}T\d{{6}}\.\d{{6}})Z$")
    for path in Path(folder).glob(".*"):
        match = pattern.match(path.name)
        if not match:
            continue
        when = dt.datetime.strptime(match["when"], "%Y%m%dT%H%M%S.%f").replace(tzinfo=dt.timezone.utc)
        if since is None or when.timestamp() >= since:
            found.append(SetAside(path, match["name"], match["kind"], when))
    return sorted(found, key=lambda s: s.when)
