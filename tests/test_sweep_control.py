"""Sweep control: exit status, refusals, interruption, read-only folders, planning (`dlm-bench` as a
subprocess on the embedded tiny model)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, run_cli

FAST = ("task.num_samples=1", "runner.warmup=0")


def start_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # SIGINT as a terminal delivers it: a process started in the background inherits it ignored
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(predicate, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def log_text(folder: Path) -> str:
    path = folder / "_logs" / "sweep.log"
    return path.read_text() if path.exists() else ""


def test_a_report_that_cannot_be_written_exits_non_zero_and_failed_cells_still_count(tmp_path):
    # `_report` is a file, so the report cannot be written; one cell's model does not exist.
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "_report").write_text("not a folder")
    result = run_cli("-m", "sweep=single", f"model.source=builtin:tiny-dlm,{tmp_path / 'missing'}", "sweep.name=r",
                     f"results_dir={tmp_path}", *FAST)
    assert result.returncode == 1
    assert "the report could not be written" in result.stderr
    assert "1 cell(s) failed in this run" in result.stderr
    assert "dlm-bench summary" in result.stdout  # the summary itself was still printed
    df = pd.read_parquet(tmp_path / "r")
    assert sorted(df["status"]) == ["failed", "ok"]  # the results are all there
    assert "the report could not be written" in log_text(tmp_path / "r")


def test_the_exit_status_counts_this_runs_cells_not_a_concurrent_runs(tmp_path):
    # A's one cell is slow; while it runs, B writes a failed cell into the same folder.
    a = start_cli("sweep=single", "sweep.name=shared", f"results_dir={tmp_path}", *FAST, "runner.min_duration_s=30",
                  "runner.max_repetitions=100000")
    wait_for(lambda: "starting" in log_text(tmp_path / "shared"), "run A's cell to start")
    b = run_cli("sweep=single", "sweep.name=shared", f"model.source={tmp_path / 'missing'}", f"results_dir={tmp_path}", *FAST)
    assert a.poll() is None, "run A ended before run B failed: nothing was tested"
    out, err = a.communicate(timeout=600)
    assert b.returncode == 1 and "1 cell(s) failed in this run" in b.stderr
    assert a.returncode == 0, err[-3000:]
    assert "failed in this run" not in err
    cells = pd.read_parquet(tmp_path / "shared").drop_duplicates("cell_key")
    assert sorted(cells["status"]) == ["failed", "ok"]
    assert "Skipped or failed cells" in out  # A's summary shows the whole folder, B's failed cell included


@contextmanager
def read_only(folder: Path):
    """The folder read-only for this process: a read-only bind mount for root (whom permissions do
    not stop), the write bits removed otherwise."""
    if os.geteuid() == 0:
        bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        if bound.returncode != 0:
            pytest.skip(f"root cannot bind-mount here: {bound.stderr.decode().strip()}")
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for path in modes:
            path.chmod(modes[path] & ~0o222)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)


def test_a_complete_read_only_folder_reruns_to_all_complete_and_a_cell_to_run_is_refused(tmp_path):
    args = ["-m", "sweep=single", "mode=ar,diffusion", "sweep.name=ro", f"results_dir={tmp_path}", *FAST]
    assert run_cli(*args).returncode == 0
    folder = tmp_path / "ro"
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    with read_only(folder):
        rerun = run_cli(*args)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        output = rerun.stdout + rerun.stderr
        assert output.count("already complete: not rerun") == 2 and "plan: 2 cells, 0 to run, 2 with complete results" in output
        assert "is not writable" in output and "the report was not rewritten" in output
        assert "dlm-bench summary" in rerun.stdout

        more = run_cli(*args[:-2], "task=sort", *FAST)  # two cells not yet run
        assert more.returncode == 2
        assert f"results folder {folder} cannot be written" in more.stderr and "2 of 2 cells would run" in more.stderr
        assert "Traceback" not in more.stderr
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


@pytest.mark.parametrize("arguments,message", [
    (["+foo=1"], "foo: unknown key; valid top-level keys:"),
    (["sweep=single", "mode=diffusion", "mode.threshold=1.5"], "mode.threshold: must be in [0, 1]"),
    (["-m", "mode=ar,diffusion", "mode.threshold=1.5"], "mode.threshold: must be in [0, 1]"),
    (["sweep=single", "task.num_samples=many"], "task.num_samples"),
    (["sweep=single", "launcher=nowhere"], "launcher/nowhere"),
    (["sweep=single", "mode=[ar"], "mode=[ar"),
])
def test_a_refused_configuration_exits_2_with_a_clean_message(tmp_path, arguments, message):
    result = run_cli(*arguments, f"results_dir={tmp_path}")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "nothing was run" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*.parquet"))


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_sweep_says_how_far_it_got_in_one_line_and_a_rerun_resumes(tmp_path, signum, status):
    args = ["-m", "sweep=single", "mode=ar,diffusion,linear_spec", "sweep.name=i", f"results_dir={tmp_path}", *FAST, "runner.min_duration_s=2"]
    sweep = start_cli(*args)
    folder = tmp_path / "i"
    wait_for(lambda: len(list(folder.glob("*.parquet"))) == 1, "the first cell")
    os.killpg(sweep.pid, signum)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == status, err[-3000:]
    line = "interrupted: 1 of 3 cells complete; rerun the same command to resume"
    assert line in err and "Traceback" not in err
    assert line in log_text(folder)
    assert not list(folder.glob(".*.tmp"))  # the cell being written was cleaned up

    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert len(list(folder.glob("*.parquet"))) == 3


def test_complete_cells_are_planned_not_launched_and_progress_counts_the_whole_sweep(tmp_path):
    one = run_cli("-m", "sweep=single", "mode=diffusion", "sweep.name=p", f"results_dir={tmp_path}", *FAST)
    assert one.returncode == 0, one.stderr[-3000:]
    result = run_cli("-m", "sweep=single", "mode=ar,diffusion,linear_spec", "sweep.name=p", f"results_dir={tmp_path}", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "plan: 3 cells, 2 to run, 1 with complete results" in output
    assert "[2/3] cell tiny-dlm_diffusion_copy_natural" in output and "already complete" in output
    assert "[1/3] elapsed" in output and "[3/3] elapsed" in output  # the launched cells keep their sweep positions
    runs = sorted((tmp_path / "p" / "_hydra").iterdir())
    assert len(runs) == 2 and sorted(p.name for p in runs[1].iterdir() if p.is_dir()) == ["0", "1"]  # two jobs set up

    rerun = run_cli("-m", "sweep=single", "mode=ar,diffusion,linear_spec", "sweep.name=p", f"results_dir={tmp_path}", *FAST)
    assert rerun.returncode == 0 and "plan: 3 cells, 0 to run, 3 with complete results" in rerun.stdout + rerun.stderr
    assert len(list((tmp_path / "p" / "_hydra").iterdir())) == 2  # nothing launched: no job folders at all
    assert "(up to date: no cell file, claim or report code is newer)" in rerun.stdout  # nothing to rebuild
    assert rerun.stdout.strip().splitlines()[-1].startswith("  claim ")


def test_the_plan_composes_every_cell_exactly_as_hydra_does():
    """The planning pass composes once per set of group choices and applies each cell's value
    overrides to a copy; every cell's config must be Hydra's own composition of the same job."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from harness.cli import CONFIG_DIR
    from harness.config import to_bench_config
    from harness.sweeper import CellComposer, sweep_job_overrides, task_config

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", ["sweep=single"], run_mode=RunMode.MULTIRUN)
        jobs = sweep_job_overrides({"mode": "ar,linear_spec", "task": "copy,sort"},
                                   ["seed=0,1", "runner.warmup=0", "+hydra.job.env_set.X=1"])
        jobs += [["mode=diffusion", "mode.block_length=2"], ["mode=diffusion", "mode.block_length=8"]]
        composer = CellComposer(master, loader)
        for job in jobs:
            ours = composer.bench(job)
            assert ours == to_bench_config(task_config(loader.load_sweep_config(master, job))), job
        assert len(composer.groups) == 5  # 2 modes x 2 tasks, and diffusion once for both block lengths
        assert composer.bench(["mode=diffusion", "mode.block_length=8"]).mode.block_length == 8


# --- the command line: version, help, dry run, optional dependencies, failed loads, last lines


def test_version_is_dlm_benchs():
    from harness.cli import version

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"dlm-bench {version()}"
    assert version() == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_help_is_about_dlm_bench_and_does_not_import_torch():
    code = ("import sys; sys.argv = ['dlm-bench', '--help']\n"
            "from harness.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch imported:', 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("dlm-bench ") and "Usage: dlm-bench" in result.stdout
    modes = next(line for line in result.stdout.splitlines() if line.strip().startswith("mode "))
    assert "linear_spec_lora" in modes and "diffusion" in modes
    assert "schema/runner" not in result.stdout and "Powered by Hydra" not in result.stdout
    assert "torch imported: False" in result.stdout


def test_a_dry_run_lists_every_cell_with_its_key_and_fate_and_writes_nothing(tmp_path):
    assert run_cli("sweep=single", "sweep.name=d", f"results_dir={tmp_path}", *FAST).returncode == 0  # tiny-dlm ar
    before = sorted(tmp_path.rglob("*"))
    result = run_cli("--dry-run", "-m", "sweep=single", "model=tiny-dlm,qwen3-8b", "mode=ar,diffusion", "sweep.name=d",
                     f"results_dir={tmp_path}", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("[")]
    assert [(line[0], line[1], line[3]) for line in lines] == [
        ("[1/4]", "reuse", "tiny-dlm_ar_copy_natural"), ("[2/4]", "run", "tiny-dlm_diffusion_copy_natural"),
        ("[3/4]", "run", "qwen3-8b_ar_copy_natural"), ("[4/4]", "skip", "qwen3-8b_diffusion_copy_natural")]
    assert all(re.fullmatch(r"[0-9a-f]{24}", line[2]) for line in lines)  # config_key (16) + provenance (8)
    assert "was trained for modes ['ar']" in result.stdout
    assert "would run 2, skip 1 (recorded as skipped), reuse 1 complete" in result.stdout
    assert sorted(tmp_path.rglob("*")) == before  # nothing written: no log, no report, no job folder


def test_a_missing_optional_dependency_is_refused_before_any_load_with_the_install_command(tmp_path):
    # An environment without peft: the import system finds no such module.
    code = ("import sys; sys.modules['peft'] = None\n"
            f"sys.argv = ['dlm-bench', '-m', 'sweep=single', 'model=nemotron-labs-diffusion-8b', 'mode=linear_spec_lora', 'task=copy,sort', 'results_dir={tmp_path}']\n"
            "from harness.cli import main\nmain()")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "nothing was run" in result.stderr and "Traceback" not in result.stderr
    assert "cell(s) need peft for the draft LoRA" in result.stderr and "pip install -e '.[lora]'" in result.stderr
    assert result.stderr.count("need peft") == 1 and "2 cell(s) need peft" in result.stderr
    assert not tmp_path.exists() or not list(tmp_path.rglob("*.parquet"))


def test_a_model_that_fails_to_load_is_not_retried_and_the_last_lines_name_the_report_and_verdicts(tmp_path):
    from harness.report.claims import DEFAULT_CLAIMS, VERDICTS, load_claims

    result = run_cli("-m", "sweep=single", f"model.source={tmp_path / 'missing'}", "mode=ar,diffusion,linear_spec",
                     "sweep.name=m", f"results_dir={tmp_path}", *FAST)
    assert result.returncode == 1
    assert (result.stdout + result.stderr).count("loading model") == 1
    errors = pd.read_parquet(tmp_path / "m").sort_values("mode")["error"].tolist()
    first = [e for e in errors if "not retried" not in e]
    assert len(first) == 1 and sum("not retried" in e for e in errors) == 2
    reason = first[0].strip().splitlines()[-1].split(": ", 1)[1]
    assert all(reason in e for e in errors)  # the same one-line reason in every cell
    tail = result.stdout.strip().splitlines()
    claims = load_claims(DEFAULT_CLAIMS)
    assert tail[-len(claims) - 1] == f"report: {tmp_path / 'm' / '_report' / 'report.html'} (Markdown: report.md, tables: {tmp_path / 'm' / '_report'})"
    for claim, line in zip(claims, tail[-len(claims):]):
        name, verdict = line.strip().removeprefix("claim ").split(": ")
        assert name == claim.id and verdict in VERDICTS
