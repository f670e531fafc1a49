"""``lhotse-triplets export ...``: one command per format. ``IN`` is a manifest or stage dir."""

from pathlib import Path

import click

from lhotse_triplets.bin.cli import export

_opts = dict(context_settings=dict(show_default=True))


def _in_out(f):
    f = click.argument("output_dir", metavar="OUT", type=click.Path())(f)
    return click.argument("input_path", metavar="IN", type=click.Path(exists=True))(f)


def _failures():
    failures = []
    return failures, failures.append


def _summary(title: str, counts, paths: dict[str, str], failures) -> None:
    click.echo(f"{title}: {counts}")
    for name, path in paths.items():
        click.echo(f"  {name}: {path}")
    for failure in failures[:10]:
        click.echo(f"  failed: {failure.cut_id} ({failure.stage}): {failure.reason}")
    if len(failures) > 10:
        click.echo(f"  ... and {len(failures) - 10} more failures")


@export.command("shar", **_opts)
@_in_out
@click.option("--shard-size", type=int, default=1000, help="Cuts per Shar shard (0: no limit).")
@click.option("--shard-hours", type=float, default=None, help="Audio hours per shard.")
@click.option(
    "--question", default=None, help="Text turn before the audio in NeMo's sqa_as_conversation."
)
@click.option("--num-buckets", type=int, default=30, help="Buckets estimated for the NeMo YAML.")
@click.option("--include-rejected", is_flag=True, help="Also export cuts the gate rejected.")
def shar(
    input_path, output_dir, shard_size, shard_hours, question, num_buckets, include_rejected
) -> None:
    """Lhotse Shar (flac audio, image bytes inside) + NeMo data config YAML."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export import export_formats

    failures, on_failure = _failures()
    outputs = export_formats(
        read_cuts(input_path),
        output_dir,
        formats=["shar"],
        shard_size=shard_size or None,
        shard_hours=shard_hours,
        question=question,
        num_buckets=num_buckets,
        include_rejected=include_rejected,
        on_failure=on_failure,
    )
    _summary("shar", f"{len(failures)} failed", outputs, failures)


@export.command("nemo", **_opts)
@_in_out
@click.option("--shard-size", type=int, default=1000, help="Conversations per shard (0: none).")
@click.option("--shard-hours", type=float, default=None, help="Audio hours per shard.")
@click.option("--question", default=None, help="Text turn before each audio turn ('' for none).")
@click.option("--system-prompt", default=None, help="System turn opening every conversation.")
@click.option(
    "--image-mode",
    type=click.Choice(["embed", "path"]),
    default="embed",
    help="Image in custom: base64 bytes, or a path under OUT/images.",
)
@click.option(
    "-w", "--weight", "weights", multiple=True, help="LANG=WEIGHT blend weight in the YAML."
)
@click.option("--num-buckets", type=int, default=30, help="Buckets estimated for the YAML.")
@click.option("--overwrite", is_flag=True, help="Replace an existing export in OUT.")
def nemo(
    input_path,
    output_dir,
    shard_size,
    shard_hours,
    question,
    system_prompt,
    image_mode,
    weights,
    num_buckets,
    overwrite,
) -> None:
    """NeMo multimodal_conversation, tarred (multi-turn; one folder per language) + YAML."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export import export_nemo_conversations, write_conversation_config

    parsed = {}
    for item in weights:
        lang, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected LANG=WEIGHT", param_hint="--weight")
        parsed[lang] = float(value)
    failures, on_failure = _failures()
    result = export_nemo_conversations(
        read_cuts(input_path),
        output_dir,
        shard_size=shard_size or None,
        shard_hours=shard_hours,
        question=question,
        system_prompt=system_prompt,
        image_mode=image_mode,
        overwrite=overwrite,
        on_failure=on_failure,
    )
    paths = {
        lang: f"{len(p)} shard(s) in {Path(p[0][0]).parent}" for lang, p in result.shards.items()
    }
    if result.shards:
        config = write_conversation_config(result, weights=parsed, num_buckets=num_buckets)
        paths["config"] = str(config)
    _summary("conversations", result.counts, paths, failures)


@export.command("triplets", **_opts)
@click.argument("input_path", metavar="IN", type=click.Path(exists=True))
@click.argument("output_path", metavar="OUT", type=click.Path())
@click.option("--include-rejected", is_flag=True, help="Also list cuts the gate rejected.")
def triplets(input_path: str, output_path: str, include_rejected: bool) -> None:
    """Triplet index (image, audio, target text, language, voice, scores) as JSONL or CSV."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export.triplets import export_triplets

    n = export_triplets(read_cuts(input_path), output_path, include_rejected=include_rejected)
    click.echo(f"{output_path}: {n} triplets")


@export.command("triplet-files", **_opts)
@_in_out
@click.option("--index-format", type=click.Choice(["csv", "jsonl"]), default="csv")
@click.option("--overwrite", is_flag=True, help="Replace an existing export in OUT.")
def triplet_files(input_path, output_dir, index_format, overwrite) -> None:
    """WAVs under <lang>/<voice>/, metadata_<lang>.jsonl, failed_<lang>.jsonl, index, images/."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export import export_triplet_files

    failures, on_failure = _failures()
    result = export_triplet_files(
        read_cuts(input_path),
        output_dir,
        index_format=index_format,
        overwrite=overwrite,
        on_failure=on_failure,
    )
    _summary("triplet files", result.counts, {"index": str(result.index)}, failures)


@export.command("hf", **_opts)
@_in_out
@click.option("--num-shards", type=int, default=None, help="Parquet shards (default: by rows).")
@click.option("--overwrite", is_flag=True, help="Replace an existing export in OUT.")
def hf(input_path, output_dir, num_shards, overwrite) -> None:
    """Hugging Face dataset: Audio + Image features, save_to_disk, parquet shards, card."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export import export_hf

    failures, on_failure = _failures()
    result = export_hf(
        read_cuts(input_path),
        output_dir,
        num_shards=num_shards,
        settings={"source": str(input_path)},
        overwrite=overwrite,
        on_failure=on_failure,
    )
    paths = {"arrow": str(result.arrow_dir), "card": str(result.card)}
    paths.update({f"parquet {i}": str(p) for i, p in enumerate(result.parquet_files)})
    _summary("hf", result.counts, paths, failures)


@export.command("duplex", **_opts)
@_in_out
@click.option("--tts", default=None, help="TTS backend speaking the answers (registry name).")
@click.option("--agent-voice", default=None, help="Voice of the agent (default: the first).")
@click.option("--gap", type=float, default=0.4, help="Seconds of silence between turns.")
@click.option("--overwrite", is_flag=True, help="Replace an existing export in OUT.")
def duplex(input_path, output_dir, tts, agent_voice, gap, overwrite) -> None:
    """DuplexS2S Shar: user audio + target_audio (agent), supervisions with user/agent roles."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export import export_duplex

    failures, on_failure = _failures()
    counts = export_duplex(
        read_cuts(input_path),
        output_dir,
        tts=tts,
        agent_voice=agent_voice,
        gap=gap,
        overwrite=overwrite,
        on_failure=on_failure,
    )
    _summary("duplex dialogues", counts, {"shar": str(output_dir)}, failures)


@export.command("report", **_opts)
@_in_out
@click.option(
    "--failed",
    "failed_path",
    type=click.Path(exists=True),
    default=None,
    help="A failed.jsonl to include.",
)
def report(input_path, output_dir, failed_path) -> None:
    """Markdown + HTML report: counts, hours per language/voice, score plots, rejections."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export import read_failures, write_report

    failures = read_failures(failed_path) if failed_path else []
    paths = write_report(read_cuts(input_path), output_dir, failures=failures)
    for name, path in paths.items():
        click.echo(f"{name}: {path}")
