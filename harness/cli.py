"""`dlm-bench`: a Hydra app. One job = one cell; `-m` (or a sweep preset) runs the product.

Before Hydra starts, the command line is checked against the config tree and the dataclasses,
so a misspelt group option (`mode=difusion`), a value where an option name belongs
(`context=-5`) or an unknown key (`mode.treshold=0.9`) fails at once with the valid choices.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from harness import config as schema
from harness.config import register_configs, to_bench_config
from harness.execute import run_cell

log = logging.getLogger("dlm-bench")
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
GROUP_SCHEMAS = {
    "model": (schema.ModelConfig,),
    "mode": (schema.ModeConfig,),
    "runner": tuple(schema.RUNNER_SCHEMAS.values()),
    "hardware": (schema.HardwareConfig,),
    "context": (schema.ContextConfig,),
    "task": (schema.TaskConfig,),
    "sweep": (schema.SweepConfig,),
}
SWEEP_FUNCTIONS = ("choice(", "range(", "glob(", "interval(", "shuffle(", "sort(", "tag(")
HINTS = {"context": "to pad prompts to N tokens of the model's tokenizer, use context.input_tokens=N"}
register_configs()


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def check_overrides(arguments: list[str]) -> list[str]:
    """Problems with command-line overrides that Hydra would report obscurely or late."""
    problems = []
    for argument in arguments:
        match = re.fullmatch(r"[+~]{0,2}([A-Za-z_][\w.]*)=(.*)", argument)
        if not match:
            continue
        key, value = match.groups()
        group, _, field = key.partition(".")
        if group not in GROUP_SCHEMAS:
            continue
        if not field:
            if value.startswith(SWEEP_FUNCTIONS):
                continue
            options = group_options(group)
            for choice in (v.strip() for v in value.split(",")):
                if choice not in options:
                    hint = f" ({HINTS[group]})" if group in HINTS else ""
                    problems.append(f"{group}={choice}: no such {group} option; choose one of: {', '.join(options)}{hint}")
        else:
            name = field.split(".")[0]
            valid = sorted({f.name for s in GROUP_SCHEMAS[group] for f in dataclasses.fields(s)})
            if name not in valid:
                problems.append(f"{group}.{name}: unknown key; valid keys of {group}: {', '.join(valid)}")
    return problems


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def run(cfg: DictConfig) -> dict:
    bench = to_bench_config(cfg)
    hydra_cfg = HydraConfig.get()
    job_num = hydra_cfg.job.num if hydra_cfg.mode == RunMode.MULTIRUN else None
    return run_cell(bench, job_num)


def main() -> None:
    # `--force` is the conventional spelling of the config flag that reruns complete cells.
    sys.argv = [("force=true" if a == "--force" else a) for a in sys.argv]
    problems = check_overrides(sys.argv[1:])
    if problems:
        print("dlm-bench: invalid configuration (nothing was run):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        sys.exit(2)
    run()


if __name__ == "__main__":
    main()
