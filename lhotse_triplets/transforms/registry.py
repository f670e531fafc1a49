"""The pipeline's stages by name, in run order, and the one function that builds them.

``run``, the stage commands and the benchmark all build stages here, from a run configuration,
so a stage's options and defaults exist once (in :mod:`lhotse_triplets.config`).

Example::

    cfg = load_config("configs/quickstart.yaml")
    gate = build_stage("gate", cfg, "out")
"""

from pathlib import Path
from typing import Any

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
    return stage
