"""Sharded cells: a cell split over jobs is the unsharded cell, row for row; shards resume alone;
the local-gpus launcher spreads jobs over devices (fake device labels on this CPU machine)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from harness.config import ConfigError
from harness.local_gpus import assign, resolve_devices, schedule
from harness.records import SCHEMA_VERSION
from harness.report.aggregate import aggregate
from harness.shards import Shard, expand_shard_jobs, parse_shard, shard_batches, shard_samples
from harness.store import ResultStore
from harness.summary import summary_table
from harness.validate import validate
from tests.conftest import REPO, run_cli

# One diffusion cell of the embedded tiny model at batch 2: six samples are three batches, so four
# shards take one batch each and the last none.
CELL = ["-m", "model=tiny-dlm", "mode=diffusion", "mode.batch_size=2", "context=natural", "task=copy",
        "task.num_samples=6", "sweep.name=sh"]
# What may differ between two runs of the same cell: clocks, provenance, and which job ran a row.
NOT_COMPARED = {"forward_seconds", "emit_seconds", "ttft_s", "e2e_s", "started_at", "shard", "env_git_sha", "env_git_dirty",
                "env_host"}


def by_sample(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["sample_id", "repetition"]).reset_index(drop=True)


def differing_columns(a: pd.DataFrame, b: pd.DataFrame) -> set[str]:
    a, b = by_sample(a), by_sample(b)
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    return {c for c in a.columns if not a[c].astype(str).equals(b[c].astype(str))}


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory):
    results = tmp_path_factory.mktemp("unsharded")
    result = run_cli(*CELL, f"results_dir={results}")
    assert result.returncode == 0, result.stderr[-3000:]
    return results


# ---- which samples a shard takes -----------------------------------------------------------------

class Unfit:
    def __init__(self, name):
        self.name = name


@pytest.mark.parametrize("batch_size", [1, 2, 3])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_partition_the_samples_into_the_unsharded_batches(batch_size, count):
    samples = ["a", Unfit("u0"), "b", "c", "d", Unfit("u1"), "e", "f", "g", Unfit("u2")]
    fitted = lambda s: not isinstance(s, Unfit)  # noqa: E731
    batches = lambda ss: [tuple(f for f in [s for s in ss if fitted(s)][i : i + batch_size])  # noqa: E731
                          for i in range(0, sum(map(fitted, ss)), batch_size)]
    parts = [shard_samples(samples, batch_size, Shard(i, count), fitted) for i in range(count)]
    assert [s for part in parts for s in part] == samples  # every sample once, in the unsharded order
    assert [b for part in parts for b in batches(part)] == batches(samples)  # the runner's batches, unchanged
    sizes = [len(batches(part)) for part in parts]
    assert max(sizes) - min(sizes) <= 1


def test_shard_batches_are_contiguous_and_balanced():
    assert [list(shard_batches(10, Shard(i, 4))) for i in range(4)] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert [list(shard_batches(2, Shard(i, 3))) for i in range(3)] == [[0], [1], []]


def test_shard_specs_are_checked_with_the_valid_form():
    assert parse_shard("2/4") == Shard(2, 4) and str(Shard(2, 4)) == "2/4"
    for bad in ("4/4", "-1/4", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="task.shard"):
            parse_shard(bad)


def test_a_sharded_cell_keeps_its_cell_key_and_bad_shard_configs_are_refused():
    from hydra import compose, initialize_config_dir

    from harness.cell import make_cell
    from harness.config import register_configs, to_bench_config

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        key = lambda *o: make_cell(to_bench_config(compose(config_name="config", overrides=list(o)))).key  # noqa: E731
        plain = key("mode=diffusion")
        assert key("mode=diffusion", "task.shard=1/4") == plain == key("mode=diffusion", "runner.shards=4", "task.shard=3/4")
        assert key("mode=ar") != plain
        with pytest.raises(ConfigError, match="runner.shards=2"):
            key("task.shard=1/4", "runner.shards=2")
        with pytest.raises(ConfigError, match="out of range"):
            key("task.shard=4/4")
        with pytest.raises(ConfigError, match="does not split.*reference, vendor"):
            key("runner=timing", "model=qwen3-8b-shapes", "task.shard=0/2")


def test_the_sweep_expands_a_sharded_cell_into_one_job_per_shard():
    jobs = [["mode=ar", "runner.shards=3"], ["mode=diffusion"], ["mode=ar", "runner.shards=3", "task.shard=1/3"]]
    counts = {"mode=ar": 3, "mode=diffusion": 1}
    assert expand_shard_jobs(jobs, lambda job: counts[job[0]]) == [
        ["mode=ar", "runner.shards=3", "task.shard=0/3"], ["mode=ar", "runner.shards=3", "task.shard=1/3"],
        ["mode=ar", "runner.shards=3", "task.shard=2/3"], ["mode=diffusion"],
        ["mode=ar", "runner.shards=3", "task.shard=1/3"],  # an explicit shard stays one job
    ]


# ---- the store and validate ----------------------------------------------------------------------

def row(sample: str, status: str = "ok") -> dict:
    return {"schema_version": SCHEMA_VERSION, "cell_key": "k1", "status": status, "sample_id": sample, "repetition": 0}


def test_a_cell_is_complete_when_every_shard_is_and_validate_reads_shard_files(tmp_path):
    from harness.shards import shard_complete

    store = ResultStore(tmp_path, "v")
    store.write_cell("k1", "c", [row("a")], shard=Shard(0, 2))
    assert shard_complete(store, "k1", Shard(0, 2)) and not shard_complete(store, "k1", Shard(1, 2))
    assert not shard_complete(store, "k1", None)
    v = validate(tmp_path / "v")
    assert v.ok and v.incomplete == ["cell k1: shard(s) 1/2 not written yet"]
    store.write_cell("k1", "c", [row("b", "failed")], shard=Shard(1, 2))
    assert not shard_complete(store, "k1", None) and not shard_complete(store, "k1", Shard(1, 2))  # a failed shard reruns
    store.write_cell("k1", "c", [row("b")], shard=Shard(1, 2))
    assert shard_complete(store, "k1", None)
    assert validate(tmp_path / "v").ok and validate(tmp_path / "v").records == 2
    store.write_cell("k1", "c", [row("a")])  # the unsharded file beside its shards counts samples twice
    assert any("unsharded file" in p for p in validate(tmp_path / "v").problems)


def test_a_failed_shard_fails_the_exit_status_of_its_run(tmp_path):
    from harness.store import read_results
    from harness.summary import failures_of

    store = ResultStore(tmp_path, "v")
    store.write_cell("k1", "c", [row("a")], shard=Shard(0, 2))
    failed = {**row("b", "failed"), "model": "m", "mode": "ar", "task": "copy", "context": "natural", "error": "oom"}
    store.write_cell("k1", "c", [failed], shard=Shard(1, 2))
    records = read_results(tmp_path / "v")
    assert failures_of(records, ["k1"]) == [("m ar copy natural", "oom")]  # the shard's row carries the cell key
    assert failures_of(records, ["other"]) == []  # another run's cells: not this run's failure


def test_a_complete_form_of_a_cell_retires_the_other(tmp_path):
    from harness.shards import retire_superseded

    store = ResultStore(tmp_path, "r")
    old = store.write_cell("k1", "c", [row("a"), row("b")])
    first = store.write_cell("k1", "c", [row("a")], shard=Shard(0, 2))
    assert retire_superseded(store, "k1", Shard(0, 2)) == [] and old.exists()  # kept until its replacement is whole
    store.write_cell("k1", "c", [row("b")], shard=Shard(1, 2))
    moved = retire_superseded(store, "k1", Shard(1, 2))
    assert not old.exists() and [p.name.split(".superseded-")[0] for p in moved] == [f".{old.name}"]  # set aside, not deleted
    store.write_cell("k1", "c", [row("a"), row("b")])
    assert len(retire_superseded(store, "k1", None)) == 2 and not first.exists()
    assert validate(tmp_path / "r").ok
    assert sorted(p.name for p in (tmp_path / "r").glob("*.parquet")) == ["c-k1.parquet"]
    assert len(list((tmp_path / "r").glob(".*.superseded-*"))) == 3


# ---- end to end ----------------------------------------------------------------------------------

def test_four_shards_through_submitit_equal_the_unsharded_cell_and_are_one_cell(tmp_path, unsharded):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    shutil.copytree(unsharded, tmp_path, dirs_exist_ok=True)
    before = pd.read_parquet(tmp_path / "sh")
    result = run_cli(*CELL, f"results_dir={tmp_path}", "launcher=local", "runner.shards=4", "--force", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ".submitit" in str(list((tmp_path / "sh" / "_hydra").rglob("*"))[:80])  # the shards ran as submitit jobs
    files = sorted(p.name for p in (tmp_path / "sh").glob("*.parquet"))
    assert [f.rsplit(".", 2)[1] for f in files] == ["shard0of4", "shard1of4", "shard2of4", "shard3of4"]  # unsharded retired
    after = pd.read_parquet(tmp_path / "sh")
    assert set(after["cell_key"]) == set(before["cell_key"])  # one cell: the shard spec is not in the key
    assert sorted(after["shard"].unique()) == ["0/4", "1/4", "2/4"]  # the fourth shard had no batch left
    assert differing_columns(before, after) <= NOT_COMPARED
    assert by_sample(after)["output_token_ids"].map(list).tolist() == by_sample(before)["output_token_ids"].map(list).tolist()
    cells = summary_table(aggregate(after, boot=None).cells)
    assert len(cells) == 1 and cells["n"].iloc[0] == 6
    v = validate(tmp_path / "sh")
    assert v.ok and not v.incomplete


def test_the_plan_lists_each_shard_with_its_own_fate(tmp_path):
    # shard 0/3 run by hand: the dry run of the 3-shard cell reuses it and would run the other two
    assert run_cli(*CELL[1:], "task.shard=0/3", f"results_dir={tmp_path}").returncode == 0
    before = sorted(tmp_path.rglob("*"))
    result = run_cli("--dry-run", *CELL, "runner.shards=3", f"results_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("[")]
    assert [(line[0], line[1], line[-1]) for line in lines] == [("[1/3]", "reuse", "results)"), ("[2/3]", "run", "1/3"),
                                                                ("[3/3]", "run", "2/3")]
    assert len({line[2] for line in lines}) == 1  # one cell key for all three shards
    assert "shard 0/3" in result.stdout and "would run 2, skip 0 (recorded as skipped), reuse 1 complete" in result.stdout
    assert sorted(tmp_path.rglob("*")) == before


def test_a_killed_shard_reruns_alone(tmp_path):
    # Each sample is timed for 3 s at least (max_repetitions lifted: the tiny model's default 20
    # repetitions take under a second): the third shard is well inside its decode when killed.
    args = [*CELL[:-2], "task.num_samples=3", "mode.batch_size=1", "sweep.name=k", "runner.shards=3",
            "runner.min_duration_s=3", "runner.max_repetitions=100000", f"results_dir={tmp_path}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    folder = tmp_path / "k"
    deadline = time.time() + 400
    while len(list(folder.glob("*.shard*.parquet"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    survivors = {p.name: p.read_bytes() for p in folder.glob("*.parquet")}
    assert sorted(n.rsplit(".", 2)[1] for n in survivors) == ["shard0of3", "shard1of3"]
    assert validate(folder).ok and validate(folder).incomplete

    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = rerun.stdout + rerun.stderr
    assert "shard 0/3" in log and log.count("already complete") == 2 and log.count("shard 2/3 (") == 1
    assert "shard 2/3 done" in log and "shard 0/3 done" not in log and "shard 1/3 done" not in log
    for name, content in survivors.items():
        assert (folder / name).read_bytes() == content  # complete shards were not rerun
    df = pd.read_parquet(folder)
    assert df["sample_id"].nunique() == 3 and not df.duplicated(["sample_id", "repetition"]).any()
    v = validate(folder)
    assert v.ok and not v.incomplete


def test_local_gpus_runs_each_shard_in_a_worker_pinned_to_a_device(tmp_path, unsharded):
    result = run_cli(*CELL, f"results_dir={tmp_path}", "launcher=local-gpus", "hydra.launcher.devices=[gpu-a,gpu-b]",
                     "runner.shards=4", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    started = [line.split("on device ")[1].split()[0] for line in log.splitlines() if " : model=" in line and "on device" in line]
    assert len(started) == 4 and set(started) == {"gpu-a", "gpu-b"}
    assert log.count("finished: ok") == 4
    worker_logs = sorted((tmp_path / "sh" / "_hydra").rglob(".local_gpus/job*.log"))
    pinned = sorted(line.split("CUDA_VISIBLE_DEVICES=")[1].strip() for p in worker_logs for line in p.read_text().splitlines()
                    if "CUDA_VISIBLE_DEVICES=" in line)
    assert len(worker_logs) == 4 and sorted(set(pinned)) == ["gpu-a", "gpu-b"] and len(pinned) == 4
    after, before = pd.read_parquet(tmp_path / "sh"), pd.read_parquet(unsharded / "sh")
    assert differing_columns(before, after) <= NOT_COMPARED
    assert len(summary_table(aggregate(after, boot=None).cells)) == 1

    again = run_cli(*CELL, f"results_dir={tmp_path}", "launcher=local-gpus", "hydra.launcher.devices=[gpu-a,gpu-b]",
                    "runner.shards=4", timeout=900)
    # every shard is complete: the planning sweeper launches no worker at all
    assert again.returncode == 0 and "plan: 4 cells, 0 to run, 4 with complete results" in again.stdout + again.stderr
    assert "finished:" not in again.stdout + again.stderr
    assert sorted((tmp_path / "sh" / "_hydra").rglob(".local_gpus/job*.log")) == worker_logs


# ---- the local-gpus pool, with fake device lists -------------------------------------------------

def test_devices_come_from_the_config_then_cuda_visible_devices_then_nvml():
    never = lambda: pytest.fail("NVML asked although devices were given")  # noqa: E731
    assert resolve_devices([0, 1, 2, 3], "5,6", never) == ["0", "1", "2", "3"]
    assert resolve_devices(None, "2, 3", never) == ["2", "3"]
    assert resolve_devices(None, "GPU-8f1c,GPU-77aa", never) == ["GPU-8f1c", "GPU-77aa"]  # UUIDs kept as written
    assert resolve_devices(None, None, lambda: 3) == ["0", "1", "2"]
    with pytest.raises(ValueError, match=r"hydra.launcher.devices=\[0,1,2,3\]"):
        resolve_devices(None, None, lambda: 0)
    with pytest.raises(ValueError, match="from CUDA_VISIBLE_DEVICES"):
        resolve_devices(None, "", never)
    with pytest.raises(ValueError, match=r"\['1'\] listed twice"):
        resolve_devices([0, 1, 1], None, never)


def test_each_device_takes_the_next_job_when_free():
    assert assign([4, 5, 6], ["b"]) == [(4, "b")]
    assert assign([4], ["a", "b"]) == [(4, "a")]
    # job 0 holds device 3 for 10 s: devices 5 and 7 take every other job as they free up
    plan = schedule([10, 1, 1, 1, 1, 1], ["3", "5", "7"])
    assert plan == [(0, "3", 0.0), (1, "5", 0.0), (2, "7", 0.0), (3, "5", 1.0), (4, "7", 1.0), (5, "5", 2.0)]
    assert {device for _, device, _ in schedule([1] * 8, ["0", "1", "2", "3"])} == {"0", "1", "2", "3"}
    assert schedule([2, 2], ["only"]) == [(0, "only", 0.0), (1, "only", 2.0)]
