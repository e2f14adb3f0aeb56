"""The vendor's forward-counting conventions, reproduced from our hook counts.

Reported *beside* our own counts, never instead of them (README, "What it measures"): each vendor
function counts differently, and comparing their ``nfe`` across modes compares different things.
"""

from __future__ import annotations

RULES = {
    "ar": "ar_generate: nfe = new tokens (one forward per token, prefill included)",
    "diffusion": (
        "generate: prefill not counted; every denoise pass and every commit pass counted, including "
        "the commit pass the vendor runs after the final block (its cache and seed are unused), "
        "which this harness does not run"
    ),
    "linear_spec": "linear_spec_generate: prefill counted, every draft pass and every verify pass counted (2 per block at threshold 0)",
    "quadratic_spec": "self_spec_generate (internal): 1 for the joint prefill + draft pass, 1 per quadratic step",
}


def vendor_nfe(mode: str, forwards: dict[str, int], new_tokens: int) -> int | None:
    if mode == "ar":
        return new_tokens
    if mode == "diffusion":
        return forwards["denoise"] + forwards["commit"] + 1
    if mode == "linear_spec":
        return forwards["prefill"] + forwards["draft"] + forwards["verify"]
    if mode == "quadratic_spec":
        return forwards["prefill"] + forwards["quadratic"]
    raise ValueError(f"unknown mode {mode!r}")
