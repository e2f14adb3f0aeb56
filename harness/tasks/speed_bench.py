"""SPEED-Bench (NVIDIA, `nvidia/SPEED-Bench`): the workload behind the vendor's "4x throughput" claim.

Configs: `qualitative` (880 prompts, 11 categories x 80, for acceptance per domain) and
`throughput_1k` ... `throughput_32k` (1,536 prompts each in three output-entropy tiers, padded to
exactly N x 1000 tokens of tiktoken's `o200k_base`; records carry that count as
`prompt_tokens_o200k` beside the model tokenizer's `prompt_tokens`). Split `test`.

The public rows do not hold the prompts of most sources: their `turns` start with NVIDIA's
placeholder text, which NVIDIA's `specdec_bench` (`examples/specdec_bench/prepare_data.py` in
NVIDIA/Model-Optimizer) replaces by fetching and formatting each source dataset. So: prepare the
data with it (`python prepare_data.py --config throughput_16k` writes
`data/speed/throughput_16k/test.parquet`) and set `task.source` to that parquet. A source that
still holds placeholders fails with that instruction instead of benchmarking the placeholder text.

The harness sends the first turn of each row (the throughput rows have one; qualitative
multi-turn rows are marked in `score_detail`). There is no reference answer: SPEED-Bench measures
speed and acceptance, so rows are not scored (`correct` is null) and the completion (cut at no
stop string) is kept as `output_text`.
"""

from __future__ import annotations

from harness.config import TaskConfig
from harness.tasks.base import Example, Provenance, Score, Task, take
from harness.tasks.data import DatasetError, HubDataset, load_rows

REPOSITORY = "nvidia/SPEED-Bench"
REVISION = "487aa718444e816458d1a0a52bfce7a454285cf4"
CONFIGS = ("qualitative", "throughput_1k", "throughput_2k", "throughput_8k", "throughput_16k", "throughput_32k")
PLACEHOLDER = "FULL BENCHMARK DATA SHOULD BE FETCHED FROM THE SOURCE USING SPECDEC_BENCH"
COLUMNS = ("question_id", "category", "turns")


class SpeedBench(Task):
    version = "1"

    def __init__(self, config: str):
        self.config = config
        self.name = f"speed-bench-{config.replace('_', '-')}"
        self.hub = HubDataset(REPOSITORY, config, "test", revision=REVISION)

    def provenance(self, cfg: TaskConfig) -> Provenance:
        return self._load(cfg)[1]

    def _load(self, cfg: TaskConfig):
        rows, provenance = load_rows(cfg, self.hub, columns=COLUMNS, dataset=f"SPEED-Bench {self.config}")
        unresolved = [row["question_id"] for row in rows if any(PLACEHOLDER in turn for turn in row["turns"])]
        if unresolved:
            raise DatasetError(
                f"{len(unresolved)} of {len(rows)} SPEED-Bench {self.config} rows (e.g. question_id "
                f"{', '.join(map(str, unresolved[:3]))}) still hold NVIDIA's placeholder instead of a prompt. "
                "The public rows must be resolved first with NVIDIA's specdec_bench "
                f"(NVIDIA/Model-Optimizer examples/specdec_bench: python prepare_data.py --config {self.config}); "
                f"then set task.source to the parquet it writes (data/speed/{self.config}/test.parquet)."
            )
        return rows, provenance

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rows, _ = self._load(cfg)
        examples = [
            Example(id=str(row["question_id"]), question=row["turns"][0], answer=None, category=row["category"],
                    metadata={"turns": len(row["turns"])})
            for row in rows
        ]
        return take(examples, cfg)

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        return f"{filler}\n\n{example.question}" if filler else example.question

    def score(self, example: Example, completion: str) -> Score:
        turns = example.metadata["turns"]
        note = "not scored: SPEED-Bench has no reference answers"
        if turns > 1:
            note += f"; first of {turns} turns sent"
        return Score(correct=None, extracted=None, detail=note)


SPEED_BENCH_TASKS = {task.name: task for task in (SpeedBench(config) for config in CONFIGS)}
