"""`dlm-bench`: a Hydra app. One job = one cell; `-m` (or a sweep preset) runs the product."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from harness.config import register_configs, to_bench_config
from harness.execute import run_cell

log = logging.getLogger("dlm-bench")
register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> dict:
    bench = to_bench_config(cfg)
    summary = run_cell(bench)
    log.info("cell %s: %s", summary["label"], summary["status"])
    return summary


if __name__ == "__main__":
    main()
