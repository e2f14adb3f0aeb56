"""Hydra callbacks around a sweep: validate every cell first, summarise every cell last."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from harness.config import ConfigError, to_bench_config

log = logging.getLogger("dlm-bench")


def sweep_job_overrides(config: DictConfig) -> list[list[str]]:
    """The override list of every job the basic sweeper will launch, in launch order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
    overrides = OverridesParser.create().parse_overrides(arguments)
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


class Preflight(Callback):
    """Composes and validates every cell of a sweep before the first model loads.

    Hydra itself catches unknown groups and options; this adds the dataclasses' own checks
    (value ranges, mode parameters, unknown tasks) and, when the cells run on this machine (the
    basic launcher), the hardware check (the detected device must match each cell's hardware
    profile), so a typo in the last cell of a long sweep fails in seconds rather than hours in.
    Under a cluster launcher the submitting host is not the GPU node: each job checks itself.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra import compose

        from harness.hardware import check_hardware

        problems = []
        jobs = sweep_job_overrides(config)
        local = "BasicLauncher" in str(config.hydra.launcher.get("_target_", ""))
        for job in jobs:
            try:
                bench = to_bench_config(compose(config_name=config.hydra.job.config_name, overrides=job))
                if local:
                    check_hardware(bench.hardware, bench.runner)
            except ConfigError as exc:
                problems.append(f"  {' '.join(job)}\n    -> {exc}")
        if problems:
            # Hydra turns exceptions raised in callbacks into warnings; SystemExit stops the sweep.
            print(f"dlm-bench: {len(problems)} of {len(jobs)} cells have invalid configs (nothing was run):", file=sys.stderr)
            print("\n".join(problems), file=sys.stderr)
            raise SystemExit(2)
        log.info("preflight: %d cells validated", len(jobs))


class SweepSummary(Callback):
    """Prints the summary table of the sweep folder and writes its report."""

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._summarise(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._summarise(config)

    def _summarise(self, config: DictConfig) -> None:
        from harness.report import write_report
        from harness.summary import print_summary

        folder = Path(config.results_dir) / config.sweep.name
        if not folder.exists():
            return
        summary = print_summary(folder)
        report = write_report(folder)
        log.info("report: %s", report)
        if summary is not None and (summary["status"] == "failed").any():
            log.warning("%d cell(s) failed: see the table above", int((summary["status"] == "failed").sum()))
