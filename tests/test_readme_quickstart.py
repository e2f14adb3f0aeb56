"""The README's quickstart commands compose into the cells its `# ->` lines state.

Each `dlm-bench ...` command of the quickstart is composed the way the CLI composes it (the preset's
`hydra.sweeper.params` expanded with the command's overrides by the basic sweeper,
`harness.sweeper.sweep_job_overrides`, as the planning sweeper expands it), every cell is validated by its dataclasses, and the count
and the value of every named axis must be the ones the line under the command states. A preset and
its README entry therefore cannot drift apart.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from harness.sweeper import sweep_job_overrides
from harness.config import TaskConfig, register_configs, to_bench_config

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
CONFIG_DIR = REPO / "configs"
STATED = re.compile(r"^# -> (?P<cells>\d+) cells = (?P<axes>.+)$")
AXIS = re.compile(r"(?P<key>[\w.]+) \{(?P<values>[^}]*)\}")

register_configs()


def quickstart() -> str:
    start = README.index("## Quickstart")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def quickstart_commands() -> list[tuple[list[str], int, dict[str, set[str]]]]:
    """(overrides, stated cell count, stated axis -> values) of every dlm-bench command of the quickstart."""
    lines = [line.strip() for line in quickstart().splitlines()]
    commands = []
    for line, following in zip(lines, lines[1:]):
        words = shlex.split(line) if re.match(r"^(\.venv/bin/)?dlm-bench ", line) else []
        if not words:
            continue
        stated = STATED.match(following)
        assert stated, f"README quickstart: `{line}` needs a `# -> N cells = key {{...}} x ...` line under it"
        axes = {m["key"]: {v.strip() for v in m["values"].split(",")} for m in AXIS.finditer(stated["axes"])}
        commands.append(([w for w in words[1:] if w != "-m"], int(stated["cells"]), axes))
    return commands


COMMANDS = quickstart_commands()


def cells_of(overrides: list[str]) -> list[list[str]]:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        config = compose(config_name="config", overrides=overrides, return_hydra_config=True)
        return sweep_job_overrides(config.hydra.sweeper.get("params"), list(config.hydra.overrides.task))


def test_the_quickstart_has_the_claims_sweeps():
    presets = {next(w.split("=", 1)[1] for w in words if w.startswith("sweep=")) for words, _, _ in COMMANDS}
    assert presets == {"vendor-claims", "speed-bench"}


@pytest.mark.parametrize("overrides,stated_cells,stated_axes", COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS])
def test_each_command_composes_into_the_cells_the_readme_states(overrides, stated_cells, stated_axes):
    jobs = cells_of(overrides)
    assert len(jobs) == stated_cells
    for key, values in stated_axes.items():
        found = {job_value for job in jobs for name, job_value in (o.split("=", 1) for o in job) if name == key}
        assert found == values, f"{key}: the README states {sorted(values)}, the sweep has {sorted(found)}"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cells = [to_bench_config(compose(config_name="config", overrides=job)) for job in jobs]
    assert {c.model.name for c in cells} == stated_axes["model"]
    assert all(c.task.name in stated_axes["task"] for c in cells)


def test_the_vendor_claims_sweep_runs_every_sample_of_the_claims_tasks_in_every_mode():
    from harness.report.claims import load_claims

    words = next(words for words, _, _ in COMMANDS if "sweep=vendor-claims" in words)
    jobs = cells_of(words)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cells = [to_bench_config(compose(config_name="config", overrides=job)) for job in jobs]
    assert {c.task.num_samples for c in cells} == {0}  # 0 = every sample
    assert {c.mode.name for c in cells if c.mode.use_draft_lora} == {"linear_spec"}
    tpf = next(c for c in load_claims() if c.id == "tpf-5.9x-vs-qwen3")
    assert {c.task.name for c in cells} == set(tpf.tasks)
    assert {c.model.name for c in cells} == {tpf.subject["model"], tpf.baseline["model"]}
    decoding = [c for c in cells if c.mode.name in c.model.modes]
    stated = re.search(r"so (\d+) of the (\d+) cells decode", quickstart())
    assert stated and (len(decoding), len(cells)) == (int(stated[1]), int(stated[2]))


def test_the_readme_states_the_default_sample_count_and_runs_no_synthetic_task_on_real_models():
    default = next(f.default for f in fields(TaskConfig) if f.name == "num_samples")
    assert f"`task.num_samples={default}`" in README
    assert "task=copy" not in quickstart()


def test_the_cli_dry_run_of_the_vendor_claims_command_plans_what_the_readme_states(tmp_path):
    """The real CLI, `--dry-run`: every cell listed with its key, the README's decode count, nothing written."""
    import subprocess
    import sys

    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")  # the command names launcher=slurm
    words = next(words for words, _, _ in COMMANDS if "sweep=vendor-claims" in words)
    result = subprocess.run([sys.executable, "-m", "harness.cli", *words, "--dry-run", f"results_dir={tmp_path}"],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    stated = re.search(r"so (\d+) of the (\d+) cells decode", quickstart())
    decode, total = int(stated[1]), int(stated[2])
    planned = re.findall(r"^\s*\[\d+/(\d+)\] (run|skip)\s+([0-9a-f]{24}) ", result.stdout, re.M)
    assert len(planned) == total and {int(n) for n, _, _ in planned} == {total}
    assert sum(action == "run" for _, action, _ in planned) == decode
    assert f"would run {decode}, skip {total - decode}" in result.stdout
    assert not any(tmp_path.iterdir())  # a dry run writes nothing
