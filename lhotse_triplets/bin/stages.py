"""``lhotse-triplets rephrase|synthesize|score|gate IN OUT [KEY=VALUE ...]`` and ``run``.

The stage commands are generated from the stage registry: each reads the same configuration
schema as ``run`` (``--config`` a run config, then ``KEY=VALUE`` pairs; a key of the stage's own
section needs no prefix), builds its stage through the one ``build_stage`` and runs it with the
configured executor. No stage option is spelled here.
"""

from pathlib import Path

import click
from omegaconf import OmegaConf

from lhotse_triplets.bin.options import CONFIG, OVERRIDES
from lhotse_triplets.transforms.registry import STAGES


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
    @OVERRIDES
    def command(
        input_path: str, output_dir: str, config_file: str | None, overrides: tuple[str, ...]
    ) -> None:
        from lhotse_triplets.config import load_config, scoped_overrides
        from lhotse_triplets.engine import get_executor, read_cuts, shard_inputs
        from lhotse_triplets.transforms.registry import build_stage
        from lhotse_triplets.transforms.rephrase import rephrase_report

        cfg = load_config(config_file, scoped_overrides(overrides, name))
        out = Path(output_dir)
        stage = build_stage(name, cfg, run_dir=out, stage_dir=out)
        shards = shard_inputs(input_path, out / ".input", cfg.shard_size)
        report = get_executor(cfg.engine).run(stage, shards, out)
        click.echo(str(report))
        click.echo(f"Output: {out}  (failed items: {out}/failed.*.jsonl)")
        if name == "rephrase":
            click.echo(str(rephrase_report(read_cuts(out))))

    return command


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
@OVERRIDES
def run(config: str, output_dir: str, until: str | None, overrides: tuple[str, ...]) -> None:
    """Run the whole pipeline from a YAML config (resumes in an existing OUTPUT_DIR).

    OVERRIDES are dotted KEY=VALUE pairs, e.g. synthesize.voices_per_prompt=2.
    """
    from lhotse_triplets.config import load_config
    from lhotse_triplets.pipeline import run_pipeline

    summary = run_pipeline(load_config(config, overrides), output_dir, until=until)
    click.echo("\n" + str(summary))
