"""The planning sweeper: every cell of a sweep composed once, checked, keyed, and only the cells that
need to run handed to the launcher.

Hydra's basic sweeper composes each job's config again to validate it, and its launcher composes it
a third time and sets up a job (output folder, config files, logging) for every cell, complete
ones included. Here each cell is composed once (`plan_sweep`); a cell whose results are complete is
reported and never launched (unless ``force=true``); configuration problems in any cell stop the
sweep before the first model loads (exit status 2). The cells that run go to the configured
launcher (submitit, SLURM) with their overrides; on the basic launcher they run here, in this
process, from the config already composed.

Hydra instantiates plugins only from its ``hydra_plugins`` namespace package: importing this module
registers the sweeper there under `PLUGIN_MODULE` (harness/plugins.py; configs/hydra/sweeper/
planning.yaml names that path), and imports the local-gpus launcher, registered the same way.

A cell with ``runner.shards=N`` > 1 and no explicit ``task.shard`` is planned as N jobs, the cell's
overrides plus ``task.shard=i/N`` (harness/shards.py), each COMPLETE or RUN by its own file: the
dry run, the plan lines and the launcher see shards as they see cells.
"""

from __future__ import annotations

import copy
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

import harness.local_gpus_launcher  # noqa: F401  (registers launcher=local-gpus wherever the sweeper is)
from harness import progress
from harness.config import BenchConfig, ConfigError, to_bench_config
from harness.contracts import ENGINE_RUNNERS
from harness.plugins import register_plugin
from harness.shards import expand_shard_jobs, parse_shard, shard_complete

log = logging.getLogger("dlm-bench")
PLUGIN_MODULE = "hydra_plugins.dlm_bench_sweeper"
RUN, COMPLETE = "run", "complete"


@dataclass
class PlannedCell:
    overrides: list[str]
    config: DictConfig | None  # the job's full config, hydra node included (cells that run here)
    bench: BenchConfig
    key: str
    label: str
    action: str  # RUN or COMPLETE


@dataclass
class Plan:
    cells: list[PlannedCell]
    problems: list[str]

    @property
    def to_run(self) -> list[PlannedCell]:
        return [c for c in self.cells if c.action == RUN]


def sweep_job_overrides(params: dict | None, arguments: Sequence[str]) -> list[list[str]]:
    """The override list of every job of the sweep, in launch order (Hydra's cartesian product)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    lines = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    overrides = OverridesParser.create().parse_overrides(lines)
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


class CellComposer:
    """Each cell's BenchConfig, composing once per distinct set of config-group choices.

    Hydra composes a job in two steps: the defaults list chosen by the group overrides
    (`mode=diffusion`), then the value overrides (`seed=1`, `mode.block_length=8`) applied to the
    result. Cells of a sweep that differ only in values share the first step, which is nearly all
    of the time; this class keeps it per group choice and applies each cell's value overrides to a
    copy with Hydra's own override code, as Hydra's loader does. Which override is a group choice
    is decided by the same test as Hydra's (`Overrides` in hydra/_internal/defaults_list.py): the key
    names a config group and the value is not a dict. `hydra.*` overrides stay in the first step.
    The full job config (hydra node included) is composed by Hydra's own loader, only for a cell
    that runs here (`job_config`).
    """

    def __init__(self, config: DictConfig, config_loader):
        self.config, self.loader = config, config_loader
        self.parser = OverridesParser.create()
        self.groups: dict[tuple[str, ...], DictConfig] = {}

    def split(self, job: list[str]) -> tuple[tuple[str, ...], list]:
        first, values = [], []
        for override in self.parser.parse_overrides(job):
            is_group = self.loader.repository.group_exists(override.key_or_group)
            if override.is_hydra_override() or (is_group and not isinstance(override.value(), dict)):
                first.append(override.input_line)
            else:
                values.append(override)
        return tuple(first), values

    def bench(self, job: list[str]) -> BenchConfig:
        first, values = self.split(job)
        if first not in self.groups:
            self.groups[first] = task_config(self.loader.load_sweep_config(self.config, list(first)))
        cfg = copy.deepcopy(self.groups[first])
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        return to_bench_config(cfg)

    def job_config(self, job: list[str]) -> DictConfig:
        return self.loader.load_sweep_config(self.config, list(job))


def plan_sweep(config: DictConfig, config_loader, jobs: list[list[str]], local: bool) -> Plan:
    """Compose, validate and key every job, a sharded cell as one job per shard; a complete cell
    (or shard) is planned COMPLETE unless forced.

    On this machine (`local`) each cell that will run is also checked against the hardware
    profile and composed in full, to run from that config; under a cluster launcher the submitting
    host is not the GPU node: each job composes and checks itself.
    """
    from harness.cell import make_cell
    from harness.hardware import check_hardware
    from harness.store import ResultStore

    cells, problems = [], []
    composer = CellComposer(config, config_loader)
    for job in jobs:
        try:
            units = shard_jobs(job, composer.bench(job), composer)
            planned = []
            for overrides, bench in units:
                cell = make_cell(bench)
                shard = parse_shard(bench.task.shard) if bench.task.shard is not None else None
                store = ResultStore(bench.results_dir, bench.sweep.name)
                action = COMPLETE if not bench.force and shard_complete(store, cell.key, shard) else RUN
                composed = None
                if action == RUN and local:
                    check_hardware(bench.hardware, bench.runner)
                    composed = composer.job_config(overrides)
                label = cell.label if shard is None else f"{cell.label} shard {shard}"
                planned.append(PlannedCell(overrides, composed, bench, cell.key, label, action))
        except (ConfigError, HydraException, OmegaConfBaseException) as exc:
            problems.append(f"  {' '.join(job)}\n    -> {exc}")
            continue
        cells += planned
    return Plan(cells, problems)


def shard_jobs(job: list[str], bench: BenchConfig, composer: CellComposer) -> list[tuple[list[str], BenchConfig]]:
    """The job, or for a cell with runner.shards=N > 1 and no task.shard, its N shard jobs in order
    (each composed through the same group step: only a value override differs)."""
    count = 1 if bench.task.shard is not None else getattr(bench.runner, "shards", 1)
    expanded = expand_shard_jobs([job], lambda _: count)
    return [(list(job), bench)] if len(expanded) == 1 else [(overrides, composer.bench(overrides)) for overrides in expanded]


def task_config(config: DictConfig) -> DictConfig:
    """The job's config as the task function gets it: without the hydra node (as run_job makes it)."""
    task = copy.copy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def sweep_rules(plan: Plan, launcher_target: str) -> list[str]:
    """Problems of the sweep as a whole (each cell was valid on its own)."""
    problems = []
    if "SlurmLauncher" in launcher_target:
        profiles = sorted({c.bench.hardware.name for c in plan.cells})
        if len(profiles) > 1:
            problems.append(f"  one SLURM sweep per hardware profile: this one mixes {profiles}, but its jobs "
                            "all go to one partition; run a sweep per hardware=...")
    roots = sorted({str(results_root(c.bench)) for c in plan.cells})
    if len(roots) > 1:
        problems.append(f"  one results folder per sweep: the cells write to {roots}; sweep results_dir and sweep.name "
                        "in separate runs")
    return problems


# Optional dependencies: (what needs it, the module, the extra that installs it)
OPTIONAL = (
    (lambda b: b.mode.use_draft_lora and bool(b.model.draft_lora), "the draft LoRA (mode.use_draft_lora)", "peft", "lora"),
    (lambda b: b.runner.name in ENGINE_RUNNERS, "the served-engine runners' streaming client", "aiohttp", "engines"),
)


def missing_dependencies(cells: list[PlannedCell]) -> list[str]:
    """Optional packages the cells to run need and this environment lacks, once per package, with the
    install command: checked before any model loads rather than after the first one has."""
    import importlib.util

    problems = []
    for needs, what, module, extra in OPTIONAL:
        users = [c for c in cells if needs(c.bench)]
        if users and importlib.util.find_spec(module) is None:
            problems.append(f"  {len(users)} cell(s) need {module} for {what} (first: {users[0].label}): "
                            f"pip install -e '.[{extra}]'")
    return problems


def print_dry_run(plan: Plan, root: Path) -> None:
    """One line per cell: its sweep position, what a real run would do with it, key and label."""
    from runners import get_runner

    from harness.cell import skip_reason

    print(f"dry run: {len(plan.cells)} cells into {root} (nothing is run or written)")
    counts = {"run": 0, "skip": 0, "reuse": 0}
    for position, cell in enumerate(plan.cells):
        reason = skip_reason(cell.bench, get_runner(cell.bench.runner.name).modes) if cell.action == RUN else None
        action = "reuse" if cell.action == COMPLETE else "skip" if reason else "run"
        counts[action] += 1
        note = f"  ({reason})" if reason else "  (complete results)" if action == "reuse" else ""
        print(f"  [{position + 1}/{len(plan.cells)}] {action:5s} {cell.key} {cell.label}{note}")
    print(f"would run {counts['run']}, skip {counts['skip']} (recorded as skipped), reuse {counts['reuse']} complete")


def results_root(bench: BenchConfig) -> Path:
    return Path(bench.results_dir) / bench.sweep.name


def unwritable_reason(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (made if absent), or None: tried, not guessed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".write-check."):
            pass
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def model_switches(cells: list[BenchConfig]) -> int:
    """How many times consecutive cells change model (each switch is a model load)."""
    keys = [(c.model.source, c.model.revision, c.model.dtype) for c in cells]
    return sum(a != b for a, b in zip(keys, keys[1:]))


def refuse(message: str, problems: list[str]) -> None:
    print(f"dlm-bench: {message} (nothing was run):", file=sys.stderr)
    print("\n".join(problems), file=sys.stderr)
    raise SystemExit(2)


class PlanningSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[dict] = None, dry_run: bool = False) -> None:
        super().__init__()
        self.dry_run = dry_run
        self.max_batch_size = max_batch_size  # accepted for the basic sweeper's config; cells launch in one batch
        self.params = params or {}
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=task_function,
                                                                config=config)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.hydra_context is not None
        target = str(self.config.hydra.launcher.get("_target_", ""))
        local = target.endswith("BasicLauncher")
        # resolved before any cell is composed: each cell copies the master's resolver cache, so that
        # every job of the sweep shares its ${now:...} folder
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        jobs = sweep_job_overrides(self.params, arguments)
        plan = plan_sweep(self.config, self.hydra_context.config_loader, jobs, local)
        if plan.problems:
            refuse(f"{len(plan.problems)} problem(s) in a sweep of {len(jobs)} cells", plan.problems)
        problems = sweep_rules(plan, target) + missing_dependencies(plan.to_run)
        if problems:
            refuse("this sweep cannot run as configured", problems)
        root = results_root(plan.cells[0].bench)
        to_run = plan.to_run
        if self.dry_run:
            print_dry_run(plan, root)
            return []
        blocked = unwritable_reason(root) if to_run else None
        if blocked:
            refuse(f"results folder {root} cannot be written", [f"  {blocked}; {len(to_run)} of {len(plan.cells)} cells "
                                                                f"would run. Choose a writable results_dir=..."])
        progress.announce_run(root, [c.key for c in plan.cells], [i for i, c in enumerate(plan.cells) if c.action == RUN])
        if to_run:
            progress.attach_sweep_log(root)
        self.report_plan(plan)
        if not to_run:
            return []
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns = self.run_here(to_run) if local else self.launcher.launch([c.overrides for c in to_run], initial_job_idx=0)
        for job in returns:
            _ = job.return_value  # re-raises what a job raised (run_cell records cell failures as rows instead)
        return [returns]

    def report_plan(self, plan: Plan) -> None:
        total = len(plan.cells)
        for position, cell in enumerate(plan.cells):
            if cell.action == COMPLETE:
                log.info("[%d/%d] cell %s (%s) already complete: not rerun (force=true reruns it)",
                         position + 1, total, cell.label, cell.key)
        benches = [c.bench for c in plan.to_run]
        distinct = len({(b.model.source, b.model.revision, b.model.dtype) for b in benches})
        if benches and model_switches(benches) > distinct - 1:
            log.warning("cells alternate between models (%d loads for %d models): list `model` first in the "
                        "sweep so that it varies slowest", model_switches(benches) + 1, distinct)
        log.info("plan: %d cells, %d to run, %d with complete results", total, len(plan.to_run), total - len(plan.to_run))

    def run_here(self, cells: list[PlannedCell]) -> list[JobReturn]:
        """The basic launcher's loop over configs composed once, in the planning pass."""
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        returns = []
        for num, cell in enumerate(cells):
            with open_dict(cell.config):
                cell.config.hydra.job.id = num
                cell.config.hydra.job.num = num
            returns.append(run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=cell.config,
                                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns


register_plugin(PlanningSweeper, PLUGIN_MODULE)
