"""Engine runners without an engine: stream parsing, counters, launch commands, failure, cross-check.

SGLang cannot run on CPU machines, so its /generate parsing is checked on events written from its
documented format and its launch commands in a dry run (no process started). The real vLLM
server is exercised in test_engines_vllm.py.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from harness.cli import CONFIG_DIR
from harness.config import ConfigError, register_configs, to_bench_config
from harness.crosscheck import TOLERANCE, crosscheck_table
from harness.engine_metrics import accept_length_per_verify, itl_per_chunk, itl_split_per_token
from harness.records import to_table
from runners.engines.client import (
    OpenAICompletionsStream,
    RequestSpec,
    SGLangGenerateStream,
    StreamResult,
    parse_sse_line,
)
from runners.engines.prometheus import Snapshot, counter_delta, parse_metrics, per_label_delta
from runners.engines.runner import ModelFacts
from runners.engines.server import EngineServer, EngineServerError
from runners.sglang import SglangRunner
from runners.vllm import VllmRunner
from tests.conftest import run_cli

register_configs()
SPEC = RequestSpec("s0", 0, [5, 6, 7], max_new_tokens=4)


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return to_bench_config(compose(config_name="config", overrides=list(overrides)))


def feed(decoder, events: list[dict]) -> StreamResult:
    result = StreamResult(SPEC)
    for t, event in enumerate(events, start=1):
        decoder.feed(event, t * 0.1, result)
    return result


# --- vLLM / OpenAI stream --------------------------------------------------------------------

def openai_chunk(text, ids, cumulative, finish=None):
    return {"choices": [{"index": 0, "text": text, "token_ids": ids, "finish_reason": finish}],
            "usage": {"prompt_tokens": 3, "completion_tokens": cumulative, "total_tokens": 3 + cumulative}}


def test_openai_stream_counts_tokens_per_chunk_and_one_gap_per_chunk():
    events = [
        openai_chunk("a", [10], 1),
        openai_chunk("bc", [11, 12], 3),  # a speculative chunk: two tokens, one gap
        openai_chunk("d", [13], 4, finish="length"),
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
         "metrics": {"speculative_decoding": {"num_spec_steps": 2, "mean_acceptance_length": 1.5,
                                              "num_accepted_draft_tokens": 1, "per_step_accepted": [1, 0]}}},
    ]
    result = feed(OpenAICompletionsStream(), events)
    assert result.chunk_tokens == [1, 2, 1]
    assert result.chunk_times_s == pytest.approx([0.1, 0.2, 0.3])
    assert itl_per_chunk(result.chunk_times_s) == pytest.approx([0.1, 0.1])  # the usage-only chunk is not output
    assert result.ttft_s == pytest.approx(0.1) and result.e2e_s == pytest.approx(0.3)
    assert result.output_token_ids == [10, 11, 12, 13] and result.text == "abcd"
    assert result.completion_tokens == 4 and result.prompt_tokens == 3
    assert result.finish_reason == "length"
    columns = VllmRunner().request_columns(result, result.completion_tokens)
    assert columns == {"engine_spec_verify_ct": 2, "engine_spec_accepted_drafts": 1, "engine_accept_length": 1.5,
                       "engine_accept_length_reported": 1.5, "accept_lengths": [2, 1]}


def test_the_two_itl_definitions():
    times, tokens = [0.1, 0.4, 0.5, 1.1], [1, 3, 1, 2]
    assert itl_per_chunk(times) == pytest.approx([0.3, 0.1, 0.6])  # vLLM: one gap per chunk
    # SGLang bench_serving: a chunk of n tokens gives n values of gap / n; the first chunk gives none
    assert itl_split_per_token(times, tokens) == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.3, 0.3])
    assert sum(itl_split_per_token(times, tokens)) == pytest.approx(sum(itl_per_chunk(times)))


def test_acceptance_length_leaves_the_first_token_out_on_both_engines():
    # 9 tokens = the prefill's first token + 4 verify steps emitting 2 each (1 accepted draft + bonus)
    assert accept_length_per_verify(4, 4, 9) == pytest.approx(2.0)
    assert accept_length_per_verify(4, None, 9) == pytest.approx(2.0)  # from the token count
    assert accept_length_per_verify(0, 0, 1) is None and accept_length_per_verify(None, None, 9) is None


def test_openai_stream_error_event_fails_the_request():
    with pytest.raises(RuntimeError, match="out of memory"):
        feed(OpenAICompletionsStream(), [{"error": {"message": "out of memory", "code": 500}}])


def test_sse_lines():
    assert parse_sse_line("data: [DONE]\n") == "[DONE]"
    assert parse_sse_line(": ping") is None and parse_sse_line("") is None
    assert parse_sse_line('data: {"a": 1}') == {"a": 1}


# --- SGLang /generate stream (events written from SGLang's documented format) -----------------

def sglang_event(text, ids, completion_tokens, finish=None, **spec):
    meta = {"id": "r1", "prompt_tokens": 3, "completion_tokens": completion_tokens, "cached_tokens": 0,
            "finish_reason": finish, **spec}
    return {"text": text, "output_ids": ids, "meta_info": meta}


def test_sglang_generate_cumulative_stream_with_speculative_meta_info():
    events = [
        sglang_event("a", [10], 1),
        sglang_event("a", [10], 1),  # no new token: not an output chunk
        sglang_event("abcd", [10, 11, 12, 13], 4),
        sglang_event("abcde", [10, 11, 12, 13, 14], 5, finish={"type": "length", "length": 5},
                     spec_verify_ct=2, spec_accept_length=2.5),
    ]
    result = feed(SGLangGenerateStream(), events)
    assert result.chunk_tokens == [1, 3, 1]
    assert result.chunk_times_s == pytest.approx([0.1, 0.3, 0.4])
    assert result.output_token_ids == [10, 11, 12, 13, 14] and result.text == "abcde"
    assert result.finish_reason == "length" and result.completion_tokens == 5
    # SGLang's 2.5 counts the prefill's first token (5 / 2); normalised as vLLM counts: (5 - 1) / 2
    assert SglangRunner().request_columns(result, 5) == {
        "engine_spec_verify_ct": 2, "engine_spec_accepted_drafts": None, "engine_accept_length": 2.0,
        "engine_accept_length_reported": 2.5}
    correct = feed(SGLangGenerateStream(), [sglang_event("ab", [10, 11], 5, spec_verify_ct=2, spec_accept_length=2.5,
                                                          spec_num_correct_drafts=1)])
    assert SglangRunner().request_columns(correct, 5)["engine_accept_length"] == pytest.approx(1.5)


def test_sglang_generate_incremental_stream():
    # --incremental-streaming-output: each event carries only its new text and ids
    events = [sglang_event("a", [10], 1), sglang_event("bc", [11, 12], 3),
              sglang_event("", [1], 4, finish={"type": "stop", "matched": 1})]
    result = feed(SGLangGenerateStream(incremental=True), events)
    assert result.output_token_ids == [10, 11, 12, 1] and result.text == "abc"
    assert result.chunk_tokens == [1, 2, 1] and result.finish_reason == "eos"
    assert SglangRunner().request_columns(result, 4) == {}
    # a first event of two tokens: the incremental parser appends, it does not mistake it for the whole output
    two = feed(SGLangGenerateStream(incremental=True), [sglang_event("ab", [10, 11], 2), sglang_event("c", [12], 3)])
    assert two.output_token_ids == [10, 11, 12] and two.text == "abc"


# --- Prometheus counters ------------------------------------------------------------------------

METRICS_BEFORE = """
# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 10.0
vllm:spec_decode_num_drafts_total{engine="1",model_name="m"} 5.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="0"} 7.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="1"} 3.0
vllm:generation_tokens_total{engine="0",model_name="a \\"quoted\\" name"} 100.0
"""
METRICS_AFTER = METRICS_BEFORE.replace("} 10.0", "} 16.0").replace('position="1"} 3.0', 'position="1"} 5.0') \
    .replace("} 100.0", "} 140.0")


def test_counters_are_summed_over_engines_and_differenced():
    before, after = Snapshot(parse_metrics(METRICS_BEFORE)), Snapshot(parse_metrics(METRICS_AFTER))
    assert before.total("vllm:spec_decode_num_drafts_total") == 15.0
    assert counter_delta(before, after, "vllm:spec_decode_num_drafts_total") == 6
    assert counter_delta(before, after, "vllm:generation_tokens_total") == 40
    assert counter_delta(before, after, "vllm:diffusion_num_denoising_steps_total") is None
    assert per_label_delta(before, after, "vllm:spec_decode_num_accepted_tokens_per_pos_total", "position") == [0, 2]
    with pytest.raises(ValueError, match="went down"):
        counter_delta(after, before, "vllm:generation_tokens_total")


def test_vllm_counter_families_the_engine_did_not_register_are_null(caplog):
    before, after = Snapshot(parse_metrics(METRICS_BEFORE)), Snapshot(parse_metrics(METRICS_AFTER))
    columns = VllmRunner().counter_columns(composed("runner=vllm-cpu-ngram"), before, after)
    assert columns["engine_spec_num_drafts"] == 6 and columns["engine_generation_tokens"] == 40
    assert columns["engine_diffusion_denoising_steps"] is None  # not registered: not measured, not 0
    assert "engine_steps" not in columns  # vLLM's iteration histogram counts output batches, not steps
    assert not caplog.records  # speculation configured and its counters present: nothing to warn about
    diffusion = composed("model=nemotron-labs-diffusion-8b", "mode=diffusion", "runner=vllm-nemotron")
    columns = VllmRunner().counter_columns(diffusion, before, after)
    assert columns["engine_diffusion_committed_tokens"] is None
    assert "registered no diffusion counters although the cell configures it" in caplog.text


# --- launch commands (dry run: nothing is started) ---------------------------------------------

def nemotron(*overrides):
    return composed("model=nemotron-labs-diffusion-8b", *overrides)


def test_vllm_nemotron_diffusion_and_ar_commands():
    facts = ModelFacts("nvidia/Nemotron-Labs-Diffusion-8B", "nemotron_labs_diffusion", 32)
    bench = nemotron("mode=diffusion", "runner=vllm-nemotron", "mode.block_length=32")
    launch = VllmRunner().launch(bench, facts, "/opt/vllm/bin/python")
    command = launch.command
    # `vllm serve`, not the deprecated api_server module
    assert command[:5] == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.cli.main", "serve", facts.source]
    assert command[command.index("--host") + 1] == "127.0.0.1" and "--port" not in command
    config = json.loads(command[command.index("--diffusion-config") + 1])
    assert config == {"canvas_length": 32, "selection_policy": "confidence_threshold", "confidence_threshold": 0.9}
    assert launch.algorithm_config == command[command.index("--diffusion-config") + 1]
    assert launch.probe == {"entrypoint": "serve", "diffusion_config": config}  # what the probe must confirm
    assert command[command.index("--max-num-seqs") + 1] == "256"  # runner.max_running_requests
    assert command[-2:] == ["--max-model-len", "32768"]

    ar = VllmRunner().launch(nemotron("mode=ar", "runner=vllm-nemotron"), ModelFacts(facts.source, facts.family, None), "python")
    override = json.loads(ar.command[ar.command.index("--hf-overrides") + 1])
    assert override == {"ar_mode": True} and ar.probe == {"entrypoint": "serve", "hf_overrides": {"ar_mode": True}}
    cpu = VllmRunner().launch(composed("runner=vllm-cpu"), ModelFacts("/m", "qwen3", None), "python").command
    assert cpu[:4] == ["python", "-m", "vllm.entrypoints.openai.api_server", "--model"]  # runner.entrypoint=api_server
    assert "--diffusion-config" not in ar.command  # vLLM refuses a diffusion config in AR mode


def test_vllm_eagle3_command_and_its_mode_rule():
    facts = ModelFacts("Qwen/Qwen3-8B", "qwen3", None)
    launch = VllmRunner().launch(composed("model=qwen3-8b", "runner=vllm-eagle3"), facts, "python")
    spec = json.loads(launch.command[launch.command.index("--speculative-config") + 1])
    assert spec["method"] == "eagle3" and spec["num_speculative_tokens"] == 3
    assert "--per-request-spec-decode-metrics" in launch.command and "--hf-overrides" not in launch.command
    with pytest.raises(ConfigError, match="runner.speculative_config: engine speculation is an ar baseline"):
        VllmRunner().launch(nemotron("mode=diffusion", "runner=vllm-eagle3"), ModelFacts("x", "nemotron_labs_diffusion", 32), "python")


def test_sglang_linear_spec_and_fastdiffuser_commands(tmp_path):
    lora = tmp_path / "linear_spec_lora"
    lora.mkdir()
    (lora / "adapter_config.json").write_text("{}")
    facts = ModelFacts(str(tmp_path), "nemotron_labs_diffusion", 32)
    bench = nemotron("mode=linear_spec_lora", "runner=sglang-nemotron", f"model.source={tmp_path}")
    launch = SglangRunner().launch(bench, facts, "/opt/sglang/bin/python")
    command = launch.command
    assert command[:3] == ["/opt/sglang/bin/python", "-m", "sglang.launch_server"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--dllm-algorithm") + 1] == "LinearSpec"
    yaml_path = Path(command[command.index("--dllm-algorithm-config") + 1])
    yaml_text = yaml_path.read_text()
    yaml_path.unlink()  # the launch writes the engine's YAML; nothing is started here
    assert yaml_text == f'block_size: 32\ncausal_context: true\nlora_path: "{lora}"\nlora_mode: "draft_only"\n'
    assert launch.algorithm_config.endswith(yaml_text)
    assert command[command.index("--max-running-requests") + 1] == "256" and "--incremental-streaming-output" in command
    assert command[-3:] == ["--trust-remote-code", "--context-length", "32768"]
    assert launch.probe == {"dllm_algorithm": "LinearSpec", "flags": ["--dllm-algorithm-config", "--incremental-streaming-output"],
                            "dllm_config": {"block_size": 32, "causal_context": True, "lora_path": str(lora),
                                            "lora_mode": "draft_only"}}

    diffusion = SglangRunner().launch(nemotron("mode=diffusion", "runner=sglang-nemotron", "mode.block_length=16"),
                                      ModelFacts("x", "nemotron_labs_diffusion", 16), "python").command
    assert diffusion[diffusion.index("--dllm-algorithm") + 1] == "FastDiffuser"
    yaml_path = Path(diffusion[diffusion.index("--dllm-algorithm-config") + 1])
    text = yaml_path.read_text()
    yaml_path.unlink()
    assert text == "block_size: 16\ncausal_context: true\nthreshold: 0.9\nmax_steps: 16\ntemperature: 0.0\n"


def test_sglang_eagle3_and_missing_lora_are_explained():
    launch = SglangRunner().launch(composed("model=qwen3-8b", "runner=sglang-eagle3"), ModelFacts("Qwen/Qwen3-8B", "qwen3", None), "python")
    command = launch.command
    assert command[command.index("--speculative-algorithm") + 1] == "EAGLE3"
    assert command[command.index("--speculative-draft-model-path") + 1] == "Tengyunw/qwen3_8b_eagle3"
    assert command[command.index("--speculative-num-draft-tokens") + 1] == "4"
    with pytest.raises(ConfigError, match="runner.dllm_algorithm_config.lora_path"):
        SglangRunner().launch(nemotron("mode=linear_spec_lora", "runner=sglang-nemotron"),
                              ModelFacts("nvidia/Nemotron-Labs-Diffusion-8B", "nemotron_labs_diffusion", 32), "python")


@pytest.mark.parametrize("overrides,message", [
    (["runner.concurrency=0"], "runner.concurrency: must be >= 1"),
    (["runner.protocol=grpc"], "runner.protocol: 'grpc' is not valid; choose one of: openai"),
    (["runner.base_url=localhost:8000"], "runner.base_url: 'localhost:8000' must look like http://host:port"),
    (["runner.concurrency=512"], "runner.max_running_requests: 256 is below runner.concurrency=512"),
    (["runner.server_args=[--max-num-seqs,8]"], "runner.server_args: --max-num-seqs is set by runner.max_running_requests"),
    (["runner.venv=../elsewhere"], "runner.venv: '../elsewhere' must be a folder name under the repository"),
    (["model=nemotron-labs-diffusion-8b", "mode=diffusion", "mode.threshold=1.0"],
     "mode.threshold: vLLM's diffusion takes a confidence threshold strictly inside (0, 1), got 1.0"),
    (["model=nemotron-labs-diffusion-8b", "mode=diffusion", "mode.threshold=0"], "strictly inside (0, 1), got 0.0"),
])
def test_engine_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        composed("runner=vllm", *overrides)
    composed("runner=reference", *[o for o in overrides if not o.startswith("runner.")])  # engine rules only


# --- a server that fails ------------------------------------------------------------------------

def test_a_server_that_exits_is_reported_with_its_log_tail():
    server = EngineServer([sys.executable, "-c", "import sys; print('engine says: no GPU found'); sys.exit(3)"])
    server.start()
    with pytest.raises(EngineServerError) as info:
        server.wait_ready(timeout_s=60)
    assert "exited with code 3" in str(info.value) and "engine says: no GPU found" in str(info.value)
    server.stop()
    assert server.log_path.exists()  # a failed server's log is kept: its path is in the error
    server.log_path.unlink()


def test_a_failing_engine_is_a_failed_cell_and_the_sweep_goes_on(tmp_path, random_checkpoint):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho \"fake engine: CUDA driver not found ($*)\" >&2\nexit 1\n")
    fake.chmod(0o755)
    # With the probe, the broken interpreter fails it; without, the server start fails.
    result = run_cli("-m", "runner=vllm", f"runner.python={fake}", f"model.source={random_checkpoint}", "task=copy",
                     "task.num_samples=1", "runner.probe=true,false", "sweep=single", "sweep.name=dead",
                     f"results_dir={tmp_path}", timeout=300)
    assert result.returncode == 1, result.stderr  # failed cells are data, and the exit status says so
    assert "2 cell(s) failed in this run" in result.stderr
    records = pd.read_parquet(tmp_path / "dead")
    assert len(records) == 2 and (records["status"] == "failed").all()  # both cells recorded
    probed, launched = sorted(records["error"], key=lambda e: "capability probe" not in e)
    assert "the capability probe failed" in probed and "fake engine: CUDA driver not found" in probed
    assert "exited with code 1" in launched and "fake engine: CUDA driver not found" in launched
    assert "--host 127.0.0.1" in launched
    for log in re.findall(r"server log \((\S+)\)", launched):
        Path(log).unlink()


# --- cross-runner consistency ---------------------------------------------------------------------

def rows(runner, mode, sample_ids, **columns):
    base = {"status": "ok", "sweep": "s", "model": "m", "mode": mode, "block_length": 4, "threshold": 0.9,
            "temperature": 0.0, "task": "copy", "context": "natural", "max_new_tokens": 8, "runner": runner,
            "cell_key": f"{runner}-{mode}"}
    return [{**base, "sample_id": sid, **columns} for sid in sample_ids]


def reference_rows(mode, **columns):
    # 8 tokens per sample over 1 prefill + 4 other forwards: TPF excluding prefill = 2
    return rows("reference", mode, ["a", "b"], new_tokens=8, forwards_prefill=1, forwards_denoise=3, forwards_commit=1,
                **columns)


def test_crosscheck_flags_a_difference_beyond_the_tolerance():
    engine = rows("vllm", "diffusion", ["a", "b"], new_tokens=8, concurrency=1,
                  engine_diffusion_denoising_steps=8, engine_diffusion_committed_tokens=16)  # TPF 2.0
    slow = rows("sglang", "diffusion", ["a", "b"], new_tokens=8, concurrency=1,
                engine_diffusion_denoising_steps=16, engine_diffusion_committed_tokens=16)  # TPF 1.0
    slow = [{**r, "cell_key": "sglang-slow"} for r in slow]
    records = to_table(reference_rows("diffusion") + engine + slow).to_pandas()
    table = crosscheck_table(records).set_index("cell_key")
    assert table.loc["vllm-diffusion", "flag"] == "ok"
    assert table.loc["vllm-diffusion", "engine_tpf"] == pytest.approx(2.0)
    assert table.loc["vllm-diffusion", "reference_tpf"] == pytest.approx(2.0)
    flag = table.loc["sglang-slow", "flag"]
    assert flag.startswith("mismatch: TPF engine 1.000 vs reference 2.000 (-50%") and f"{TOLERANCE:.0%}" in flag


def test_crosscheck_linear_spec_acceptance_and_the_cases_it_cannot_judge():
    # 8 tokens = the prefill's first + 7 from two verify steps (4 and 3): acceptance 3.5 in both
    # runners' counting; SGLang's own completion_tokens / verify_ct would say 4.0
    ref = reference_rows("linear_spec", accept_lengths=[4, 3])
    engine = rows("sglang", "linear_spec", ["a", "b"], new_tokens=8, engine_spec_verify_ct=2)
    other_samples = [{**r, "cell_key": "other"} for r in rows("vllm", "linear_spec", ["a", "z"], new_tokens=8,
                                                              engine_spec_verify_ct=2)]
    ar_eagle = rows("vllm", "ar", ["a"], new_tokens=8, engine_spec_num_drafts=3, block_length=None, threshold=None)
    records = to_table(ref + engine + other_samples + ar_eagle).to_pandas()
    table = crosscheck_table(records).set_index("cell_key")
    assert table.loc["sglang-linear_spec", "flag"] == "ok"
    assert table.loc["sglang-linear_spec", "engine_accept_length"] == pytest.approx(3.5)
    assert table.loc["other", "flag"] == "not_comparable: the reference cell decoded other samples"
    assert table.loc["vllm-ar", "flag"] == "no_reference"


def test_the_flag_is_computed_when_the_report_reads_the_records_not_stored():
    # Before: the flag was written into the engine cell's rows at run time, so it depended on
    # whether the reference cell happened to run first. Now it is not a record column at all.
    from harness.records import COLUMN_NAMES
    from harness.report.aggregate import aggregate

    assert "crosscheck_flag" not in COLUMN_NAMES
    engine = rows("vllm", "diffusion", ["a", "b"], new_tokens=8, engine_diffusion_denoising_steps=4,
                  engine_diffusion_committed_tokens=16)
    for order in (engine + reference_rows("diffusion"), reference_rows("diffusion") + engine):
        cells = aggregate(to_table(order).to_pandas(), boot=None).cells.set_index("cell_key")
        assert cells.loc["vllm-diffusion", "crosscheck_flag"] == "mismatch: TPF engine 4.000 vs reference 2.000 (+100%, tolerance 10%)"
        assert cells.loc["reference-diffusion", "crosscheck_flag"] == ""


def test_a_server_that_dies_during_the_cell_is_a_failed_cell_with_its_log_tail(tmp_path, random_checkpoint):
    # A real engine cannot be made to crash on demand mid-cell; tests/fake_engine.py answers the
    # warm-up, then crashes on the first request of the cell.
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).parent / "fake_engine.py"} "$@"\n')
    wrapper.chmod(0o755)
    result = run_cli("runner=vllm", f"runner.python={wrapper}", "runner.server_args=[--die-at,2]", "runner.probe=false",
                     f"model.source={random_checkpoint}", "task.num_samples=2", "sweep=single", "sweep.name=crash",
                     f"results_dir={tmp_path}", timeout=300)
    assert result.returncode == 1, result.stderr  # the failed cell is recorded, and the exit status says so
    records = pd.read_parquet(tmp_path / "crash")
    assert len(records) == 1 and records["status"].iloc[0] == "failed"
    error = records["error"].iloc[0]
    assert "engine server died during the cell (exit code 1)" in error
    assert "fake engine: fatal error in the decode kernel at request 2" in error
    for log in re.findall(r"server log \((\S+)\)", error):
        Path(log).unlink()
