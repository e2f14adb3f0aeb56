"""Every shipped config composes and validates; bad input fails before any model loads."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from harness.cli import CONFIG_DIR, GROUP_SCHEMAS, check_overrides, group_options
from harness.config import BenchConfig, ConfigError, register_configs, to_bench_config
from tests.conftest import run_cli

register_configs()
SHIPPED = [(group, option) for group in GROUP_SCHEMAS for option in group_options(group)]


def composed(*overrides: str) -> BenchConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return to_bench_config(compose(config_name="config", overrides=list(overrides)))


# Options that only make sense with another component's opt-in.
NEEDS = {("runner", "vendor"): ["model.trust_remote_code=true"]}


@pytest.mark.parametrize("group,option", SHIPPED, ids=[f"{g}={o}" for g, o in SHIPPED])
def test_every_shipped_config_composes_and_validates(group, option):
    bench = composed(f"{group}={option}", *NEEDS.get((group, option), []))
    assert isinstance(bench, BenchConfig)
    assert getattr(bench, group) is not None


def test_default_config_is_the_embedded_tiny_sweep():
    bench = composed()
    assert bench.model.source == "builtin:tiny-dlm"
    assert bench.hardware.device_type == "cpu"
    assert bench.sweep.name == "embedded"


@pytest.mark.parametrize(
    "override,message",
    [
        ("mode=diffusion mode.threshold=1.5", "mode.threshold: must be in [0, 1]"),
        ("context.input_tokens=-5", "context.input_tokens: must be >= 0"),
        ("model.dtype=float8", "model.dtype: 'float8' is not valid; choose one of: float32, bfloat16"),
        ("task.name=gsm9k", "task.name: 'gsm9k' is not valid; choose one of:"),
        ("mode=diffusion mode.steps=4", "mode.steps: only diffusion without a threshold"),
        ("mode.block_length=8", "mode.block_length: mode ar takes no block parameters"),
        ("mode.batch_size=4", None),
        ("hardware.device_pattern='*H100'", "hardware.device_pattern: not a valid regular expression"),
        ("sweep.name=a/b", "sweep.name: 'a/b' must be letters"),
        ("mode=linear_spec mode.acceptance=vendor", "mode.acceptance: 'vendor' is not valid; choose one of: speculative, sample_match"),
        ("mode=diffusion mode.acceptance=sample_match", "mode.acceptance: mode diffusion verifies no drafts"),
        ("mode=quadratic_spec mode.acceptance=sample_match mode.temperature=1.0", None),
    ],
)
def test_invalid_values_are_named_with_valid_choices(override, message):
    overrides = override.split()
    if message is None:  # valid: batching ar, the vendor's acceptance rule for a speculative mode
        composed(*overrides)
        return
    with pytest.raises(ConfigError) as info:
        composed(*overrides)
    assert message in str(info.value)


def test_command_line_checks_name_the_key_and_the_choices():
    problems = check_overrides(["mode=difusion", "context=-5", "mode.treshold=0.9", "runner.devce=cpu", "mode=ar,diffusion"])
    assert problems[0].startswith("mode=difusion: no such mode option; choose one of: ar, diffusion, linear_spec")
    assert problems[1].startswith("context=-5: no such context option; choose one of:") and "context.input_tokens=N" in problems[1]
    assert problems[2].startswith("mode.treshold: unknown key; valid keys of mode:") and "threshold" in problems[2]
    assert problems[3].startswith("runner.devce: unknown key")
    assert len(problems) == 4


@pytest.mark.parametrize("override", ["mode=difusion", "context=-5", "mode.threshold=2"])
def test_cli_rejects_bad_overrides_before_any_model_loads(tmp_path, override):
    result = run_cli(f"results_dir={tmp_path}", override)
    assert result.returncode == 2, result.stderr
    assert "nothing was run" in result.stderr
    assert "valid" in result.stderr or "must be" in result.stderr
    assert not list(tmp_path.rglob("*.parquet"))
