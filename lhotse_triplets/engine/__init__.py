"""Sharded, resumable execution of stages behind one seam: an :class:`Executor` chosen by name
(``engine: {name: local}`` in config; ``local`` worker processes by default, ``ray`` a Ray
cluster: :mod:`lhotse_triplets.engine.ray`)."""

from lhotse_triplets.engine.base import (
    EXECUTORS,
    OPTIONAL_ENGINE_KEYS,
    Executor,
    NotWritable,
    RunError,
    StageReport,
    StageStopped,
    TornManifest,
    available_executors,
    check_manifest,
    executor,
    get_executor,
    list_shards,
    not_writable,
    process_shard,
    read_cuts,
    remove_temporary,
    shard_cuts,
    shard_inputs,
    unmark_failed_shards,
    unsupported_engine_key,
)
from lhotse_triplets.engine.local import LocalExecutor

__all__ = [
    "Executor",
    "NotWritable",
    "RunError",
    "StageStopped",
    "TornManifest",
    "check_manifest",
    "not_writable",
    "remove_temporary",
    "unmark_failed_shards",
    "unsupported_engine_key",
    "LocalExecutor",
    "StageReport",
    "EXECUTORS",
    "OPTIONAL_ENGINE_KEYS",
    "available_executors",
    "executor",
    "get_executor",
    "list_shards",
    "process_shard",
    "read_cuts",
    "shard_cuts",
    "shard_inputs",
]
