"""The vendor cross-check runner: the checkpoint's own `ar_generate` / `generate` /
`linear_spec_generate` (remote code, explicit opt-in), measured into the same records.

Its purpose is to hold our reference decoders to the vendor's: the same prompts in the same
mode should give the same tokens, and the vendor's returned `nfe` is recorded in `vendor_nfe`
beside the forwards our hook counts on the vendor's model (all `unlabelled`: the vendor code does
not say which phase a forward belongs to). Outputs are trimmed by our rules (first EOS,
max_new_tokens); what the vendor returned is kept in `tokens_untrimmed`.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator

import torch

from harness.models import resolve_source
from harness.prompts import Unfittable
from reference_decoders.counting import ForwardCounter
from reference_decoders.loading import DTYPES, attach_draft_lora, load_tokenizer, read_checkpoint_config
from reference_decoders.output import TokenStream
from runners.base import CellInfo, Runner, SampleResult

log = logging.getLogger("dlm-bench")

# mode -> the vendor method, and how its nfe is defined (as the vendor code returns it)
VENDOR_FUNCTIONS = {
    "ar": ("ar_generate", "vendor ar_generate's own nfe: one per generated token"),
    "diffusion": ("generate", "vendor generate's own nfe: denoise passes + one commit pass per block, prefill not counted"),
    "linear_spec": ("linear_spec_generate", "vendor linear_spec_generate's own nfe: prefill + draft + verify passes"),
}


class VendorRunner(Runner):
    name = "vendor"
    modes = tuple(VENDOR_FUNCTIONS)

    def __init__(self):
        self.model = None
        self.tokenizer = None
        self.eos: tuple[int, ...] = ()

    def prepare(self, bench) -> CellInfo:
        from transformers import AutoModel

        source = resolve_source(bench.model.source)
        device = bench.hardware.device_type if bench.runner.device == "auto" else bench.runner.device
        model = AutoModel.from_pretrained(source, revision=bench.model.revision, trust_remote_code=True,
                                          dtype=DTYPES[bench.model.dtype]).to(device).eval()
        if bench.mode.use_draft_lora and bench.model.draft_lora:
            # As the vendor's evaluate.py does: wrap, then unwrap so that the model's own methods
            # (which switch the adapter on for draft passes) are reachable. The adapter's names are
            # the vendor model's own, so no key mapping; the load is still checked.
            model = attach_draft_lora(model, source, bench.model.draft_lora, bench.model.revision, None, device)[0].model.eval()
        self.model = model
        self.tokenizer = load_tokenizer(source, bench.model.revision)
        raw = read_checkpoint_config(source, bench.model.revision)
        eos = raw.get("eos_token_id")
        self.eos = tuple(eos) if isinstance(eos, list) else (() if eos is None else (int(eos),))
        block = None if bench.mode.name == "ar" else (bench.mode.block_length or raw.get("block_size") or 32)
        parameters = list(model.parameters())
        return CellInfo(
            model_family=raw.get("model_type"),
            model_parameters=sum(p.numel() for p in parameters),
            model_weight_bytes=sum(p.numel() * p.element_size() for p in parameters),
            block_length=block,
            max_positions=raw.get("max_position_embeddings"),
            tokenizer=self.tokenizer,
        )

    def run(self, bench, info: CellInfo, samples: list) -> Iterator[SampleResult]:
        method_name, rule = VENDOR_FUNCTIONS[bench.mode.name]
        method = getattr(self.model, method_name, None)
        for sample in samples:
            if isinstance(sample, Unfittable):
                yield SampleResult(sample_id=sample.example.id, status="error", error=sample.reason)
                continue
            if method is None:
                yield SampleResult(sample_id=sample.id, status="error",
                                   error=f"the checkpoint's remote code has no {method_name}()")
                continue
            try:
                yield self.decode(bench, info, sample, method, rule)
            except Exception as exc:
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                yield SampleResult(sample_id=sample.id, status="error", error=detail, prompt_tokens=len(sample.prompt_ids))

    def decode(self, bench, info: CellInfo, sample, method, rule: str) -> SampleResult:
        device = next(self.model.parameters()).device
        prompt = torch.tensor([sample.prompt_ids], device=device)
        kwargs = {"max_new_tokens": bench.task.max_new_tokens, "eos_token_id": self.eos[0] if self.eos else None}
        if bench.mode.name != "ar":
            kwargs["block_length"] = info.block_length
            if bench.mode.threshold is not None:
                kwargs["threshold"] = bench.mode.threshold
        if bench.mode.name == "diffusion":
            # The vendor's generate() decodes whole blocks only.
            kwargs["max_new_tokens"] = max(info.block_length, bench.task.max_new_tokens // info.block_length * info.block_length)
        counter = ForwardCounter(getattr(self.model, "encoder", self.model))
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                out_ids, nfe = method(prompt, **kwargs)
        finally:
            counter.close()
        elapsed = time.perf_counter() - started
        returned = out_ids[0, prompt.shape[1]:].tolist()
        stream = TokenStream(bench.task.max_new_tokens, self.eos, started)
        stream.emit(returned)
        forwards = counter.log.forwards_by_kind()
        return SampleResult(
            sample_id=sample.id,
            prompt_tokens=len(sample.prompt_ids),
            new_tokens=len(stream.tokens),
            max_new_tokens=bench.task.max_new_tokens,
            tokens_untrimmed=len(returned),
            finish_reason=stream.finish_reason or "length",
            output_token_ids=stream.tokens,
            output_text=self.tokenizer.decode(stream.tokens, skip_special_tokens=True),
            forwards=forwards,
            query_tokens=counter.log.query_tokens_by_kind(),
            vendor_nfe=int(nfe),
            vendor_nfe_rule=rule,
            forward_kinds=counter.log.kinds,
            forward_query_tokens=counter.log.query_tokens,
            forward_seconds=counter.log.seconds,
            e2e_s=elapsed,
        )
