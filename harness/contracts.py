"""The names every part of the harness shares: decoding modes, forward kinds, record statuses, runners.

Plain constants and nothing else, so that the schema, the store, validate and the report can read
them without importing torch or transformers (`reference_decoders` and `runners` import them from
here; this module imports nothing). Changing a name here changes what records mean: the schema
(`harness.records`) builds its forward columns from `FORWARD_KINDS`.
"""

from __future__ import annotations

# Decoding modes (reference_decoders/<mode>.py); one set of weights runs all but ar's baseline.
MODES = ("ar", "diffusion", "linear_spec", "quadratic_spec")
# Modes that decode several prompts in one forward (mode.batch_size > 1): all of them; the
# speculative modes accept a different number of drafts per row (reference_decoders/README.md).
BATCHED_MODES = MODES
# Modes that draft and verify; their drafts are accepted by one of `ACCEPTANCE_RULES` at T > 0
# (reference_decoders/sampling.py): speculative sampling, or the vendor's sample-match rule.
SPECULATIVE_MODES = ("linear_spec", "quadratic_spec")
ACCEPTANCE_RULES = ("speculative", "sample_match")
# How the reference decoders run the model (`runner.backend`, the `backend` column): eager =
# transformers with a DynamicCache, the reference; compiled = a static KV cache and forwards
# compiled per query shape (reference_decoders/adapter.py, "Fast path" in reference_decoders/README.md).
BACKENDS = ("eager", "compiled")
# Modes the compiled backend decodes at batch > 1. The speculative modes' ragged rows hide
# rejected drafts in cache slots, which a static cache of fixed size cannot bound; batch 1 runs
# every mode compiled.
COMPILED_BATCHED_MODES = ("ar", "diffusion")

# Kinds of model forward, as the counting hook labels them (reference_decoders/counting.py);
# `unlabelled` is a forward made outside any declared phase, counted rather than lost.
FORWARD_KINDS = ("prefill", "decode", "denoise", "commit", "draft", "verify", "quadratic", "unlabelled")
# How a forward's duration was taken (the `forward_timing_method` column).
FORWARD_TIMING_METHODS = ("cuda_event", "perf_counter")

# Record statuses (the `status` column): a scored sample, a sample that failed, a combination that
# cannot run, a cell that failed as a whole.
STATUSES = ("ok", "error", "skipped", "failed")

# Runners (the `runner` column); served engines report their own counters instead of forward counts.
RUNNERS = ("reference", "timing", "vendor", "vllm", "sglang")
ENGINE_RUNNERS = ("vllm", "sglang")
# Runners whose samples are forward shapes measured at several batch sizes in one cell
# (runner.batch_sizes): each batch size is a load level of its own in the report.
LOAD_PER_SAMPLE_RUNNERS = ("timing",)
