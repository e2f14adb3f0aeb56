"""GPU telemetry: real NVML where there is one, null fields and an uninterrupted run where there is none."""

from __future__ import annotations

import time

import pytest

from harness.records import _TELEMETRY
from harness.telemetry import COLUMNS, CellTelemetry, NvmlDevice, Reading, open_cell_telemetry, throttle_reasons


def nvml_present() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


def test_the_telemetry_columns_are_the_schema_columns():
    assert list(COLUMNS) == [c.name for c in _TELEMETRY]


def test_this_machines_nvml_is_read_or_every_field_is_null():
    telemetry = open_cell_telemetry("cuda", interval_s=0.05)
    with telemetry:
        with telemetry.measure():
            time.sleep(0.12)  # the cell's work goes on either way
    columns = telemetry.columns()
    assert set(columns) == set(COLUMNS)
    if nvml_present():
        assert columns["gpu_name"] and columns["gpu_energy_region"] == "timed"
        assert columns["gpu_telemetry_samples"] >= 2
    else:
        assert NvmlDevice.open(0) is None
        assert all(value is None for value in columns.values())
        assert telemetry.metadata() == {}


def test_a_cpu_cell_reads_no_gpu():
    telemetry = open_cell_telemetry("cpu", interval_s=0.05)
    with telemetry:
        pass
    assert telemetry.device is None and all(v is None for v in telemetry.columns().values())


class CountingGpu:
    """A stand-in GPU for the sampler's bookkeeping (NVML is not on this machine): an energy
    counter that advances 1,000 mJ per read, and readings that vary in a known way."""

    def __init__(self, energy=True):
        self.energy_reads = 0
        self.samples = 0
        self.energy = energy

    def static(self):
        return {"gpu_name": "Test GPU", "gpu_uuid": "GPU-0", "gpu_memory_total_bytes": 80 * 2**30,
                "gpu_power_limit_w": 700.0, "gpu_sm_clock_limit_mhz": 1980}

    def sample(self, t_s):
        self.samples += 1
        power = 100.0 * self.samples
        return Reading(t_s=t_s, power_w=power, sm_clock_mhz=1980 - self.samples, mem_clock_mhz=2619,
                       temperature_c=30 + self.samples, memory_used_bytes=self.samples * 2**20,
                       throttle_mask=0x4 if self.samples == 2 else 0x1)

    def energy_mj(self):
        if not self.energy:
            return None
        self.energy_reads += 1
        return 1_000 * self.energy_reads

    def close(self):
        pass


def test_energy_counts_only_the_measured_regions():
    gpu = CountingGpu()
    telemetry = CellTelemetry(device=gpu, interval_s=0)  # no background thread: start and end samples only
    with telemetry:  # energy read 1 at the start of the cell
        for _ in range(3):  # warm-up would happen here, outside any region
            with telemetry.measure():  # reads k, k+1: 1,000 mJ per region
                pass
    columns = telemetry.columns()
    assert columns["gpu_energy_j"] == pytest.approx(3.0)
    assert columns["gpu_energy_region"] == "timed"
    assert telemetry.regions == 3
    assert columns["gpu_telemetry_samples"] == 2
    assert columns["gpu_power_draw_mean_w"] == 150.0 and columns["gpu_power_draw_max_w"] == 200.0
    assert columns["gpu_sm_clock_min_mhz"] == 1978 and columns["gpu_temperature_max_c"] == 32
    assert columns["gpu_throttle_reasons"] == ["gpu_idle", "sw_power_cap"]
    assert columns["gpu_name"] == "Test GPU" and columns["gpu_memory_used_max_bytes"] == 2 * 2**20
    assert '"power_w": 100.0' in telemetry.metadata()["gpu_telemetry"]


def test_a_runner_that_marks_nothing_gets_the_whole_cells_energy():
    telemetry = CellTelemetry(device=CountingGpu(), interval_s=0.01)
    with telemetry:
        time.sleep(0.05)
    columns = telemetry.columns()
    assert columns["gpu_energy_region"] == "cell" and columns["gpu_energy_j"] == pytest.approx(1.0)
    assert columns["gpu_energy_region_s"] >= 0.05
    assert columns["gpu_telemetry_samples"] >= 3  # the background thread sampled in between


def test_a_gpu_without_an_energy_counter_leaves_energy_null():
    telemetry = CellTelemetry(device=CountingGpu(energy=False), interval_s=0)
    with telemetry:
        with telemetry.measure():
            pass
    columns = telemetry.columns()
    assert columns["gpu_energy_j"] is None and columns["gpu_power_draw_mean_w"] == 150.0


def test_throttle_reason_bits_are_named():
    assert throttle_reasons(0) == []
    assert throttle_reasons(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert throttle_reasons(0x1000) == ["unknown_0x1000"]
