"""What machine and software produced a record: captured once per process, stored in every row.

Git SHA and dirty flag of the harness checkout; versions of Python, torch, transformers and the
engines (vllm, sglang: null when not installed), nvidia-ml-py; the CUDA version torch was built
with and the one the driver supports; driver, GPU name and count; CPU model and count; host and OS.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def capture() -> dict:
    return {
        "env_git_sha": _git("rev-parse", "HEAD"),
        "env_git_dirty": _git_dirty(),
        "env_python": platform.python_version(),
        "env_torch": torch.__version__,
        "env_transformers": _version("transformers"),
        "env_vllm": _version("vllm"),
        "env_sglang": _version("sglang"),
        "env_nvidia_ml_py": _version("nvidia-ml-py"),
        "env_cuda": torch.version.cuda,
        **_nvml_system(),
        "env_gpu_name": torch.cuda.get_device_name(0) if cuda_available() else None,
        "env_gpu_count": torch.cuda.device_count() if cuda_available() else 0,
        "env_cpu": _cpu_model(),
        "env_cpu_count": os.cpu_count(),
        "env_host": socket.gethostname(),
        "env_platform": f"{platform.system()}-{platform.release()}-{platform.machine()}",
    }


def cuda_available() -> bool:
    return torch.cuda.is_available()


def detected_device(device_type: str) -> str:
    """Name of the device the run will use: the GPU's name, or the CPU model."""
    if device_type == "cuda" and cuda_available():
        return torch.cuda.get_device_name(0)
    return _cpu_model() or platform.processor() or "cpu"


def package_versions(*names: str) -> dict[str, str | None]:
    return {name: _version(name) for name in names}


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_dirty() -> bool | None:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _nvml_system() -> dict:
    """Driver version and the CUDA version the driver supports, through NVML (null without it)."""
    fields = {"env_driver": None, "env_cuda_driver": None}
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no NVML library, no driver, no GPU: the fields stay null
        return fields
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        fields["env_driver"] = driver.decode() if isinstance(driver, bytes) else driver
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()  # e.g. 12040 for 12.4
        fields["env_cuda_driver"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
    except Exception:
        pass
    finally:
        pynvml.nvmlShutdown()
    return fields
