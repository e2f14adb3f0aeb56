"""Hardware profiles at run time: is this the machine the config says it is?"""

from __future__ import annotations

import re

from harness import environment
from harness.config import ConfigError, HardwareConfig


def check_hardware(hardware: HardwareConfig, runner_cfg) -> str:
    """Detected device name; refuses a device that does not match the profile unless allowed.

    No H100 row may ever be labelled GB200: the profile's `device_pattern` must match the detected
    device name, or `hardware.allow_mismatch=true` must be set (and is recorded in every row).
    """
    device = getattr(runner_cfg, "device", "auto")
    device_type = hardware.device_type if device == "auto" else device
    detected = environment.detected_device(device_type)
    if device_type != hardware.device_type and not hardware.allow_mismatch:
        raise ConfigError(
            f"hardware={hardware.name} expects device_type {hardware.device_type} but the runner uses {device_type}; "
            "set runner.device to match or hardware.allow_mismatch=true"
        )
    if device_type == "cuda" and detected == environment.detected_device("cpu") and not hardware.allow_mismatch:
        raise ConfigError(f"hardware={hardware.name} needs a CUDA GPU and none is available; set hardware=cpu")
    if not re.search(hardware.device_pattern, detected, flags=re.IGNORECASE) and not hardware.allow_mismatch:
        raise ConfigError(
            f"hardware={hardware.name} expects a device matching /{hardware.device_pattern}/ but detected "
            f"{detected!r}; choose the matching hardware profile or set hardware.allow_mismatch=true (recorded)"
        )
    return detected
