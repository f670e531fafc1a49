"""``lhotse-triplets prepare ...``: one command per recipe."""

import click

from lhotse_triplets.bin.cli import prepare


@prepare.command("llava-instruct", context_settings=dict(show_default=True))
@click.argument("source")
@click.argument("output_dir", type=click.Path())
@click.option(
    "--image-dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder with the images of a local JSONL dump.",
)
@click.option("--config", "config_name", default=None, help="HF dataset config (e.g. CLEVR).")
@click.option("--split", default="train")
@click.option("--limit", type=int, default=None, help="First N conversations only.")
@click.option("--language", default="en", help="Language of the source user turns.")
def llava_instruct(
    source: str,
    output_dir: str,
    image_dir: str | None,
    config_name: str | None,
    split: str,
    limit: int | None,
    language: str,
) -> None:
    """LLaVA-style corpus (HF dataset id, local JSONL dump, parquet/arrow) -> prompt cuts."""
    from lhotse_triplets.recipes import prepare_llava_instruct

    cuts = prepare_llava_instruct(
        source,
        output_dir,
        image_dir=image_dir,
        config=config_name,
        split=split,
        limit=limit,
        language=language,
    )
    click.echo(f"Prepared prompt cuts in {output_dir} ({sum(1 for _ in cuts)} cuts)")


@prepare.command("sample", context_settings=dict(show_default=True))
@click.argument("output_dir", type=click.Path())
@click.option("-n", "--num-conversations", type=int, default=20)
@click.option("--seed", type=int, default=0)
def sample(output_dir: str, num_conversations: int, seed: int) -> None:
    """The bundled CLEVR-like sample corpus (generated, no download) -> prompt cuts."""
    from lhotse_triplets.recipes import prepare_sample

    cuts = prepare_sample(output_dir, num_conversations=num_conversations, seed=seed)
    click.echo(f"Prepared prompt cuts in {output_dir} ({sum(1 for _ in cuts)} cuts)")
