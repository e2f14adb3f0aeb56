"""`dlm-bench`: a Hydra app. One job = one cell; `-m` (or a sweep preset) runs the product.

Before Hydra starts, the command line is checked against the config tree and the dataclasses,
so a misspelt group option (`mode=difusion`), a value where an option name belongs
(`context=-5`) or an unknown key (`mode.treshold=0.9`, `+foo=1`) fails at once with the valid
choices. One rule for every refused configuration, whether this check, Hydra (a bad override, a
missing config) or the planning sweeper refuses it: a clean message and exit status 2.
Ctrl-C and SIGTERM end a sweep with one line and exit status 130 / 143; a rerun resumes it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

import harness.sweeper  # noqa: F401  (registers the planning sweeper with Hydra)
from harness import config as schema
from harness import progress
from harness.config import ConfigError, register_configs, to_bench_config

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
            known = top_level_keys()
            if group not in known:
                problems.append(f"{key}: unknown key; valid top-level keys: {', '.join(known)}")
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


HELP_GROUPS = ("model", "mode", "runner", "hardware", "context", "task", "sweep", "launcher")


def version() -> str:
    """dlm-bench's version: the installed distribution's, else pyproject.toml's (a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version("dlm-bench")
    except metadata.PackageNotFoundError:
        import tomllib

        return tomllib.loads((CONFIG_DIR.parent / "pyproject.toml").read_text())["project"]["version"]


def register_help() -> None:
    """`dlm-bench --help` through Hydra's help template (hydra/help), about dlm-bench: the groups a
    user chooses from, with their options read from configs/ (not the schema groups)."""
    from hydra.core.config_store import ConfigStore

    groups = "\n".join(f"  {g:9s} {', '.join(group_options(g))}" for g in HELP_GROUPS)
    template = (
        f"dlm-bench {version()}: benchmarks diffusion LMs' decoding modes against autoregressive baselines.\n\n"
        "Usage: dlm-bench [group=option ...] [key=value ...] [-m] [--force] [--dry-run] [--version]\n\n"
        "  dlm-bench                                  the embedded default sweep (tiny model, CPU)\n"
        "  dlm-bench sweep=single mode=diffusion      one cell\n"
        "  dlm-bench -m mode=ar,diffusion task=copy   a sweep: the product of the comma lists\n"
        "  dlm-bench --dry-run ...                    list the cells, their keys and what would run\n"
        "  dlm-bench --force ...                      rerun cells that are complete\n\n"
        "Config groups (group=option):\n" + groups + "\n\n"
        "Every key and its default: harness/config.py; `dlm-bench --cfg job ...` prints the composed config.\n"
        "Exit status: 0 done, 1 a cell of this run failed or the report failed, 2 a refused configuration,\n"
        "130/143 interrupted (harness/README.md).\n")
    ConfigStore.instance().store(group="hydra/help", name="dlm_bench", provider="dlm-bench",
                                 node={"app_name": "dlm-bench", "header": "", "footer": "",
                                       "template": template})


def top_level_keys() -> list[str]:
    """What a top-level override may name: a BenchConfig field, a config group, or hydra."""
    groups = {p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")}
    return sorted({f.name for f in dataclasses.fields(schema.BenchConfig)} | groups | {"hydra"})


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so that atomic writes clean up as for Ctrl-C.
    A BaseException: the cell runner's `except Exception` must not record it as a failed cell."""


def raise_terminated(signum, frame) -> None:
    raise Terminated()


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def run(cfg: DictConfig) -> dict:
    from harness.execute import run_cell  # torch and the runners: only once a cell runs

    bench = to_bench_config(cfg)
    hydra_cfg = HydraConfig.get()
    job_num = hydra_cfg.job.num if hydra_cfg.mode == RunMode.MULTIRUN else None
    return run_cell(bench, job_num)


def refused(message: str) -> None:
    print("dlm-bench: invalid configuration (nothing was run):", file=sys.stderr)
    for line in message.strip().splitlines():
        print(f"  {line}", file=sys.stderr)
    sys.exit(2)


def interrupted(status: int) -> None:
    line = progress.interruption_line()
    print(f"\ndlm-bench: {line}", file=sys.stderr)
    progress.note_in_sweep_log(line)
    sys.exit(status)


def main() -> None:
    if "--version" in sys.argv[1:]:
        print(f"dlm-bench {version()}")
        return
    # `--force` is the conventional spelling of the config flag that reruns complete cells;
    # `--dry-run` plans the sweep and lists its cells without running or writing anything.
    flags = {"--force": "force=true", "--dry-run": "hydra.sweeper.dry_run=true"}
    # (as overrides after the others: Hydra's parser takes one run of overrides, so not before `-m`)
    sys.argv = [a for a in sys.argv if a not in flags] + [flags[a] for a in sys.argv if a in flags]
    if "--help" in sys.argv[1:] or "-h" in sys.argv[1:]:
        register_help()
        sys.argv.append("hydra/help=dlm_bench")  # registered here only: other composers keep Hydra's default

    problems = check_overrides(sys.argv[1:])
    if problems:
        refused("\n".join(problems))
    # Hydra's errors reach this function as exceptions (not as Hydra's own report and exit 1),
    # so that a refused configuration exits 2 here whatever refused it.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        run()
    except (HydraException, OmegaConfBaseException, ConfigError) as exc:
        cause = exc.__cause__
        refused(str(exc) + (f"\n{cause}" if isinstance(cause, OmegaConfBaseException) else ""))
    except KeyboardInterrupt:
        interrupted(128 + signal.SIGINT)
    except Terminated:
        interrupted(128 + signal.SIGTERM)


if __name__ == "__main__":
    main()
