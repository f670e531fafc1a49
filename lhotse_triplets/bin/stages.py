"""``lhotse-triplets rephrase|synthesize|score|gate IN OUT [KEY=VALUE ...]`` and ``run``.

The stage commands are generated from the stage registry: each reads the same configuration
schema as ``run`` (``--config`` a run config, then ``KEY=VALUE`` pairs; a key of the stage's own
section needs no prefix), builds its stage through the one ``build_stage`` and runs it with the
configured executor. No stage option is spelled here.

Errors that stop a run or a stage (a stage whose first items all fail, an output that cannot be
written, a torn input, a changed configuration) are one ``Error: ...`` line and exit status 1;
``run`` prints its summary first.
"""

from pathlib import Path
from typing import Any

import click
from omegaconf import OmegaConf

from lhotse_triplets.bin.options import CONFIG, ENGINE, OVERRIDES, with_engine
from lhotse_triplets.transforms.registry import STAGES

#: ``--retry-failed``: redo the finished shards that have failed items.
RETRY_FAILED = click.option(
    "--retry-failed",
    is_flag=True,
    help="Redo the finished shards that have failed items (whole shards, replaced atomically; "
    "in `run` also the same shards of the later stages). Items the recipe rejected are not "
    "retried.",
)


def _section_help(name: str) -> str:
    """The stage's config keys and their defaults, for ``--help``."""
    from lhotse_triplets.config import PipelineConfig

    section = OmegaConf.to_yaml(OmegaConf.structured(PipelineConfig)[name]).rstrip()
    lines = "\n".join(f"  {line}" for line in section.splitlines())
    return f"\b\nKeys of the {name} section (defaults):\n{lines}"


def _stage_command(name: str) -> click.Command:
    from lhotse_triplets.config import PipelineConfig

    cls = STAGES[name]
    first_key = next(iter(OmegaConf.structured(PipelineConfig)[name]))

    @click.command(
        name,
        help=(
            f"{cls.summary}\n\nIN is a manifest or a stage directory, OUT the stage directory "
            "(resumes). KEY=VALUE pairs set keys of the run configuration: keys of the "
            f"'{name}' section as they are (e.g. {first_key}=...), others dotted from the top "
            "(shard_size=50, languages=[en,fr], engine.num_workers=2)."
        ),
        epilog=_section_help(name),
    )
    @click.argument("input_path", metavar="IN", type=click.Path(exists=True))
    @click.argument("output_dir", metavar="OUT", type=click.Path())
    @CONFIG
    @RETRY_FAILED
    @click.option(
        "--force-recompute",
        is_flag=True,
        help="Redo OUT from scratch (deleting only the files this stage wrote there): needed "
        "when the stage's configuration changed since OUT was made.",
    )
    @ENGINE
    @OVERRIDES
    def command(
        input_path: str,
        output_dir: str,
        config_file: str | None,
        retry_failed: bool,
        force_recompute: bool,
        engine: str | None,
        overrides: tuple[str, ...],
    ) -> None:
        from lhotse_triplets.config import load_config, scoped_overrides
        from lhotse_triplets.engine import RunError

        cfg = load_config(config_file, with_engine(scoped_overrides(overrides, name), engine))
        out = Path(output_dir)
        try:
            _run_stage(name, cfg, input_path, out, retry_failed, force_recompute)
        except RunError as e:
            raise click.ClickException(str(e)) from None

    return command


def _run_stage(
    name: str, cfg: Any, input_path: str, out: Path, retry_failed: bool, force: bool = False
) -> None:
    """The body of a stage command: preflight, shards, executor, report; a stage whose every
    item failed is an error (exit status 1)."""
    from lhotse_triplets.engine import (
        RunError,
        get_executor,
        not_writable,
        read_cuts,
        shard_inputs,
        unmark_failed_shards,
    )
    from lhotse_triplets.pipeline import check_stage_dir
    from lhotse_triplets.preflight import preflight
    from lhotse_triplets.transforms.registry import build_stage
    from lhotse_triplets.transforms.rephrase import rephrase_report

    preflight(cfg, out, steps=[name])
    check_stage_dir(out, name, cfg, force=force)
    stage = build_stage(name, cfg, run_dir=out, stage_dir=out)
    try:
        shards = shard_inputs(input_path, out / ".input", cfg.shard_size)
    except OSError as e:
        if (wrapped := not_writable(e, name, out)) is None:
            raise
        raise wrapped from e
    if retry_failed and out.is_dir():
        unmark_failed_shards(out)
    report = get_executor(cfg.engine).run(stage, shards, out)
    click.echo(str(report))
    click.echo(f"Output: {out}  (failed items: {out}/failed.*.jsonl)")
    if report.cuts_out == 0 and report.num_failed:
        raise RunError(f"{name}: every item failed ({report.num_failed}); see {out}/failed.*.jsonl")
    if name == "rephrase":
        click.echo(str(rephrase_report(read_cuts(out))))


#: One command per registered stage.
STAGE_COMMANDS = [_stage_command(name) for name in STAGES]


@click.command(context_settings=dict(show_default=True))
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output-dir", required=True, type=click.Path(), help="Run directory.")
@click.option(
    "--until",
    type=click.Choice(["prepare", *STAGES, "export"]),
    default=None,
    help="Stop after a step.",
)
@click.option(
    "--force-recompute",
    type=click.Choice(["prepare", *STAGES]),
    default=None,
    help="Recompute this step and every later one (deleting only the files the run wrote for "
    "them): needed when the configuration of a step already run changed.",
)
@RETRY_FAILED
@ENGINE
@OVERRIDES
def run(
    config: str,
    output_dir: str,
    until: str | None,
    force_recompute: str | None,
    retry_failed: bool,
    engine: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Run the whole pipeline from a YAML config (resumes in an existing OUTPUT_DIR).

    OVERRIDES are dotted KEY=VALUE pairs, e.g. synthesize.voices_per_prompt=2 or
    engine.name=ray engine.streaming=true (see docs/scale-out.md). A rerun whose
    configuration changes what a finished step made refuses, naming the keys (see
    --force-recompute). summary.json and failed.jsonl are written whatever stops the run; the
    exit status is 1 when a step failed, a stage stopped early, or every item of a stage failed.
    """
    from lhotse_triplets.config import load_config
    from lhotse_triplets.engine import RunError
    from lhotse_triplets.pipeline import ConfigChanged, run_pipeline

    cfg = load_config(config, with_engine(overrides, engine))
    try:
        summary = run_pipeline(
            cfg,
            output_dir,
            until=until,
            force_recompute=force_recompute,
            retry_failed=retry_failed,
        )
    except Exception as e:
        summary = getattr(e, "summary", None)
        if summary is not None:
            click.echo("\n" + str(summary))
        if isinstance(e, (RunError, ConfigChanged)):
            raise click.ClickException(str(e)) from None
        raise
    click.echo("\n" + str(summary))
