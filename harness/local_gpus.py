"""`launcher=local-gpus`: the jobs of a sweep (cells, shards) spread over the GPUs of this node.

One worker process per job, pinned to one device with ``CUDA_VISIBLE_DEVICES``; a device takes
the next pending job as soon as its job ends. Each worker is a fresh interpreter (never a fork: a
parent that touched CUDA would leak every device into its children), so each job loads its model
once (consecutive cells do not share a load as they do under the basic launcher). The Hydra side
is harness/local_gpus_launcher.py (the launcher) and harness/local_gpus_worker.py (the worker entry
point); what is here is pure and tested with fake device lists.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

DEVICES_KEY = "hydra.launcher.devices"


def nvml_device_count() -> int:
    """GPUs NVML sees (0 without a driver or without nvidia-ml-py)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return 0


def resolve_devices(configured: Sequence[Any] | None, visible: str | None, count: Callable[[], int]) -> list[str]:
    """The devices to spread jobs over, in order: `hydra.launcher.devices` when set, else the
    parent's ``CUDA_VISIBLE_DEVICES`` (indices or GPU UUIDs, kept as written), else every GPU NVML
    counts. Each entry becomes one worker's ``CUDA_VISIBLE_DEVICES``."""
    if configured is not None:
        devices = [str(d).strip() for d in configured]
        source = DEVICES_KEY
    elif visible is not None:
        devices = [d.strip() for d in visible.split(",") if d.strip()]
        source = "CUDA_VISIBLE_DEVICES"
    else:
        devices = [str(i) for i in range(count())]
        source = "NVML"
    if not devices or any(not d for d in devices):
        raise ValueError(f"launcher=local-gpus: no devices from {source} ({list(configured or []) or visible!r}); "
                         f"name them with {DEVICES_KEY}=[0,1,2,3] (on a machine without GPUs any labels work: "
                         "they only set each worker's CUDA_VISIBLE_DEVICES)")
    duplicated = sorted({d for d in devices if devices.count(d) > 1})
    if duplicated:
        raise ValueError(f"launcher=local-gpus: device(s) {duplicated} listed twice in {source}; each device runs one "
                         "job at a time, list it once")
    return devices


def assign(pending: Sequence[int], idle: Sequence[str]) -> list[tuple[int, str]]:
    """Which pending jobs start now, and where: the next jobs in sweep order, one per idle device,
    in the order the devices became idle."""
    return list(zip(pending, idle))


def schedule(durations: Sequence[float], devices: Sequence[str]) -> list[tuple[int, str, float]]:
    """(job, device, start time) for jobs of known durations under `assign`: the pool's policy,
    simulated without processes (for tests and for planning a sweep)."""
    pending, idle, running, plan, now, order = deque(range(len(durations))), deque(devices), [], [], 0.0, 0
    while pending or running:
        for job, device in assign(list(pending), list(idle)):
            pending.popleft()
            idle.popleft()
            plan.append((job, device, now))
            heapq.heappush(running, (now + durations[job], order, device))
            order += 1
        now, _, device = heapq.heappop(running)
        idle.append(device)
    return plan


def run_pool(jobs: Sequence[int], devices: Sequence[str], start: Callable[[int, str], Any],
             done: Callable[[Any], bool], stop: Callable[[Any], None], poll_s: float = 0.2) -> list[tuple[int, str]]:
    """Run `jobs` with at most one per device: `start(job, device)` returns a handle, `done(handle)`
    says whether it ended. Returns (job, device) in start order. On an exception (Ctrl-C
    included) every running job is stopped with `stop(handle)` before it propagates."""
    pending, idle, running, started = deque(jobs), deque(devices), {}, []
    try:
        while pending or running:
            for job, device in assign(list(pending), list(idle)):
                pending.popleft()
                idle.popleft()
                running[device] = (job, start(job, device))
                started.append((job, device))
            ended = [device for device, (_, handle) in running.items() if done(handle)]
            for device in ended:
                del running[device]
                idle.append(device)
            if not ended:
                time.sleep(poll_s)
    finally:
        for _, handle in running.values():
            stop(handle)
    return started
