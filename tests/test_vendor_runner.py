"""The vendor cross-check runner, on a stand-in remote-code checkpoint written by the test.

The real vendor code cannot be downloaded here: tests/fixtures/vendor_standin is an independent
implementation with the vendor's module layout, method names, return values and nfe rules. What is
tested is the runner (remote code behind an explicit opt-in, forward counting on the vendor's
encoder, the vendor's own nfe recorded) and the cross-check it exists for: our decoders and the
vendor-style code agree on tokens, and our reproduction of the vendor's nfe rule matches theirs.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import REPO, run_cli


@pytest.fixture(scope="module")
def standin_checkpoint(tmp_path_factory):
    from harness.tinymodel.tokenizer import build_tokenizer
    from reference_decoders.tiny import tiny_model

    path = tmp_path_factory.mktemp("standin")
    tokenizer = build_tokenizer()
    model = tiny_model("ministral3", vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
                       eos_token_id=tokenizer.eos_token_id, max_positions=512, peakiness=20.0, seed=4)
    weights = {("encoder." + k[len("model."):] if k.startswith("model.") else k.replace("lm_head.", "diffusion_head.")): v.contiguous()
               for k, v in model.state_dict().items()}
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    config = model.config.to_dict()
    config.update(model_type="nemotron_labs_diffusion", architectures=["StandinModel"], block_size=4,
                  auto_map={"AutoConfig": "modeling_standin.StandinConfig", "AutoModel": "modeling_standin.StandinModel"})
    (path / "config.json").write_text(json.dumps(config))
    shutil.copy(REPO / "tests" / "fixtures" / "vendor_standin" / "modeling_standin.py", path)
    tokenizer.save_pretrained(path)
    return path


def test_vendor_runner_needs_the_explicit_opt_in(tmp_path, standin_checkpoint):
    result = run_cli("sweep=single", "runner=vendor", f"model.source={standin_checkpoint}", "model.family=nemotron_labs_diffusion",
                     f"results_dir={tmp_path}")
    assert result.returncode != 0
    assert "model.trust_remote_code" in result.stdout + result.stderr
    assert not list(tmp_path.rglob("*.parquet"))


@pytest.mark.parametrize("mode", ["ar", "linear_spec"])
def test_vendor_code_and_our_decoders_agree(tmp_path, standin_checkpoint, mode):
    common = ["-m", f"mode={mode}", "runner=reference,vendor", "task=copy", "context=natural", "task.num_samples=3", "sweep.name=x",
              "task.max_new_tokens=10", f"model.source={standin_checkpoint}", "model.trust_remote_code=true",
              f"results_dir={tmp_path}"]
    result = run_cli(*common)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    df = pd.read_parquet(tmp_path / "x")
    assert (df["status"] == "ok").all()
    ours = df[df["runner"] == "reference"].set_index("sample_id")
    vendor = df[df["runner"] == "vendor"].set_index("sample_id")
    for sample in ours.index:
        assert list(vendor.loc[sample, "output_token_ids"]) == list(ours.loc[sample, "output_token_ids"])
        # Our reproduction of the vendor's nfe rule, from our hook counts, equals the nfe the vendor returns.
        assert vendor.loc[sample, "vendor_nfe"] == ours.loc[sample, "vendor_nfe"]
        # The hook on the vendor's encoder counts the forwards it really ran.
        assert vendor.loc[sample, "forwards_unlabelled"] == ours.loc[sample, ["forwards_prefill", "forwards_decode",
                                                                            "forwards_draft", "forwards_verify"]].sum()
    if mode == "linear_spec":
        assert (vendor["tokens_untrimmed"] >= vendor["new_tokens"]).all()
