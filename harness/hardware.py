"""Hardware profiles at run time: is this the machine the config says it is?

No H100 row may ever be labelled GB200: before anything loads, the detected device is compared
with the profile (its device type, then its name against ``device_pattern``). A mismatch is
refused with a message naming both, unless ``hardware.allow_mismatch=true``; then the run goes on
and every row records why the device did not match (``hardware_mismatch``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness import environment
from harness.config import ConfigError, HardwareConfig


@dataclass(frozen=True)
class HardwareCheck:
    detected: str  # the device name the run uses: the GPU's name, or the CPU model
    mismatch: str | None  # why it does not match the profile (None = it matches)


def run_device_type(hardware: HardwareConfig, runner_cfg) -> str:
    """cpu or cuda: the runner's ``device`` when set, else the profile's ``device_type``."""
    device = getattr(runner_cfg, "device", "auto")
    return hardware.device_type if device == "auto" else device


def check_hardware(hardware: HardwareConfig, runner_cfg) -> HardwareCheck:
    device_type = run_device_type(hardware, runner_cfg)
    detected = environment.detected_device(device_type)
    mismatch = mismatch_reason(hardware, device_type, detected)
    if mismatch and not hardware.allow_mismatch:
        raise ConfigError(
            f"hardware={hardware.name}: {mismatch}. Choose the hardware profile of this machine "
            f"(configs/hardware/), or set hardware.allow_mismatch=true to run anyway (recorded in every row)"
        )
    return HardwareCheck(detected=detected, mismatch=mismatch)


def mismatch_reason(hardware: HardwareConfig, device_type: str, detected: str) -> str | None:
    if device_type != hardware.device_type:
        return (f"the profile is a {hardware.device_type} device but the runner uses {device_type} "
                f"(runner.device); detected {detected!r}")
    if device_type == "cuda" and not environment.cuda_available():
        return f"the profile needs a CUDA GPU and none is available; detected {detected!r}"
    return name_mismatch(hardware, detected)


def name_mismatch(hardware: HardwareConfig, detected: str) -> str | None:
    """Why the device name does not match the profile's ``device_pattern`` (None = it matches)."""
    if not re.search(hardware.device_pattern, detected, flags=re.IGNORECASE):
        return f"the profile expects a device matching /{hardware.device_pattern}/ but detected {detected!r}"
    return None


def hardware_columns(hardware: HardwareConfig, check: HardwareCheck) -> dict:
    """The profile's figures, recorded in every row so roofline and cost re-derive from parquet alone."""
    return {
        "hardware_detected": check.detected,
        "hardware_mismatch": check.mismatch,
        "hw_device_pattern": hardware.device_pattern,
        "hw_memory_gb": hardware.memory_gb,
        "hw_memory_bandwidth_gbs": hardware.memory_bandwidth_gbs,
        "hw_bf16_tflops": hardware.bf16_tflops,
        "hw_price_per_gpu_hour": hardware.price_per_gpu_hour,
        "hw_gpus": hardware.gpus,
    }
