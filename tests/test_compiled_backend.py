"""The compiled backend (static KV cache, forwards compiled per query shape) against eager, the reference.

Greedy, float32 on the CPU: the same tokens and the same forward counts in every mode, on tiny
real transformers models. Compiling costs tens of seconds per graph on two cores, so the tests
share one model and one set of shapes (prompt bucket 16, block length 4, 12 new tokens, one cache
size): each graph is compiled once for the whole file. Speed is measured by
`python -m reference_decoders.benchmark`, never here.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from harness.cli import CONFIG_DIR
from harness.config import ConfigError, register_configs, to_bench_config
from reference_decoders import generate, generate_batch
from reference_decoders import adapter as adapters
from reference_decoders.static_cache import StaticKVCache
from reference_decoders.tiny import tiny_model

register_configs()

MODES = {
    "ar": {},
    "diffusion": {"block_length": 4, "threshold": 0.5},
    "linear_spec": {"block_length": 4},
    "quadratic_spec": {"block_length": 4},
}
COMMON = {"max_new_tokens": 12, "eos_token_ids": ()}


@pytest.fixture(scope="module")
def model():
    return tiny_model("qwen3", vocab_size=128, peakiness=20.0)


def prompt(n: int, seed: int) -> torch.Tensor:
    return torch.randint(3, 120, (1, n), generator=torch.Generator().manual_seed(seed))


def compare(eager, compiled) -> None:
    assert compiled.tokens == eager.tokens
    assert compiled.forwards == eager.forwards
    assert compiled.accept_lengths == eager.accept_lengths
    assert compiled.vendor_nfe == eager.vendor_nfe
    # Same query tokens in every pass but the prefill, which the compiled backend pads to its bucket.
    prefill = adapters.prefill_bucket(eager.query_tokens["prefill"])
    assert compiled.query_tokens == {**eager.query_tokens, "prefill": prefill}
    assert compiled.forward_log.cache_tokens == eager.forward_log.cache_tokens
    assert (eager.backend, compiled.backend) == ("eager", "compiled")


@pytest.mark.parametrize("mode", list(MODES))
def test_compiled_equals_eager_in_every_mode(model, mode):
    params = {**COMMON, **MODES[mode]}
    for seed, n in ((0, 8), (1, 11)):  # two prompt lengths of one prefill bucket: no new graph for the second
        eager = generate(model, prompt(n, seed), mode, **params)
        compiled = generate(model, prompt(n, seed), mode, backend="compiled", **params)
        compare(eager, compiled)
        assert eager.compile_seconds is None and compiled.compile_seconds >= 0
    again = generate(model, prompt(11, 1), mode, backend="compiled", **params)
    assert again.compile_seconds == 0.0  # every shape warm: nothing compiled, nothing billed
    assert again.tokens == compiled.tokens


@pytest.mark.parametrize("mode", ["ar", "quadratic_spec"])
def test_compiled_equals_eager_on_ministral3(mode):
    """The other family (YaRN rope with Llama-4 query scaling): one causal mode, one with custom masks and positions."""
    model = tiny_model("ministral3", vocab_size=128, peakiness=20.0)
    params = {**COMMON, **MODES[mode]}
    compare(generate(model, prompt(9, 4), mode, **params), generate(model, prompt(9, 4), mode, backend="compiled", **params))


def test_compiled_speculative_modes_equal_compiled_ar(model):
    """The lossless property holds on the fast path too (greedy: the speculative modes reproduce ar)."""
    ar = generate(model, prompt(8, 0), "ar", backend="compiled", **COMMON)
    for mode in ("linear_spec", "quadratic_spec"):
        assert generate(model, prompt(8, 0), mode, backend="compiled", **COMMON, **MODES[mode]).tokens == ar.tokens


def test_compiled_left_padded_batch_equals_eager(model):
    prompts = [prompt(11, 2)[0].tolist(), prompt(6, 3)[0].tolist()]
    params = {**COMMON, **MODES["diffusion"]}
    eager = generate_batch(model, prompts, "diffusion", **params)
    compiled = generate_batch(model, prompts, "diffusion", backend="compiled", **params)
    for e, c in zip(eager, compiled):
        compare(e, c)


def test_eager_is_untouched_after_a_compiled_decode(model):
    generate(model, prompt(8, 0), "ar", backend="compiled", **COMMON)
    assert "forward" not in vars(model)  # the compiled forward is installed only during a compiled decode


def test_unknown_backend_is_refused_with_the_choices(model):
    with pytest.raises(ValueError, match="unknown backend 'jit'; valid: eager, compiled"):
        generate(model, prompt(8, 0), "ar", backend="jit", **COMMON)


def test_static_cache_keeps_and_crops_by_pointer_without_reallocating(model):
    cache = StaticKVCache(model.config, batch_size=1, max_positions=32, dtype=torch.float32, device="cpu")
    storage = cache.keys.data_ptr(), cache.values.data_ptr()
    assert tuple(cache.keys.shape) == (2, 1, 2, 32, 16)  # [layers, batch, kv heads, slots, head dim]
    cache.begin_write(10)
    assert int(cache.write_start) == 0
    cache.keep(10)
    cache.begin_write(4)
    assert int(cache.write_start) == 10
    cache.keep(1)
    cache.crop(-3)
    assert cache.get_seq_length() == 8
    cache.begin_write(24)  # 8 + 24 = 32 slots: fits exactly
    with pytest.raises(ValueError, match="static cache full: 8 kept \\+ 25 new > max_positions 32"):
        cache.begin_write(25)
    assert (cache.keys.data_ptr(), cache.values.data_ptr()) == storage
    # each layer's views write into the shared storage at the pointer
    k = torch.ones(1, 2, 3, 16)
    cache.layers[1].update(k, 2 * k, 1)
    assert cache.keys[1, :, :, 8:11].eq(1).all() and cache.values[1, :, :, 8:11].eq(2).all()
    assert cache.keys[0].eq(0).all()


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return to_bench_config(compose(config_name="config", overrides=list(overrides)))


def test_backend_is_validated_with_the_choices():
    with pytest.raises(ConfigError, match="runner.backend: 'fast' is not valid; choose one of: eager, compiled"):
        composed("runner.backend=fast")
    assert composed("runner.backend=compiled").runner.backend == "compiled"
    assert composed().runner.backend == "eager"


@pytest.mark.parametrize("mode", ["linear_spec", "quadratic_spec"])
def test_compiled_speculative_modes_at_batch_above_1_are_refused_with_the_way_out(mode):
    with pytest.raises(ConfigError, match=f"runner.backend=compiled decodes {mode} at batch 1 only.*runner.backend=eager"):
        composed("runner.backend=compiled", f"mode={mode}", "mode.batch_size=4")
    assert composed("runner.backend=compiled", "mode=diffusion", "mode.batch_size=4").mode.batch_size == 4
    model = tiny_model("qwen3", seed=0)
    with pytest.raises(ValueError, match="decodes mode .* at batch 1 only"):
        generate_batch(model, [[1, 2, 3], [4, 5]], mode, max_new_tokens=4, block_length=4, backend="compiled")


def test_a_compiled_cell_records_its_backend_and_bills_no_sample_for_compiling(tmp_path, random_checkpoint):
    from harness.execute import run_cell

    rows = {}
    for backend in ("eager", "compiled"):
        bench = composed("sweep=single", f"model.source={random_checkpoint}", "mode=ar", "task=copy", "task.num_samples=2",
                         "task.max_new_tokens=6", f"runner.backend={backend}", "runner.warmup=1",
                         f"results_dir={tmp_path / backend}")
        assert run_cell(bench)["status"] == "ok"
        rows[backend] = pd.read_parquet(tmp_path / backend / "single")
    eager, compiled = rows["eager"], rows["compiled"]
    assert (eager["backend"] == "eager").all() and eager["compile_s"].isna().all()
    assert (compiled["backend"] == "compiled").all() and (compiled["status"] == "ok").all()
    # The runner's warm-up decode compiled the first sample's shapes: the first row carries that
    # time; a later sample whose prompt falls in a new prefill bucket carries its own. No row's
    # decode time contains any of it (a 6-token decode takes milliseconds, compiling seconds).
    compile_s = compiled["compile_s"]
    assert compile_s.notna().all() and (compile_s >= 0).all() and compile_s.iloc[0] > 0
    assert (compiled["e2e_s"] < compile_s[compile_s > 0].min()).all()
    assert eager["cell_key"].iloc[0] != compiled["cell_key"].iloc[0]
    pd.testing.assert_series_equal(eager["output_token_ids"].map(list), compiled["output_token_ids"].map(list))
    pd.testing.assert_series_equal(eager["forwards_decode"], compiled["forwards_decode"])
