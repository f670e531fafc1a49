"""The pipeline's stages by name, in run order, and the one function that builds them.

``run``, the stage commands and the benchmark all build stages here, from a run configuration,
so a stage's options and defaults exist once (in :mod:`lhotse_triplets.config`).

Example::

    cfg = load_config("configs/quickstart.yaml")
    gate = build_stage("gate", cfg, "out")
"""

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from lhotse_triplets.transforms.base import Stage
from lhotse_triplets.transforms.gate import Gate
from lhotse_triplets.transforms.rephrase import Rephrase
from lhotse_triplets.transforms.score import Score
from lhotse_triplets.transforms.synthesize import Synthesize

#: name -> stage class, in the order ``run`` chains them.
STAGES: dict[str, type[Stage]] = {cls.name: cls for cls in (Rephrase, Synthesize, Score, Gate)}


def build_stage(
    name: str, cfg: Any, run_dir: str | Path | None = None, stage_dir: str | Path | None = None
) -> Stage:
    """The stage ``name`` as ``cfg`` describes it (see :meth:`Stage.from_config`), with the
    per-item time limit of ``cfg.engine.item_timeout`` (none when the config has no ``engine``).

    :raises ValueError: for an unknown stage name (the known ones are listed).
    """
    if name not in STAGES:
        raise ValueError(f"Unknown stage {name!r}; known stages: {', '.join(STAGES)}")
    stage = STAGES[name].from_config(cfg, run_dir, stage_dir)
    engine = getattr(cfg, "engine", None)
    stage.item_timeout = getattr(engine, "item_timeout", None)
    stage.resources = stage_resources(cfg, name)
    return stage


def stage_resources(cfg: Any, name: str) -> dict[str, Any]:
    """What one worker of stage ``name`` reserves on a cluster, from its config section: the sum
    of its backends' ``num_gpus`` and ``num_cpus`` (``None`` when no backend sets it: the
    executor's threads per worker), and the section's ``concurrency`` (``None``: the executor's
    workers).

    Example::

        >>> cfg = load_config(overrides=["score.asr.num_gpus=1", "score.concurrency=2"])
        >>> stage_resources(cfg, "score")
        {'num_gpus': 1.0, 'num_cpus': None, 'concurrency': 2}
    """
    section = getattr(cfg, name, None)
    backends = list(_backend_nodes(section)) if section is not None else []
    cpus = [b.get("num_cpus") for b in backends if b.get("num_cpus") is not None]
    return {
        "num_gpus": float(sum(b.get("num_gpus") or 0.0 for b in backends)),
        "num_cpus": float(sum(cpus)) if cpus else None,
        "concurrency": getattr(section, "concurrency", None),
    }


def _backend_nodes(node: Any) -> Iterator[dict]:
    """The backend configs (``{name, options, num_gpus, num_cpus}``) anywhere in a section."""
    if isinstance(node, (DictConfig, ListConfig)) or dataclasses.is_dataclass(node):
        node = OmegaConf.to_container(OmegaConf.structured(node), resolve=True)
    if isinstance(node, dict):
        if {"name", "options", "num_gpus"} <= node.keys():
            yield node
            return
        for value in node.values():
            yield from _backend_nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _backend_nodes(item)
