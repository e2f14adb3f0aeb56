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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from harness.config import TaskConfig
from harness.tasks.base import Provenance

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
SAVE_TO_DISK_MARKERS = ("dataset_dict.json", "state.json")


class DatasetError(ValueError):
    """The configured data cannot be read; the message says what was tried and what to set."""


@dataclass(frozen=True)
class HubDataset:
    path: str  # hub id
    config: str | None  # dataset config ("main", "sanitized", ...)
    split: str
    revision: str  # pinned commit: the data every published number was computed on


_CACHE: dict[tuple, tuple[list[dict], Provenance]] = {}


def load_rows(cfg: TaskConfig, hub: HubDataset, split: str | None = None) -> tuple[list[dict], Provenance]:
    """Rows of `split` (default: task.split, else the hub default) and where they came from.

    Loads are cached per process (a task asks for its rows and for their provenance separately);
    a local file that changed since is read again."""
    split = split or cfg.split or hub.split
    source = cfg.source
    local = source is not None and _looks_local(source)
    stamp = _stamp(Path(source).expanduser()) if local else None
    key = (source, cfg.revision, hub, split, stamp)
    if key not in _CACHE:
        _CACHE[key] = _load_local(source, hub, split) if local else _load_hub(cfg, hub, split)
    return _CACHE[key]


def _stamp(path: Path) -> tuple | None:
    if not path.exists():
        return None
    members = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in members)


def _load_local(source: str, hub: HubDataset, split: str) -> tuple[list[dict], Provenance]:
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"task.source: {source} does not exist (a local .jsonl/.json/.parquet file or a dataset folder)")
    files = _files_for_split(path.resolve(), hub.config, split)
    rows = [row for file in files for row in _read_file(file)]
    if not rows:
        raise DatasetError(f"task.source: {source} holds no rows for split {split!r}")
    return rows, Provenance(source=str(path.resolve()), revision=_sha256(files), split=_split_label(hub.config, split))


def _looks_local(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or source.endswith(DATA_SUFFIXES) or Path(source).exists()


def _split_label(config: str | None, split: str) -> str:
    return f"{config}/{split}" if config else split


def _load_hub(cfg: TaskConfig, hub: HubDataset, split: str) -> tuple[list[dict], Provenance]:
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
    return loaded.to_list(), Provenance(source=path, revision=revision, split=_split_label(hub.config, split))


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


def _read_file(path: Path) -> list[dict]:
    if path.is_dir():  # a save_to_disk folder
        try:
            import datasets
        except ImportError:
            raise DatasetError(f"{path} is a datasets.save_to_disk folder; reading it needs pip install 'dlm-bench[tasks]'") from None
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            raise DatasetError(f"{path} holds several splits ({', '.join(loaded)}); point task.source at one of its split folders")
        return loaded.to_list()
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    rows = data.get("data") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise DatasetError(f"{path}: expected a JSON list of rows (or {{\"data\": [...]}})")
    return rows


def _sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        members = sorted(p for p in file.rglob("*") if p.is_file()) if file.is_dir() else [file]
        for member in members:
            digest.update(member.read_bytes())
    return f"sha256:{digest.hexdigest()[:16]}"


def require_columns(rows: list[dict], columns: tuple[str, ...], dataset: str) -> None:
    """Bad data fails with the columns it lacks and the schema the task expects."""
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise DatasetError(
            f"{dataset} rows lack column(s) {missing}; found {sorted(rows[0])}; expected the dataset's schema: {', '.join(columns)}"
        )
