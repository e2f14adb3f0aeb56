"""`launcher=local-gpus`: every job of the sweep in its own worker process, one per GPU of this
node at a time (harness/local_gpus.py holds the policy). Resume and failure rules are those of
the other launchers: a complete cell or shard is not rerun, a failing cell is a `failed` row and
the exit status is 1, and a worker that dies without a result (killed, out of memory) fails the
sweep like a lost submitit job, with its log named; the next run reruns only what is missing.

Hydra instantiates launchers only from its ``hydra_plugins`` namespace package: importing this
module registers it there under `PLUGIN_MODULE` (harness/plugins.py; configs/hydra/launcher/
local_gpus.yaml names that path). harness.sweeper imports it.
"""

import json
import logging
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from harness.local_gpus import nvml_device_count, resolve_devices, run_pool
from harness.plugins import register_plugin

log = logging.getLogger(__name__)
WORKER = "harness.local_gpus_worker"
PLUGIN_MODULE = "hydra_plugins.dlm_bench_local_gpus"


class LocalGpusLauncher(Launcher):
    def __init__(self, devices: Optional[Sequence[Any]] = None, poll_s: float = 0.2) -> None:
        self.devices = None if devices is None else list(OmegaConf.to_container(devices) if OmegaConf.is_config(devices) else devices)
        self.poll_s = poll_s
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        devices = resolve_devices(self.devices, os.environ.get("CUDA_VISIBLE_DEVICES"), nvml_device_count)
        folder = Path(str(self.config.hydra.sweep.dir)) / ".local_gpus"
        folder.mkdir(parents=True, exist_ok=True)
        context = folder / f"launch-{initial_job_idx}.pkl"
        import cloudpickle  # Hydra's state holds closures (OmegaConf resolvers), as submitit's jobs do

        with open(context, "wb") as handle:  # what every worker needs to compose and run its job
            cloudpickle.dump({"hydra_context": self.hydra_context, "config": self.config, "singleton": Singleton.get_state(),
                              "task": self.task_function}, handle)
        log.info("local-gpus: %d job(s) over %d device(s) %s; logs in %s", len(job_overrides), len(devices), devices, folder)
        jobs = {initial_job_idx + i: list(o) for i, o in enumerate(job_overrides)}

        results: Dict[int, JobReturn] = {}

        def start(num: int, device: str) -> Worker:
            spec, result, out = (folder / f"job{num}{suffix}" for suffix in (".json", ".result.pkl", ".log"))
            result.unlink(missing_ok=True)
            spec.write_text(json.dumps({"num": num, "overrides": jobs[num], "device": device}))
            log.info("\t#%d on device %s : %s", num, device, " ".join(filter_overrides(jobs[num])))
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": device}
            with open(out, "wb") as sink:
                proc = subprocess.Popen([sys.executable, "-m", WORKER, str(context), str(spec), str(result)],
                                        env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
            return Worker(num, device, proc, result, out)

        def done(worker: Worker) -> bool:
            if worker.proc.poll() is None:
                return False
            results[worker.num] = outcome = collect_result(worker, jobs[worker.num])
            value = outcome._return_value
            status = value.get("status") if isinstance(value, dict) else outcome.status.name.lower()
            log.info("\t#%d on device %s finished: %s", worker.num, worker.device, status)
            return True

        def stop(worker: Worker) -> None:
            worker.proc.kill()
            worker.proc.wait()

        run_pool(list(jobs), devices, start, done, stop, self.poll_s)
        return [results[num] for num in jobs]


@dataclass
class Worker:
    num: int  # Hydra's job number
    device: str  # its CUDA_VISIBLE_DEVICES
    proc: subprocess.Popen
    result: Path
    out: Path  # its stdout and stderr


def collect_result(worker: Worker, overrides: List[str]) -> JobReturn:
    num, device, proc, out = worker.num, worker.device, worker.proc, worker.out
    if proc.returncode == 0 and worker.result.exists():
        with open(worker.result, "rb") as handle:
            payload = pickle.load(handle)
        ret = JobReturn(overrides=overrides, status=JobStatus[payload["status"]], working_dir=payload["working_dir"],
                        task_name=payload["task_name"])
        ret.return_value = payload["value"]
        return ret
    tail = out.read_text(errors="replace").splitlines()[-20:] if out.exists() else []
    how = (f"signal {-proc.returncode} (killed, or out of memory?)" if proc.returncode < 0
           else f"exit status {proc.returncode}")
    message = f"local-gpus: job #{num} on device {device} ended with {how} and no result; log: {out}\n" + "\n".join(tail)
    log.error(message)
    lost = JobReturn(overrides=overrides, status=JobStatus.FAILED)
    lost.return_value = RuntimeError(message)
    return lost


register_plugin(LocalGpusLauncher, PLUGIN_MODULE)
