"""``lhotse-triplets export ...``: one command per format."""

import click

from lhotse_triplets.bin.cli import export


@export.command("shar", context_settings=dict(show_default=True))
@click.argument("input_path", metavar="IN", type=click.Path(exists=True))
@click.argument("output_dir", metavar="OUT", type=click.Path())
@click.option("--shard-size", type=int, default=1000, help="Cuts per Shar shard.")
@click.option(
    "--question", default=None, help="Text turn before the audio in NeMo's sqa_as_conversation."
)
@click.option("--include-rejected", is_flag=True, help="Also export cuts the gate rejected.")
def shar(input_path: str, output_dir: str, shard_size: int, question, include_rejected) -> None:
    """Lhotse Shar (flac audio, image bytes inside) + NeMo data config YAML."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export import export_formats

    outputs = export_formats(
        read_cuts(input_path),
        output_dir,
        formats=["shar"],
        shard_size=shard_size,
        question=question,
        include_rejected=include_rejected,
    )
    for name, path in outputs.items():
        click.echo(f"{name}: {path}")


@export.command("triplets", context_settings=dict(show_default=True))
@click.argument("input_path", metavar="IN", type=click.Path(exists=True))
@click.argument("output_path", metavar="OUT", type=click.Path())
@click.option("--include-rejected", is_flag=True, help="Also list cuts the gate rejected.")
def triplets(input_path: str, output_path: str, include_rejected: bool) -> None:
    """Triplet index (image, audio, target text, language, voice, scores) as JSONL or CSV."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export.triplets import export_triplets

    n = export_triplets(read_cuts(input_path), output_path, include_rejected=include_rejected)
    click.echo(f"{output_path}: {n} triplets")
