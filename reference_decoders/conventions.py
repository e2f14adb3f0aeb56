"""The vendor's forward-counting conventions, reproduced from our hook counts.

Reported *beside* our own counts, never instead of them (reference_decoders/README.md): each vendor
function counts differently, and comparing their ``nfe`` across modes compares different things.

quadratic_spec needs one fact besides the counts. Each step of the vendor's ``self_spec_generate``
makes final only the drafts it accepts, d_0 .. d_{a-1}; the AR token that follows them becomes
d_0 of the *next* step and is final only once that step's quadratic forward has run. Our decoder
treats that token as final as soon as it is computed (it is: d_0 is always accepted). The vendor
stops after the step whose accepted drafts reach EOS or ``max_new_tokens``; so when our output ends
on the AR token of our last forward, the vendor runs one more quadratic forward to emit it, and
when our output ends inside the accepted drafts (the last run was cut), both stop at the same
forward. First token EOS (or ``max_new_tokens`` 1): ours is the prefill alone (1), the vendor's
is 2.
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
    "quadratic_spec": (
        "self_spec_generate (internal): 1 for the joint prefill + draft pass, 1 per quadratic step, plus the one "
        "more quadratic step the vendor needs to emit the last AR token when the output ends on it "
        "(first token EOS: 2)"
    ),
}


def vendor_tokens(mode: str, untrimmed: int, max_new_tokens: int) -> int:
    """Tokens the vendor's function for `mode` returns, from what our decoder emitted up to its
    first EOS (`TokenStream.tokens_untrimmed`): every vendor function truncates at the first EOS;
    ``linear_spec_generate`` returns its last accepted run whole, and so do ``generate``'s whole
    blocks, but ``self_spec_generate`` returns at most max_new_tokens."""
    return min(untrimmed, max_new_tokens) if mode == "quadratic_spec" else untrimmed


def vendor_nfe(mode: str, forwards: dict[str, int], new_tokens: int, final_emit_cut: bool) -> int | None:
    """The vendor's nfe for a decode of `mode`.

    forwards: our hook counts by kind; new_tokens: the trimmed output length; final_emit_cut: the
    decoder's last emission lost tokens to the EOS or max_new_tokens cut (`TokenStream.final_emit_cut`),
    i.e. the output does not end on the last token a forward produced.
    """
    if mode == "ar":
        return new_tokens
    if mode == "diffusion":
        return forwards["denoise"] + forwards["commit"] + 1
    if mode == "linear_spec":
        return forwards["prefill"] + forwards["draft"] + forwards["verify"]
    if mode == "quadratic_spec":
        return forwards["prefill"] + forwards["quadratic"] + (0 if final_emit_cut else 1)
    raise ValueError(f"unknown mode {mode!r}")
