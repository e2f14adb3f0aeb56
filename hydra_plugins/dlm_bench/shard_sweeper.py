"""Hydra's basic sweeper, with every cell whose `runner.shards` is N > 1 expanded into N jobs.

The expansion (harness.shards.expand_shard_jobs) reads N from each job's composed config, so a
shard count set in a sweep preset or a runner YAML counts as well as one on the command line. The
jobs then go to whichever launcher the sweep uses: the basic one (in turn, in this process), the
submitit ones (a SLURM array job, or submitit's local executor), or local-gpus (one per GPU).
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.types import Override
from omegaconf import OmegaConf

from harness.shards import SHARDS_OVERRIDE, expand_shard_jobs


@dataclass
class ShardSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.dlm_bench.shard_sweeper.ShardSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="dlm_bench", node=ShardSweeperConf, provider="dlm-bench")


class ShardSweeper(BasicSweeper):
    def split_arguments(self, overrides: List[Override], max_batch_size: Optional[int]) -> List[List[List[str]]]:
        jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
        jobs = expand_shard_jobs(jobs, self.shards_of)
        size = max_batch_size if max_batch_size and max_batch_size > 0 else max(len(jobs), 1)
        return [jobs[i : i + size] for i in range(0, len(jobs), size)]

    def shards_of(self, job: Sequence[str]) -> int:
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
        return int(OmegaConf.select(config, SHARDS_OVERRIDE, default=1) or 1)
