"""Hydra callbacks around a sweep: validate every cell first, summarise every cell last.

Hydra turns exceptions raised in callbacks into warnings, so these stop a run with SystemExit:
exit status 2 for a configuration that must not run, 1 when cells of this run failed.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from harness import progress
from harness.config import BenchConfig, ConfigError, to_bench_config
from harness.shards import SHARDS_OVERRIDE, expand_shard_jobs

log = logging.getLogger("dlm-bench")


def sweep_job_overrides(config: DictConfig, shards_of=None) -> list[list[str]]:
    """The override list of every job the sweeper will launch, in launch order; with `shards_of`
    (job -> its runner.shards), sharded cells expanded as the sweeper expands them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
    overrides = OverridesParser.create().parse_overrides(arguments)
    jobs = [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
    return expand_shard_jobs(jobs, shards_of) if shards_of is not None else jobs


def model_switches(cells: list[BenchConfig]) -> int:
    """How many times consecutive cells change model (each switch is a model load)."""
    keys = [(c.model.source, c.model.revision, c.model.dtype) for c in cells]
    return sum(a != b for a, b in zip(keys, keys[1:]))


class Preflight(Callback):
    """Composes and validates every cell of a sweep before the first model loads.

    Hydra itself catches unknown groups and options; this adds the dataclasses' own checks
    (value ranges, mode parameters, unknown tasks), the sweep-level rules and, when the cells run
    on this machine (the basic launcher), the hardware check (the detected device must match each
    cell's hardware profile), so a typo in the last cell of a long sweep fails in seconds rather
    than hours in. Under a cluster launcher the submitting host is not the GPU node: each job
    checks itself.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        progress.announce_sweep(1)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra import compose

        from harness.hardware import check_hardware

        problems, cells = [], []
        name = config.hydra.job.config_name
        jobs = sweep_job_overrides(config, lambda job: int(compose(config_name=name, overrides=list(job)).runner.get(
            SHARDS_OVERRIDE.split(".")[1], 1)))
        local = "BasicLauncher" in str(config.hydra.launcher.get("_target_", ""))
        for job in jobs:
            try:
                bench = to_bench_config(compose(config_name=config.hydra.job.config_name, overrides=job))
                cells.append(bench)
                if local:
                    check_hardware(bench.hardware, bench.runner)
            except ConfigError as exc:
                problems.append(f"  {' '.join(job)}\n    -> {exc}")
        if not problems and "SlurmLauncher" in str(config.hydra.launcher.get("_target_", "")):
            profiles = sorted({c.hardware.name for c in cells})
            if len(profiles) > 1:
                problems.append(f"  one SLURM sweep per hardware profile: this one mixes {profiles}, but its jobs "
                                "all go to one partition; run a sweep per hardware=...")
        if problems:
            print(f"dlm-bench: {len(problems)} problem(s) in a sweep of {len(jobs)} cells (nothing was run):", file=sys.stderr)
            print("\n".join(problems), file=sys.stderr)
            raise SystemExit(2)
        distinct = len({(c.model.source, c.model.revision, c.model.dtype) for c in cells})
        switches = model_switches(cells)
        if switches > distinct - 1:
            log.warning("cells alternate between models (%d loads for %d models): list `model` first in the "
                        "sweep so that it varies slowest", switches + 1, distinct)
        progress.announce_sweep(len(jobs))
        log.info("preflight: %d cells validated, %d model(s)", len(jobs), distinct)


class SweepSummary(Callback):
    """Prints the summary table of the sweep folder, writes its report, sets the exit status."""

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._summarise(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._summarise(config)

    def _summarise(self, config: DictConfig) -> None:
        from harness.report import write_report
        from harness.store import read_results
        from harness.summary import failures_since, print_summary

        folder = Path(config.results_dir) / config.sweep.name
        if not folder.exists():
            return
        records = read_results(folder)  # once: the summary, the report and the exit status share it
        print_summary(folder, records)
        log.info("report: %s", write_report(folder, records))
        failed = failures_since(records, float(os.environ.get(progress.STARTED, time.time())))
        if failed:
            print(f"dlm-bench: {len(failed)} cell(s) failed in this run:", file=sys.stderr)
            for label, reason in failed:
                print(f"  {label}: {reason.strip().splitlines()[-1]}", file=sys.stderr)
            raise SystemExit(1)
