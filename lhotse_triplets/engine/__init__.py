"""Sharded, resumable execution of stages behind one seam: an :class:`Executor` chosen by name
(``engine: {name: local}`` in config; ``local`` worker processes by default)."""

from lhotse_triplets.engine.base import (
    EXECUTORS,
    Executor,
    StageReport,
    available_executors,
    executor,
    get_executor,
    list_shards,
    process_shard,
    read_cuts,
    shard_cuts,
    shard_inputs,
)
from lhotse_triplets.engine.local import LocalExecutor

__all__ = [
    "Executor",
    "LocalExecutor",
    "StageReport",
    "EXECUTORS",
    "available_executors",
    "executor",
    "get_executor",
    "list_shards",
    "process_shard",
    "read_cuts",
    "shard_cuts",
    "shard_inputs",
]
