"""Runners: the reference decoders here, the served engines (vLLM, SGLang) beside them."""

from __future__ import annotations

from runners.base import CellInfo, Runner, SampleResult, SkipCell
from runners.reference import ReferenceRunner
from runners.sglang import SglangRunner
from runners.timing import TimingRunner
from runners.vendor import VendorRunner
from runners.vllm import VllmRunner

RUNNERS: dict[str, type[Runner]] = {
    "reference": ReferenceRunner,
    "vendor": VendorRunner,
    "timing": TimingRunner,
    "vllm": VllmRunner,
    "sglang": SglangRunner,
}

__all__ = ["RUNNERS", "CellInfo", "Runner", "SampleResult", "SkipCell", "get_runner"]


def get_runner(name: str) -> Runner:
    if name not in RUNNERS:
        raise KeyError(f"unknown runner {name!r}; valid: {', '.join(RUNNERS)}")
    return RUNNERS[name]()
