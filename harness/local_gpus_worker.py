"""One local-gpus job in a fresh process: `python -m harness.local_gpus_worker <launch.pkl>
<job.json> <result.pkl>`, started by the launcher with CUDA_VISIBLE_DEVICES pinned. It composes
the job's config as Hydra's launchers do and writes the JobReturn atomically."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path


def run_worker(context_file: str, spec_file: str, result_file: str) -> None:
    from hydra.core.singleton import Singleton
    from hydra.core.utils import run_job, setup_globals
    from omegaconf import open_dict

    import harness.callbacks  # noqa: F401  (the plugin aliases Hydra's pickled state names, before it is loaded)

    with open(context_file, "rb") as handle:
        context = pickle.load(handle)
    spec = json.loads(Path(spec_file).read_text())
    print(f"local-gpus worker: job #{spec['num']}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}",
          file=sys.stderr, flush=True)
    Singleton.set_state(context["singleton"])
    setup_globals()
    task = context["task"]
    hydra_context = context["hydra_context"]
    sweep_config = hydra_context.config_loader.load_sweep_config(context["config"], spec["overrides"])
    with open_dict(sweep_config.hydra.job) as job:
        job.id = f"local-gpus-{spec['num']}"
        job.num = spec["num"]
    ret = run_job(hydra_context=hydra_context, task_function=task, config=sweep_config,
                  job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    # The JobReturn's configs hold classes Hydra loaded outside sys.modules: send what the sweeper reads.
    value = ret._return_value
    try:
        payload = pickle.dumps({"status": ret.status.name, "value": value, "working_dir": ret.working_dir,
                                "task_name": ret.task_name})
    except Exception:
        payload = pickle.dumps({"status": ret.status.name, "value": RuntimeError(repr(value)),
                                "working_dir": ret.working_dir, "task_name": ret.task_name})
    tmp = f"{result_file}.{os.getpid()}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, result_file)


if __name__ == "__main__":
    run_worker(*sys.argv[1:4])
