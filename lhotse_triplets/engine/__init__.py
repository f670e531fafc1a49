"""Sharded, resumable execution of stages (local worker processes by default)."""

from lhotse_triplets.engine.local import (
    StageReport,
    list_shards,
    read_cuts,
    read_failures,
    run_stage,
    shard_cuts,
)

__all__ = ["StageReport", "list_shards", "read_cuts", "read_failures", "run_stage", "shard_cuts"]
