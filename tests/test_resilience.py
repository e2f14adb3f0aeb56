"""Sweeps that survive: kill -9, failing cells and samples, resume, model reuse, submitit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.records import SCHEMA_VERSION
from harness.store import ResultStore, set_aside_files
from harness.validate import main as validate_main
from harness.validate import validate
from tests.conftest import REPO, run_cli


def sweep_args(checkpoint, results, *extra):
    return ["-m", "mode=ar,diffusion,linear_spec", "context=natural", "task=copy", "sweep.name=s",
            f"model.source={checkpoint}", f"results_dir={results}", *extra]


def test_sigkill_in_the_middle_of_a_cell_then_rerun_finds_every_cell_once(tmp_path, random_checkpoint):
    args = sweep_args(random_checkpoint, tmp_path, "task.num_samples=2", "runner.min_duration_s=1.5")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    folder = tmp_path / "s"
    deadline = time.time() + 300
    while not list(folder.glob("*.parquet")) and time.time() < deadline:
        time.sleep(0.2)
    first = sorted(folder.glob("*.parquet"))
    assert len(first) == 1, "the first cell never finished"
    time.sleep(1.0)  # well inside the second cell, which times each sample for 1.5 s at least
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    survivors = sorted(folder.glob("*.parquet"))
    assert len(survivors) < 3  # it really was killed mid-sweep
    before = {p.name: p.read_bytes() for p in survivors}
    assert validate(folder).ok  # what a kill leaves is readable: no half-written file

    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "already complete" in rerun.stdout + rerun.stderr
    files = sorted(folder.glob("*.parquet"))
    assert len(files) == 3
    for name, content in before.items():
        assert (folder / name).read_bytes() == content  # complete cells were not rerun
    df = pd.read_parquet(folder)
    assert df.groupby("mode")["sample_id"].nunique().to_dict() == {"ar": 2, "diffusion": 2, "linear_spec": 2}
    assert (df.groupby(["mode", "sample_id"])["repetition"].min() == 0).all()
    assert not df.duplicated(["cell_key", "sample_id", "repetition"]).any()
    assert validate_main([str(folder)]) == 0


def test_a_failing_cell_and_a_failing_sample_are_recorded_and_the_sweep_goes_on(tmp_path, random_checkpoint):
    # Cell failure: one model points at a checkpoint that does not exist. Sample failure: with a
    # 16-token context, prompts longer than 16 tokens cannot be fitted and become error records.
    result = run_cli("-m", f"model.source={random_checkpoint},{tmp_path / 'missing'}", "mode=ar,diffusion",
                     "context=natural", "task=copy", "context.input_tokens=16", "sweep.name=f", "task.num_samples=6",
                     f"results_dir={tmp_path}")
    assert result.returncode == 1  # cells failed in this run
    assert "2 cell(s) failed in this run" in result.stderr
    df = pd.read_parquet(tmp_path / "f")
    failed = df[df["status"] == "failed"]
    assert len(failed) == 2 and failed["error"].str.contains("does not exist; set model.source").all()
    good = df[df["model_source"] == str(random_checkpoint)]
    assert set(good["status"]) == {"ok", "error"}  # the other cells completed, with their failing samples
    errors = good[good["status"] == "error"]
    assert errors["error"].str.contains("more than the context's 16|exactly 16 tokens").all()
    assert errors["error"].str.contains("more than the context's 16").any()
    assert (good.loc[good["status"] == "ok", "prompt_tokens"] == 16).all()
    assert "Skipped or failed cells" in result.stdout and "failed" in result.stdout
    v = validate(tmp_path / "f")
    assert v.ok and len(v.failed) == 2 and v.sample_errors == len(errors)

    # A rerun retries the failed cells (still failing) and leaves the complete ones alone.
    again = run_cli("-m", f"model.source={random_checkpoint},{tmp_path / 'missing'}", "mode=ar,diffusion",
                    "context=natural", "task=copy", "context.input_tokens=16", "sweep.name=f", "task.num_samples=6",
                    f"results_dir={tmp_path}")
    assert again.returncode == 1 and (again.stdout + again.stderr).count("already complete") == 2
    assert len(list((tmp_path / "f").glob("*.parquet"))) == 4


def test_a_sample_over_its_time_limit_is_an_error_record(tmp_path, random_checkpoint):
    result = run_cli("sweep=single", "task=copy", "task.num_samples=2", "runner.sample_timeout_s=0.0001",
                     "runner.warmup=0", f"model.source={random_checkpoint}", f"results_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "single")
    assert (df["status"] == "error").all() and df["error"].str.contains("sample_timeout_s").all()


def test_cells_sharing_a_model_load_it_once(tmp_path, random_checkpoint):
    result = run_cli(*sweep_args(random_checkpoint, tmp_path, "task.num_samples=1"))
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert log.count("loading model") == 1
    assert "(load #1 in this process)" in log
    assert len(list((tmp_path / "s").glob("*.parquet"))) == 3


def test_force_reruns_complete_cells(tmp_path, random_checkpoint):
    args = ["sweep=single", "task.num_samples=1", f"model.source={random_checkpoint}", f"results_dir={tmp_path}"]
    assert run_cli(*args).returncode == 0
    path = next((tmp_path / "single").glob("*.parquet"))
    first = pd.read_parquet(path)["started_at"].iloc[0]
    second = run_cli(*args)
    assert "already complete" in second.stdout + second.stderr
    assert pd.read_parquet(path)["started_at"].iloc[0] == first
    forced = run_cli(*args, "--force")
    assert forced.returncode == 0 and "already complete" not in forced.stdout + forced.stderr
    assert pd.read_parquet(path)["started_at"].iloc[0] > first
    assert len(list((tmp_path / "single").glob("*.parquet"))) == 1


def test_sweep_through_the_submitit_local_executor(tmp_path, random_checkpoint):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = run_cli(*sweep_args(random_checkpoint, tmp_path, "task.num_samples=1", "launcher=local"), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ".submitit" in str(list((tmp_path / "s" / "_hydra").rglob("*"))[:50])  # jobs ran as submitit jobs
    df = pd.read_parquet(tmp_path / "s")
    assert sorted(df["mode"]) == ["ar", "diffusion", "linear_spec"] and (df["status"] == "ok").all()


def test_slurm_sweeps_are_one_hardware_profile_each(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = run_cli("-m", "launcher=slurm", "hardware=a100,h100", "model=qwen3-8b", f"results_dir={tmp_path}")
    assert result.returncode == 2
    assert "one SLURM sweep per hardware profile" in result.stderr


def test_validate_reports_duplicates_and_two_files_for_one_cell(tmp_path):
    store = ResultStore(tmp_path, "v")
    row = {"schema_version": SCHEMA_VERSION, "cell_key": "abc", "status": "ok", "sample_id": "x", "repetition": 0}
    store.write_cell("abc", "one", [row, row])
    v = validate(tmp_path / "v")
    assert not v.ok and v.problems == ["duplicate record: cell abc sample x repetition 0"]
    store.write_cell("abc", "two", [row])
    assert any("has two files" in p for p in validate(tmp_path / "v").problems)
    assert validate_main([str(tmp_path / "v")]) == 1


# --- stale, corrupt and forced cells (in-process: run_cell is what each Hydra job runs) ----------


def composed(*overrides: str):
    from hydra import compose, initialize_config_dir

    from harness.cli import CONFIG_DIR
    from harness.config import to_bench_config

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return to_bench_config(compose(config_name="config", overrides=list(overrides)))


def copied_checkpoint(source, target):
    import shutil

    return shutil.copytree(source, target)


def swap_weights(folder):
    """Another checkpoint at the same path: the same shapes, names and file sizes, other weights."""
    from safetensors.torch import load_file, save_file

    weights = folder / "model.safetensors"
    save_file({k: v * 0.5 for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})


def single(checkpoint, results, *extra):
    return composed("sweep=single", "task.num_samples=1", "runner.warmup=0", f"model.source={checkpoint}",
                    f"results_dir={results}", *extra)


def test_a_rerun_sets_a_corrupt_cell_file_aside_and_runs_the_cell_again(tmp_path, random_checkpoint):
    args = ["sweep=single", "task.num_samples=1", f"model.source={random_checkpoint}", f"results_dir={tmp_path}"]
    assert run_cli(*args).returncode == 0
    path = next((tmp_path / "single").glob("*.parquet"))
    path.write_bytes(path.read_bytes()[:100])  # torn by something outside the harness (a full disk, a bad copy)
    for extra in ([], ["--force"]):
        rerun = run_cli(*args, *extra)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        log = rerun.stdout + rerun.stderr
        if not extra:
            assert f"set aside corrupt cell file {path.name} as .{path.name}.corrupt-" in log
            assert "already complete" not in log
            assert f"set aside (corrupt): {path.name} -> .{path.name}.corrupt-" in rerun.stdout  # the summary names it too
    assert validate(tmp_path / "single").ok and len(pd.read_parquet(path)) == 1
    aside = [p.name for p in (tmp_path / "single").iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and (tmp_path / "single" / aside[0]).stat().st_size == 100  # kept, never deleted
    assert f"set aside corrupt cell file {path.name}" in (tmp_path / "single" / "_logs" / "sweep.log").read_text()


def test_force_with_a_failing_run_keeps_the_complete_file(tmp_path, random_checkpoint, monkeypatch):
    from harness.execute import run_cell
    from runners.reference import ReferenceRunner

    good = run_cell(single(random_checkpoint, tmp_path))
    assert good["status"] == "ok"
    path = tmp_path / "single" / good["file"].rsplit("/", 1)[-1]
    before = path.read_bytes()

    def server_died(self, bench):
        raise RuntimeError("the device fell off the bus")

    monkeypatch.setattr(ReferenceRunner, "prepare", server_died)  # fault injection: the forced rerun breaks
    forced = run_cell(single(random_checkpoint, tmp_path, "force=true"))
    assert forced["status"] == "failed" and forced["kept"] == str(path) and "fell off the bus" in forced["reason"]
    assert path.read_bytes() == before and list((tmp_path / "single").glob("*.parquet")) == [path]
    assert f"kept its complete file {path.name}" in (tmp_path / "single" / "_logs" / "sweep.log").read_text()
    # The failure still counts for the run's exit status, though it wrote no row.
    from harness.store import kept_failures

    (label, reason), = kept_failures(tmp_path / "single", [good["key"]], since=0.0)
    assert "complete file was kept" in label and "fell off the bus" in reason
    assert kept_failures(tmp_path / "single", [good["key"]], since=time.time() + 1) == []  # an earlier run's
    monkeypatch.undo()
    again = run_cell(single(random_checkpoint, tmp_path, "force=true"))
    assert again["status"] == "ok" and path.read_bytes() != before  # a complete replacement does replace it


def test_a_swapped_checkpoint_and_a_changed_data_file_are_not_already_complete(tmp_path, random_checkpoint):
    import json

    import pyarrow.parquet as pq

    from harness.cell import make_cell
    from harness.execute import run_cell

    checkpoint = copied_checkpoint(random_checkpoint, tmp_path / "ckpt")
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"question": f"{n} + 1?", "answer": f"#### {n + 1}"}) + "\n" for n in range(3)))
    bench = lambda: single(checkpoint, tmp_path, "task=gsm8k", "task.protocol=lm-eval", "task.few_shot=0",  # noqa: E731
                           f"task.source={data}", "task.max_new_tokens=4")
    first = run_cell(bench())
    assert first["status"] == "ok"
    assert run_cell(bench())["status"] == "complete"
    folder = tmp_path / "single"
    old = pq.read_table(first["file"])
    assert old.column("model_revision")[0].as_py().startswith("sha256:")  # a local folder: its content fingerprint
    config = json.loads(pq.read_schema(first["file"]).metadata[b"cell_config"])  # JSON, not a Python repr
    assert config["model"]["source"] == str(checkpoint) and config["task"]["source"] == str(data)

    swap_weights(checkpoint)
    swapped = run_cell(bench())
    assert swapped["status"] == "ok" and swapped["key"] != first["key"]
    assert swapped["key"][:16] == first["key"][:16]  # the same configuration, another checkpoint
    assert pq.read_table(swapped["file"]).column("model_revision")[0].as_py() != old.column("model_revision")[0].as_py()
    assert [p.name for p in folder.glob("*.parquet")] == [swapped["file"].rsplit("/", 1)[-1]]
    assert [s.kind for s in set_aside_files(folder)] == ["superseded"]  # the stale rows left the results

    data.write_text(data.read_text().replace("#### 3", "#### 4"))
    changed = run_cell(bench())
    assert changed["status"] == "ok" and changed["key"] not in (first["key"], swapped["key"])
    assert len(list(folder.glob("*.parquet"))) == 1 and validate(folder).ok
    assert make_cell(bench()).key == changed["key"]


def test_the_task_version_is_part_of_the_key(random_checkpoint, tmp_path, monkeypatch):
    from harness.cell import make_cell
    from harness.tasks import get_task

    before = make_cell(single(random_checkpoint, tmp_path)).key
    monkeypatch.setattr(type(get_task("copy")), "version", "a-newer-one")
    assert make_cell(single(random_checkpoint, tmp_path)).key[16:] != before[16:]


def test_reusing_a_cell_recorded_by_another_harness_commit_warns(tmp_path, random_checkpoint):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness import environment
    from harness.execute import run_cell
    from harness.store import atomic_write_parquet

    if environment.capture()["env_git_sha"] is None:
        pytest.skip("the harness checkout is not a git repository")
    first = run_cell(single(random_checkpoint, tmp_path))
    table = pq.read_table(first["file"])
    other = "0123456789ab" + "0" * 28
    table = table.set_column(table.schema.get_field_index("env_git_sha"), table.schema.field("env_git_sha"),
                             pa.array([other] * table.num_rows, pa.string()))
    atomic_write_parquet(table, Path(first["file"]))
    reused = run_cell(single(random_checkpoint, tmp_path))
    assert reused["status"] == "complete" and reused["stored_git_sha"] == other
    log = (tmp_path / "single" / "_logs" / "sweep.log").read_text()
    assert f"reused: its rows were recorded by harness commit {other[:12]}, this is " in log


def test_a_complete_cell_whose_hub_revision_now_resolves_to_another_commit_is_stale(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from harness.execute import stale_hub_revision
    from harness.store import CellState

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))  # where loads put the checkpoint

    def downloaded(commit: str) -> None:  # what a load of the default branch leaves in the hub cache
        repo = cache / "models--someone--model"
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)

    first, moved = "a" * 40, "b" * 40
    downloaded(first)
    bench = single("someone/model", tmp_path)
    state = CellState(tmp_path / "x.parquet", frozenset({"ok"}), True, None, model_revision=first)
    assert stale_hub_revision(bench, state) is None
    downloaded(moved)  # the branch moved, and something downloaded it again
    assert stale_hub_revision(bench, state) == (
        f"model someone/model revision (default branch) now resolves to commit {moved}; "
        f"the stored rows (x.parquet) were recorded with {first}")
    pinned = single("someone/model", tmp_path, f"model.revision={first}")
    assert stale_hub_revision(pinned, state) is None  # a pinned commit is what was loaded
