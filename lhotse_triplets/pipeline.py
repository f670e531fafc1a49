"""``run``: the whole pipeline from one config — prepare, rephrase, synthesize, score, gate, export.

Each stage reads the previous stage's shards and writes its own under the output directory::

    DIR/config.yaml           the resolved configuration
    DIR/prepare/              the recipe's manifest and its failed log
    DIR/prompts/              prompt cuts, sharded
    DIR/rephrase/ synthesize/ score/ gate/   stage shards (+ failed.*.jsonl, .done/)
    DIR/audio/<lang>/<voice>/<id>.flac
    DIR/export/               shar/, triplets.jsonl, nemo_data.yaml
    DIR/failed.jsonl          every failed item: cut id, stage, reason
    DIR/summary.json          the summary (also printed)

A rerun with the same DIR resumes: finished shards are skipped.
"""

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lhotse import CutSet

from lhotse_triplets.config import PipelineConfig, to_yaml
from lhotse_triplets.engine import read_cuts, read_failures, run_stage, shard_cuts
from lhotse_triplets.errors import Failure
from lhotse_triplets.summary import Summary, count_failures, summarize_cuts
from lhotse_triplets.transforms.base import Stage
from lhotse_triplets.transforms.gate import Gate
from lhotse_triplets.transforms.rephrase import Rephrase, rephrase_report
from lhotse_triplets.transforms.score import Score
from lhotse_triplets.transforms.synthesize import Synthesize

logger = logging.getLogger(__name__)

STAGES = ("rephrase", "synthesize", "score", "gate")


def build_stages(cfg: PipelineConfig, output_dir: str | Path) -> dict[str, Stage]:
    """The four transform stages of ``cfg`` (audio files go under ``output_dir/audio``)."""
    s, q, g = cfg.synthesize, cfg.score, cfg.gate
    return {
        "rephrase": Rephrase(
            cfg.languages,
            cfg.rephrase.backend.spec("llm"),
            batch_size=cfg.rephrase.batch_size,
            embed=cfg.rephrase.embed.spec("embed") if cfg.rephrase.embed else None,
            min_similarity=cfg.rephrase.min_similarity,
            min_cross_similarity=cfg.rephrase.min_cross_similarity,
            fallback=cfg.rephrase.fallback,
            cache=Path(output_dir) / "rephrase" / "cache.sqlite" if cfg.rephrase.cache else None,
            translation_files=cfg.rephrase.translation_files,
        ),
        "synthesize": Synthesize(
            {lang: b.spec("tts") for lang, b in s.tts.items()},
            voices_per_prompt=s.voices_per_prompt,
            voices=s.voices,
            sampling_rate=s.sampling_rate,
            audio_dir=Path(output_dir) / "audio",
            audio_format=s.audio_format,
            batch_size=s.batch_size,
            selection=s.selection,
        ),
        "score": Score(
            asr=q.asr.spec("asr") if q.asr else None,
            embed=q.embed.spec("embed") if q.embed else None,
            mos=q.mos.spec("mos") if q.mos else None,
            batch_size=q.batch_size,
        ),
        "gate": Gate(
            g.min_similarity,
            g.max_error_rate,
            g.min_mos,
            g.min_duration,
            g.max_duration,
            calibrated=g.calibrated,
        ),
    }


def prepare(cfg: PipelineConfig, output_dir: Path) -> CutSet:
    """Run the configured recipe into ``output_dir`` (skipped when already done)."""
    from lhotse_triplets.recipes import get_recipe

    recipe = get_recipe(cfg.prepare.recipe)
    return recipe(output_dir=output_dir, **dict(cfg.prepare.options))


def export(
    cfg: PipelineConfig,
    cuts: CutSet,
    output_dir: Path,
    on_failure: Callable[[Failure], None] | None = None,
    failures: list[Failure] | None = None,
) -> dict[str, str]:
    """Write the configured export formats of ``cuts`` into ``output_dir``."""
    from lhotse_triplets.export import export_formats

    e = cfg.export
    return export_formats(
        cuts,
        output_dir,
        formats=e.formats,
        shard_size=e.shard_size,
        shard_hours=e.shard_hours,
        question=e.question,
        include_rejected=e.include_rejected,
        sampling_rate=cfg.synthesize.sampling_rate,
        weights=dict(e.weights),
        num_buckets=e.num_buckets,
        image_mode=e.image_mode,
        duplex_tts=e.duplex_tts,
        settings={
            "languages": list(cfg.languages),
            "synthesize": _plain(cfg.synthesize),
            "score": _plain(cfg.score),
            "gate": _plain(cfg.gate),
        },
        failures=failures or [],
        on_failure=on_failure,
    )


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

    :param until: stop after this stage (``prepare``, one of :data:`STAGES`, or ``export``).

    Example::

        cfg = load_config("configs/quickstart.yaml")
        summary = run_pipeline(cfg, "out/quickstart")
        print(summary)
    """
    start = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(to_yaml(cfg))
    summary = Summary()

    prompts = prepare(cfg, out / "prepare")
    previous = out / "prompts"
    shards = shard_cuts(prompts, previous, cfg.shard_size)
    summary.prompts = sum(1 for _ in read_cuts(previous)) if shards else 0
    stage_dirs: list[Path] = []
    if until != "prepare":
        for name, stage in build_stages(cfg, out).items():
            report = run_stage(
                stage, previous, out / name, num_jobs=cfg.num_jobs, progress=progress
            )
            summary.stages.append(
                {
                    "stage": name,
                    "cuts_in": report.cuts_in,
                    "cuts_out": report.cuts_out,
                    "failed": report.num_failed,
                    "resumed_shards": report.shards_skipped,
                }
            )
            stage_dirs.append(out / name)
            previous = out / name
            if name == until:
                break

    if (out / "rephrase").is_dir() and "rephrase" in [s["stage"] for s in summary.stages]:
        rephrased = rephrase_report(read_cuts(out / "rephrase"), num_examples=0)
        summary.rephrase = {
            "text_from": dict(rephrased.kept_by.most_common()),
            "rejected_rewrites": dict(rephrased.reasons.most_common()),
        }
    failures = _recipe_failures(out / "prepare")
    for d in stage_dirs:
        failures.extend(read_failures(d))
    if (out / "gate").is_dir() and "gate" in [s["stage"] for s in summary.stages]:
        summarize_cuts(read_cuts(out / "gate"), summary)
        if until in (None, "export"):
            summary.outputs = export(
                cfg,
                read_cuts(out / "gate"),
                out / "export",
                on_failure=failures.append,
                failures=failures,
            )
    with (out / "failed.jsonl").open("w") as f:
        for failure in failures:
            f.write(json.dumps(failure.to_dict(), ensure_ascii=False) + "\n")
    summary.failed = count_failures(failures)
    summary.outputs["failed"] = str(out / "failed.jsonl")
    summary.seconds = time.perf_counter() - start
    summary.save(out / "summary.json")
    return summary


def _recipe_failures(prepare_dir: Path) -> list[Failure]:
    out = []
    for p in sorted(prepare_dir.glob("*failed*.jsonl")):
        with p.open() as f:
            for line in f:
                if line.strip():
                    d: dict[str, Any] = json.loads(line)
                    out.append(
                        Failure(
                            d.get("cut_id", "?"), d.get("stage", "prepare"), d.get("reason", "?")
                        )
                    )
    return out
