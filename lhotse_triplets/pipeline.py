"""``run``: the whole pipeline from one config — prepare, rephrase, synthesize, score, gate, export.

Each stage reads the previous stage's shards and writes its own under the output directory::

    DIR/config.yaml           the resolved configuration
    DIR/prepare/              the recipe's manifest and its failed log
    DIR/prompts/              prompt cuts, sharded
    DIR/rephrase/ synthesize/ score/ gate/   stage shards (+ failed.*.jsonl, .done/)
    DIR/audio/<lang>/<voice>/<id>.flac
    DIR/export/               one entry per export format (shar/, nemo_data.yaml, triplets.jsonl...)
    DIR/failed.jsonl          every failed item: cut id, stage, reason
    DIR/summary.json          the summary (also printed)

Stages are built from the config by :func:`~lhotse_triplets.transforms.registry.build_stage` and
run by the executor ``engine`` names; a rerun with the same DIR resumes (finished shards are
skipped), whichever executor ran them.
"""

import logging
import time
from pathlib import Path
from typing import Any

from lhotse import CutSet

from lhotse_triplets.config import PipelineConfig, to_yaml
from lhotse_triplets.engine import get_executor, read_cuts, shard_cuts
from lhotse_triplets.errors import Failure, count_failures, read_failures, write_failures
from lhotse_triplets.summary import Summary, summarize_cuts
from lhotse_triplets.transforms.registry import STAGES, build_stage
from lhotse_triplets.transforms.rephrase import rephrase_report

logger = logging.getLogger(__name__)

#: What ``run --until`` may stop after, in order.
STEPS = ("prepare", *STAGES, "export")


def prepare(cfg: PipelineConfig, output_dir: Path) -> CutSet:
    """Run the configured recipe into ``output_dir`` (skipped when already done)."""
    from lhotse_triplets.recipes import get_recipe

    recipe = get_recipe(cfg.prepare.recipe)
    return recipe(output_dir=output_dir, **dict(cfg.prepare.options))


def export(
    cfg: PipelineConfig, cuts: CutSet, output_dir: Path, failures: list[Failure]
) -> dict[str, str]:
    """Write the configured export formats of gated ``cuts`` into ``output_dir`` (replacing what
    an earlier run wrote there); export failures are appended to ``failures``.

    :return: name -> path of every output the formats name (for the summary).
    """
    from lhotse_triplets.export import ExportOptions, export_formats

    options = ExportOptions.for_run(
        cfg,
        overwrite=True,
        settings={
            "languages": list(cfg.languages),
            "synthesize": _plain(cfg.synthesize),
            "score": _plain(cfg.score),
            "gate": _plain(cfg.gate),
        },
        failures=failures,
        on_failure=failures.append,
    )
    results = export_formats(cuts, output_dir, options)
    return {name: path for result in results.values() for name, path in result.paths.items()}


def _plain(section: Any) -> Any:
    """A config section as plain dicts/lists (for the dataset card)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(section))


def run_pipeline(
    cfg: PipelineConfig,
    output_dir: str | Path,
    *,
    progress: bool = True,
    until: str | None = None,
) -> Summary:
    """Run (or resume) the pipeline into ``output_dir`` and return its :class:`Summary`.

    :param until: stop after this step (one of :data:`STEPS`).

    Example::

        cfg = load_config("configs/quickstart.yaml")
        summary = run_pipeline(cfg, "out/quickstart")
        print(summary)
    """
    if until is not None and until not in STEPS:
        raise ValueError(f"until={until!r}; expected one of {', '.join(STEPS)}")
    start = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(to_yaml(cfg))
    executor = get_executor(cfg.engine, progress=progress)
    summary = Summary()

    shards = shard_cuts(prepare(cfg, out / "prepare"), out / "prompts", cfg.shard_size)
    summary.prompts = sum(1 for _ in read_cuts(out / "prompts")) if shards else 0
    ran: list[str] = []
    previous = out / "prompts"
    for name in STAGES if until != "prepare" else ():
        report = executor.run(build_stage(name, cfg, out), previous, out / name)
        summary.stages.append(report.row())
        ran.append(name)
        previous = out / name
        if name == until:
            break

    if "rephrase" in ran:
        rephrased = rephrase_report(read_cuts(out / "rephrase"), num_examples=0)
        summary.rephrase = {
            "text_from": dict(rephrased.kept_by.most_common()),
            "rejected_rewrites": dict(rephrased.reasons.most_common()),
        }
    failures = read_failures(out / "prepare")
    for name in ran:
        failures.extend(read_failures(out / name))
    if "gate" in ran:
        summarize_cuts(read_cuts(out / "gate"), summary)
        if until in (None, "export"):
            summary.outputs = export(cfg, read_cuts(out / "gate"), out / "export", failures)
    summary.failed = count_failures(failures)
    summary.outputs["failed"] = str(write_failures(out / "failed.jsonl", failures))
    summary.seconds = time.perf_counter() - start
    summary.save(out / "summary.json")
    return summary
