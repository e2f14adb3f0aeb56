"""GPU telemetry through NVML (nvidia-ml-py, ``import pynvml``), around each cell.

What is read, and when:

- once per cell: name, UUID, total memory, enforced power limit, the SM clock's maximum;
- every ``hardware.telemetry_interval_s`` by a background thread (0 = never): power draw, SM and
  memory clocks, temperature, memory used, clock-event (throttle) reasons. NVML reads are
  driver queries that take microseconds and launch nothing on the GPU, so the cell runs as it
  would without them;
- the total-energy counter (mJ since the driver loaded) before and after every region the runner
  marks as measured (`runners.base.Meter`: its timed decodes, warm-up excluded) and summed:
  ``gpu_energy_j`` covers exactly the work whose tokens the records count. A runner that marks
  nothing gets the energy of its whole run, flagged ``gpu_energy_region = cell``.

On a machine without NVML (no library, no driver, no GPU) every field is null and the cell runs on.
The raw samples go into the cell file's metadata (``gpu_telemetry``, JSON); the rows carry the
cell's figures (`COLUMNS`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field

from runners.base import Meter

log = logging.getLogger(__name__)

# NVML's clock-event reason bits (nvmlClocksEventReason*, formerly *ThrottleReason*), as documented
# in NVML's API reference. Idle is not a throttle: it is recorded but means nothing was running.
THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}

COLUMNS = (
    "gpu_name", "gpu_uuid", "gpu_memory_total_bytes", "gpu_memory_used_max_bytes", "gpu_power_limit_w",
    "gpu_power_draw_mean_w", "gpu_power_draw_max_w", "gpu_sm_clock_limit_mhz", "gpu_sm_clock_mean_mhz",
    "gpu_sm_clock_min_mhz", "gpu_mem_clock_mean_mhz", "gpu_temperature_max_c", "gpu_throttle_reasons",
    "gpu_energy_j", "gpu_energy_region_s", "gpu_energy_region", "gpu_telemetry_samples",
)


@dataclass
class Reading:
    """One background sample; None where the GPU does not report the quantity."""

    t_s: float  # seconds since the cell's telemetry started
    power_w: float | None
    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    temperature_c: int | None
    memory_used_bytes: int | None
    throttle_mask: int | None


class NvmlDevice:
    """One GPU read through NVML. `open` returns None when NVML or the GPU is not there."""

    def __init__(self, pynvml, handle):
        self._nvml = pynvml
        self._handle = handle

    @classmethod
    def open(cls, torch_index: int = 0) -> NvmlDevice | None:
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:  # no nvidia-ml-py, no libnvidia-ml, no driver
            log.info("NVML unavailable (%s): GPU telemetry fields stay null", exc)
            return None
        try:
            return cls(pynvml, _handle_for_torch_device(pynvml, torch_index))
        except Exception as exc:
            log.info("NVML has no handle for cuda:%d (%s): GPU telemetry fields stay null", torch_index, exc)
            pynvml.nvmlShutdown()
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()

    def _read(self, fn, *args):
        try:
            return fn(self._handle, *args)
        except Exception:  # NVMLError_NotSupported and friends: that one field stays null
            return None

    def static(self) -> dict:
        nvml = self._nvml
        name = self._read(nvml.nvmlDeviceGetName)
        uuid = self._read(nvml.nvmlDeviceGetUUID)
        memory = self._read(nvml.nvmlDeviceGetMemoryInfo)
        limit_mw = self._read(nvml.nvmlDeviceGetEnforcedPowerLimit)
        return {
            "gpu_name": _text(name),
            "gpu_uuid": _text(uuid),
            "gpu_memory_total_bytes": int(memory.total) if memory is not None else None,
            "gpu_power_limit_w": limit_mw / 1e3 if limit_mw is not None else None,
            "gpu_sm_clock_limit_mhz": self._read(nvml.nvmlDeviceGetMaxClockInfo, nvml.NVML_CLOCK_SM),
        }

    def sample(self, t_s: float) -> Reading:
        nvml = self._nvml
        power_mw = self._read(nvml.nvmlDeviceGetPowerUsage)
        memory = self._read(nvml.nvmlDeviceGetMemoryInfo)
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return Reading(
            t_s=t_s,
            power_w=power_mw / 1e3 if power_mw is not None else None,
            sm_clock_mhz=self._read(nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_SM),
            mem_clock_mhz=self._read(nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_MEM),
            temperature_c=self._read(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU),
            memory_used_bytes=int(memory.used) if memory is not None else None,
            throttle_mask=self._read(reasons),
        )

    def energy_mj(self) -> int | None:
        """The total-energy counter (mJ since the driver loaded; Volta and later), or None."""
        return self._read(self._nvml.nvmlDeviceGetTotalEnergyConsumption)


def _handle_for_torch_device(pynvml, torch_index: int):
    """The NVML handle of torch's cuda:<index>. NVML numbers every GPU of the machine while torch
    numbers only CUDA_VISIBLE_DEVICES, so match by UUID; fall back to the visible list, then index."""
    import torch

    if torch.cuda.is_available():
        uuid = str(getattr(torch.cuda.get_device_properties(torch_index), "uuid", "") or "")
        if uuid:
            with contextlib.suppress(Exception):
                return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if torch_index < len(visible):
        entry = visible[torch_index]
        if entry.isdigit():
            return pynvml.nvmlDeviceGetHandleByIndex(int(entry))
        return pynvml.nvmlDeviceGetHandleByUUID(entry)
    return pynvml.nvmlDeviceGetHandleByIndex(torch_index)


@dataclass
class CellTelemetry(Meter):
    """Samples one GPU around a cell (``with telemetry:``) and meters the runner's measured regions.

    ``device`` is anything with `static`, `sample` and `energy_mj` (an `NvmlDevice`), or None: then
    every column is null and nothing runs.
    """

    device: object | None
    interval_s: float = 0.2
    readings: list[Reading] = field(default_factory=list)
    energy_mj: float = 0.0
    region_s: float = 0.0
    regions: int = 0
    _static: dict = field(default_factory=dict)
    _t0: float = 0.0
    _cell_energy: tuple[int | None, int | None] = (None, None)
    _cell_seconds: float = 0.0
    _energy_readable: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> CellTelemetry:
        if self.device is None:
            return self
        self._t0 = time.perf_counter()
        self._static = self.device.static()
        self._record_sample()
        start_energy = self.device.energy_mj()
        self._energy_readable = start_energy is not None
        self._cell_energy = (start_energy, None)
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._sample_loop, name="gpu-telemetry", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._record_sample()
        self._cell_energy = (self._cell_energy[0], self.device.energy_mj())
        self._cell_seconds = time.perf_counter() - self._t0
        self.device.close()

    @contextlib.contextmanager
    def measure(self):
        if self.device is None:
            yield
            return
        before, started = self.device.energy_mj(), time.perf_counter()
        try:
            yield
        finally:
            after, seconds = self.device.energy_mj(), time.perf_counter() - started
            with self._lock:
                self.region_s += seconds
                self.regions += 1
                if before is not None and after is not None:
                    self.energy_mj += after - before

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._record_sample()

    def _record_sample(self) -> None:
        reading = self.device.sample(time.perf_counter() - self._t0)
        with self._lock:
            self.readings.append(reading)

    def columns(self) -> dict:
        """The cell's telemetry columns (all None without a device)."""
        if self.device is None:
            return dict.fromkeys(COLUMNS)
        with self._lock:
            readings = list(self.readings)
        power = [r.power_w for r in readings if r.power_w is not None]
        sm = [r.sm_clock_mhz for r in readings if r.sm_clock_mhz is not None]
        mem = [r.mem_clock_mhz for r in readings if r.mem_clock_mhz is not None]
        temps = [r.temperature_c for r in readings if r.temperature_c is not None]
        used = [r.memory_used_bytes for r in readings if r.memory_used_bytes is not None]
        mask = 0
        for r in readings:
            mask |= r.throttle_mask or 0
        # a counter that was never readable stays null rather than reading as 0 J
        if self.regions:
            energy_j = self.energy_mj / 1e3 if self._energy_readable else None
            region_s, region = self.region_s, "timed"
        else:
            start, end = self._cell_energy
            energy_j = (end - start) / 1e3 if start is not None and end is not None else None
            region_s, region = self._cell_seconds, "cell"
        return {
            **self._static,
            "gpu_memory_used_max_bytes": max(used) if used else None,
            "gpu_power_draw_mean_w": sum(power) / len(power) if power else None,
            "gpu_power_draw_max_w": max(power) if power else None,
            "gpu_sm_clock_mean_mhz": sum(sm) / len(sm) if sm else None,
            "gpu_sm_clock_min_mhz": min(sm) if sm else None,
            "gpu_mem_clock_mean_mhz": sum(mem) / len(mem) if mem else None,
            "gpu_temperature_max_c": max(temps) if temps else None,
            "gpu_throttle_reasons": throttle_reasons(mask),
            "gpu_energy_j": energy_j,
            "gpu_energy_region_s": region_s,
            "gpu_energy_region": region,
            "gpu_telemetry_samples": len(readings),
        }

    def metadata(self) -> dict[str, str]:
        """The raw samples, for the cell file's metadata (``gpu_telemetry``)."""
        if self.device is None:
            return {}
        series = {"interval_s": self.interval_s, "samples": [asdict(r) for r in self.readings]}
        return {"gpu_telemetry": json.dumps(series, default=_json_default)}


def throttle_reasons(mask: int) -> list[str]:
    """Names of the set bits of an NVML clock-event reason mask, lowest bit first."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    return names + ([f"unknown_0x{unknown:x}"] if unknown else [])


def open_cell_telemetry(device_type: str, interval_s: float) -> CellTelemetry:
    """Telemetry for a cell on ``device_type``: NVML on CUDA when it is there, else all-null."""
    device = NvmlDevice.open(0) if device_type == "cuda" else None
    return CellTelemetry(device=device, interval_s=interval_s)


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _json_default(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"not JSON serialisable: {value!r}")
