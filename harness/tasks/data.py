"""Dataset rows for the benchmark tasks: the Hugging Face hub at a pinned commit, or a local copy.

`task.source` unset: the task's own hub dataset at its pinned revision (`task.revision` overrides
it), through `datasets`. `task.source` set to a local path: the rows are read from it with
pyarrow/pandas (no `datasets` needed, nothing downloaded), which is how offline clusters run:

- a file: `.jsonl`, `.json` (a list of rows, or `{"data": [...]}` ) or `.parquet`; the file is the split.
- a folder: a `datasets.save_to_disk` folder (holding `dataset_dict.json` or `state.json`), or a
  folder of data files such as a hub snapshot (`main/test-00000-of-00001.parquet`): the files whose
  name starts with the split (`test`, `test-00000-of-00001`, ...), under the config's subfolder
  when there is one.

`task.source` set to anything else is taken as another hub dataset id. Every load returns its
`Provenance`: the hub id and commit, or the local path and a sha256 of the files read, so a record
says exactly which data produced it.

Every row is checked as it is read: a data error names the file and line (`path:3`, JSON lines)
or row (`path: row 7`, other files and the hub) it is about. `task.on_bad_row=skip` leaves bad
rows out instead of failing the cell; the count is recorded (`task_rows_skipped`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from harness.config import TaskConfig
from harness.tasks.base import Provenance

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
SAVE_TO_DISK_MARKERS = ("dataset_dict.json", "state.json")


log = logging.getLogger("dlm-bench")


class DatasetError(ValueError):
    """The configured data cannot be read; the message says what was tried and what to set."""


@dataclass(frozen=True)
class HubDataset:
    path: str  # hub id
    config: str | None  # dataset config ("main", "sanitized", ...)
    split: str
    revision: str  # pinned commit: the data every published number was computed on


_CACHE: dict[tuple, tuple[list[dict], Provenance]] = {}
_DIGESTS: dict[tuple, str] = {}
ON_BAD_ROW = ("fail", "skip")  # task.on_bad_row: stop at the first bad row, or leave bad rows out (counted)
BAD_ROWS_LOGGED = 5  # skipped rows logged one by one; the rest are counted


def load_rows(cfg: TaskConfig, hub: HubDataset, split: str | None = None, columns: tuple[str, ...] = (),
              dataset: str | None = None) -> tuple[list[dict], Provenance]:
    """Rows of `split` (default: task.split, else the hub default) and where they came from.

    Every row must be a mapping holding `columns`; a row that is not (a line that is no JSON, a
    missing column) fails the load naming file and line, or, with task.on_bad_row=skip, is left
    out and counted in the provenance (`rows_skipped`). Loads are cached per process (a task asks
    for its rows and for their provenance separately); a local file that changed since is read again."""
    split = split or cfg.split or hub.split
    source = cfg.source
    local = source is not None and _looks_local(source)
    stamp = _stamp(Path(source).expanduser()) if local else None
    key = (source, cfg.revision, hub, split, stamp, tuple(columns), cfg.on_bad_row)
    if key not in _CACHE:
        entries, provenance = _load_local(source, hub, split) if local else _load_hub(cfg, hub, split)
        rows, skipped = _checked_rows(entries, tuple(columns), dataset or hub.path, cfg.on_bad_row)
        if not rows:
            raise DatasetError(f"task.source: {source or hub.path} holds no usable rows for split {split!r}"
                               + (f" ({skipped} bad rows skipped)" if skipped else ""))
        _CACHE[key] = rows, dataclasses.replace(provenance, rows_skipped=skipped)
    return _CACHE[key]


def source_digest(source: str | None) -> str | None:
    """Content fingerprint of a local data source (file, or every file under a folder), part of the
    cell key; None for hub data (its revision is pinned in the configuration or the task). Cached
    per process for as long as no file's size or mtime changes."""
    if source is None or not _looks_local(source):
        return None
    path = Path(source).expanduser()
    stamp = _stamp(path)
    if stamp is None:
        return f"missing: {path}"
    if stamp not in _DIGESTS:
        _DIGESTS[stamp] = _sha256([path])
    return _DIGESTS[stamp]


def _stamp(path: Path) -> tuple | None:
    if not path.exists():
        return None
    members = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in members)


# An entry is (where, row): "path:line" for JSON lines, "path: row N" for other files and the hub,
# so that every data error names the row it is about. A row that could not be parsed is an Exception.
Entry = tuple[str, object]


def _load_local(source: str, hub: HubDataset, split: str) -> tuple[list[Entry], Provenance]:
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"task.source: {source} does not exist (a local .jsonl/.json/.parquet file or a dataset folder)")
    files = _files_for_split(path.resolve(), hub.config, split)
    entries = [entry for file in files for entry in _read_file(file)]
    return entries, Provenance(source=str(path.resolve()), revision=_sha256(files), split=_split_label(hub.config, split))


def _checked_rows(entries: list[Entry], columns: tuple[str, ...], dataset: str, on_bad_row: str) -> tuple[list[dict], int]:
    """The rows that are mappings holding every column; a bad one fails or is skipped (task.on_bad_row)."""
    rows, skipped = [], 0
    for where, row in entries:
        if isinstance(row, Exception):
            problem = str(row)
        elif not isinstance(row, dict):
            problem = f"expected a {dataset} row (a JSON object), got {type(row).__name__}"
        else:
            missing = [c for c in columns if c not in row]
            if not missing:
                rows.append(row)
                continue
            problem = (f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
                       f"{dataset} rows need: {', '.join(columns)}")
        if on_bad_row == "fail":
            raise DatasetError(f"{where}: {problem} (task.on_bad_row=skip leaves bad rows out, counted)")
        skipped += 1
        if skipped <= BAD_ROWS_LOGGED:
            log.warning("skipped bad row %s: %s", where, problem)
    if skipped:
        log.warning("%d bad %s row(s) skipped (task.on_bad_row=skip); recorded in task_rows_skipped", skipped, dataset)
    return rows, skipped


def _looks_local(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or source.endswith(DATA_SUFFIXES) or Path(source).exists()


def _split_label(config: str | None, split: str) -> str:
    return f"{config}/{split}" if config else split


def _load_hub(cfg: TaskConfig, hub: HubDataset, split: str) -> tuple[list[Entry], Provenance]:
    path = cfg.source or hub.path
    revision = cfg.revision or (hub.revision if path == hub.path else None)
    try:
        import datasets
    except ImportError:
        raise DatasetError(
            f"loading {path} from the Hugging Face hub needs the `datasets` package: "
            "pip install 'dlm-bench[tasks]' (or point task.source at a local copy)"
        ) from None
    try:
        loaded = datasets.load_dataset(path, hub.config if path == hub.path else None, split=split, revision=revision)
    except Exception as exc:
        raise DatasetError(
            f"could not load {path} (config {hub.config}, split {split}, revision {revision}) from the hub: "
            f"{type(exc).__name__}: {exc}. Offline? Download it where the hub is reachable and set task.source "
            "to the local file or folder."
        ) from None
    label = _split_label(hub.config, split)
    entries = [(f"{path} ({label}) row {n}", row) for n, row in enumerate(loaded.to_list(), 1)]
    return entries, Provenance(source=path, revision=revision, split=label)


def _files_for_split(path: Path, config: str | None, split: str) -> list[Path]:
    if path.is_file():
        if path.suffix not in DATA_SUFFIXES:
            raise DatasetError(f"task.source: {path} is not a data file; valid suffixes: {', '.join(DATA_SUFFIXES)}")
        return [path]
    if any((path / marker).exists() for marker in SAVE_TO_DISK_MARKERS):
        return [path]  # read whole by _read_file through datasets.load_from_disk
    root = path / config if config and (path / config).is_dir() else path
    candidates = sorted(p for p in root.rglob("*") if p.suffix in DATA_SUFFIXES and p.is_file())
    matching = [p for p in candidates if p.stem == split or p.stem.startswith((f"{split}-", f"{split}."))]
    if not matching:
        found = ", ".join(str(p.relative_to(path)) for p in candidates) or "no data files"
        raise DatasetError(
            f"task.source: no file for split {split!r} in {path}"
            f"{f' (config folder {config!r})' if config else ''}; found: {found}. "
            f"Name files after the split ({split}.jsonl, {split}-00000-of-00001.parquet) or point task.source at one file."
        )
    return matching


def _read_file(path: Path) -> list[Entry]:
    if path.is_dir():  # a save_to_disk folder
        try:
            import datasets
        except ImportError:
            raise DatasetError(f"{path} is a datasets.save_to_disk folder; reading it needs pip install 'dlm-bench[tasks]'") from None
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            raise DatasetError(f"{path} holds several splits ({', '.join(loaded)}); point task.source at one of its split folders")
        return [(f"{path}: row {n}", row) for n, row in enumerate(loaded.to_list(), 1)]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:
            raise DatasetError(f"{path}: unreadable parquet ({type(exc).__name__}: {exc})") from None
        return [(f"{path}: row {n}", row) for n, row in enumerate(table.to_pylist(), 1)]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc})") from None
    if path.suffix == ".jsonl":
        return [(f"{path}:{number}", _json_line(line)) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    rows = data.get("data") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise DatasetError(f"{path}: expected a JSON list of rows (or {{\"data\": [...]}})")
    return [(f"{path}: row {n}", row) for n, row in enumerate(rows, 1)]


def _json_line(line: str) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return DatasetError(f"not valid JSON: {exc.msg} (column {exc.colno})")


def _sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        members = sorted(p for p in file.rglob("*") if p.is_file()) if file.is_dir() else [file]
        for member in members:
            digest.update(member.read_bytes())
    return f"sha256:{digest.hexdigest()[:16]}"
