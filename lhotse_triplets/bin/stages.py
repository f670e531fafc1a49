"""``lhotse-triplets rephrase|synthesize|score|gate|run``: thin wrappers over the stages."""

from collections.abc import Sequence
from pathlib import Path

import click
import yaml

from lhotse_triplets.bin.cli import cli
from lhotse_triplets.transforms.base import BackendSpec, Stage

IN = click.argument("input_path", metavar="IN", type=click.Path(exists=True))
OUT = click.argument("output_dir", metavar="OUT", type=click.Path())
SHARDING = [
    click.option("--shard-size", type=int, default=100, help="Cuts per shard (IN is a file)."),
    click.option("-j", "--num-jobs", type=int, default=1, help="Worker processes."),
]


def sharding(f):
    for option in reversed(SHARDING):
        f = option(f)
    return f


def parse_options(pairs: Sequence[str]) -> dict:
    """``["k=v", ...]`` -> dict, values parsed as YAML (numbers, booleans, lists)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        key, value = pair.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def languages_option(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


def run_and_report(
    stage: Stage, input_path: str, output_dir: str, shard_size: int, num_jobs: int
) -> None:
    from lhotse_triplets.engine import list_shards, read_cuts, run_stage, shard_cuts

    src = Path(input_path)
    shards = list_shards(src) if src.is_dir() else []
    if not shards:
        shards = shard_cuts(read_cuts(src), Path(output_dir) / ".input", shard_size)
    report = run_stage(stage, shards, output_dir, num_jobs=num_jobs)
    click.echo(
        f"{stage.name}: {report.cuts_in} cuts in, {report.cuts_out} out, "
        f"{report.num_failed} failed ({report.shards_skipped} shards already done)"
    )
    for reason, n in report.failed.most_common():
        click.echo(f"  failed {n:5d}  {reason}")
    click.echo(f"Output: {output_dir}  (failed items: {output_dir}/failed.*.jsonl)")


@cli.command(context_settings=dict(show_default=True))
@IN
@OUT
@click.option("-l", "--languages", default="en", help="Target languages, comma-separated.")
@click.option("-b", "--backend", default="rules", help="Rephrasing backend (llm kind).")
@click.option("-O", "--option", "options", multiple=True, help="Backend option KEY=VALUE.")
@click.option(
    "--embed", default="use_multilingual", help="Encoder of the meaning check ('none': skip it)."
)
@click.option("--min-similarity", type=float, default=0.4, help="Meaning check, same language.")
@click.option(
    "--min-cross-similarity", type=float, default=0.35, help="Meaning check, translations."
)
@click.option(
    "--fallback",
    type=click.Choice(["rules", "source"]),
    default="rules",
    help="What replaces a rejected rewrite.",
)
@click.option(
    "--cache",
    type=click.Path(dir_okay=False),
    default=None,
    help="sqlite cache of LLM rewrites. Default: OUT/cache.sqlite.",
)
@click.option("--no-cache", is_flag=True, help="Do not cache LLM rewrites.")
@click.option(
    "-t",
    "--translations",
    multiple=True,
    type=click.Path(exists=True),
    help="JSONL file or folder of supplied translations, joined by conversation id (repeatable).",
)
@click.option("--batch-size", type=int, default=32, help="Texts per backend call.")
@sharding
def rephrase(
    input_path: str,
    output_dir: str,
    languages: str,
    backend: str,
    options: tuple[str],
    embed: str,
    min_similarity: float,
    min_cross_similarity: float,
    fallback: str,
    cache: str | None,
    no_cache: bool,
    translations: tuple[str],
    batch_size: int,
    shard_size: int,
    num_jobs: int,
) -> None:
    """Spoken-style user text in each target language (one cut per language), validated."""
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.transforms.rephrase import Rephrase, rephrase_report

    stage = Rephrase(
        languages_option(languages),
        BackendSpec("llm", backend, parse_options(options)),
        batch_size=batch_size,
        embed=None if embed == "none" else BackendSpec("embed", embed),
        min_similarity=min_similarity,
        min_cross_similarity=min_cross_similarity,
        fallback=fallback,
        cache=None if no_cache else (cache or Path(output_dir) / "cache.sqlite"),
        translation_files=translations,
    )
    run_and_report(stage, input_path, output_dir, shard_size, num_jobs)
    click.echo(str(rephrase_report(read_cuts(output_dir))))


@cli.command(context_settings=dict(show_default=True))
@IN
@OUT
@click.option(
    "-t",
    "--tts",
    "tts",
    multiple=True,
    default=("default=espeak",),
    help="LANG=ENGINE (LANG 'default' for all others), repeatable.",
)
@click.option(
    "-O", "--option", "options", multiple=True, help="Option for every engine, KEY=VALUE."
)
@click.option("-n", "--voices-per-prompt", type=int, default=1)
@click.option("--sampling-rate", type=int, default=16000)
@click.option("--audio-dir", type=click.Path(), default=None, help="Default: OUT/audio.")
@click.option(
    "--selection",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="selection.yaml from `bench select`: its engine and voices for the languages it lists.",
)
@sharding
def synthesize(
    input_path: str,
    output_dir: str,
    tts: tuple[str],
    options: tuple[str],
    voices_per_prompt: int,
    sampling_rate: int,
    audio_dir: str | None,
    selection: str | None,
    shard_size: int,
    num_jobs: int,
) -> None:
    """Speak each language cut with N voices (one cut per voice, audio under OUT/audio)."""
    from lhotse_triplets.transforms.synthesize import Synthesize

    opts = parse_options(options)
    engines = {}
    for item in tts:
        lang, _, name = item.partition("=")
        if not name:
            raise click.BadParameter(f"{item!r} is not LANG=ENGINE", param_hint="--tts")
        engines[lang] = BackendSpec("tts", name, opts)
    try:
        stage = Synthesize(
            engines,
            voices_per_prompt=voices_per_prompt,
            sampling_rate=sampling_rate,
            audio_dir=audio_dir or Path(output_dir) / "audio",
            selection=selection,
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    run_and_report(stage, input_path, output_dir, shard_size, num_jobs)


@cli.command(context_settings=dict(show_default=True))
@IN
@OUT
@click.option("--asr", default="faster_whisper", help="ASR backend ('none' to skip).")
@click.option("--embed", default="use_multilingual", help="Embedding backend ('none' to skip).")
@click.option("--mos", default="distillmos", help="MOS backend ('none' to skip).")
@click.option("--batch-size", type=int, default=8)
@sharding
def score(
    input_path: str,
    output_dir: str,
    asr: str,
    embed: str,
    mos: str,
    batch_size: int,
    shard_size: int,
    num_jobs: int,
) -> None:
    """ASR transcript, similarity, WER/CER and MOS of each clip, as custom fields."""
    from lhotse_triplets.transforms.score import Score

    def spec(kind: str, name: str) -> BackendSpec | None:
        return None if name == "none" else BackendSpec(kind, name)

    stage = Score(spec("asr", asr), spec("embed", embed), spec("mos", mos), batch_size=batch_size)
    run_and_report(stage, input_path, output_dir, shard_size, num_jobs)


@cli.command(context_settings=dict(show_default=True))
@IN
@OUT
@click.option("--min-similarity", type=float, default=0.6)
@click.option("--max-error-rate", type=float, default=0.5)
@click.option("--min-mos", type=float, default=2.5)
@click.option("--min-duration", type=float, default=0.3)
@click.option("--max-duration", type=float, default=30.0)
@click.option(
    "--calibrated",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Gate JSON from `bench calibrate`: replaces the similarity/error/MOS thresholds.",
)
@sharding
def gate(
    input_path: str,
    output_dir: str,
    min_similarity: float,
    max_error_rate: float,
    min_mos: float,
    min_duration: float,
    max_duration: float,
    calibrated: str | None,
    shard_size: int,
    num_jobs: int,
) -> None:
    """Keep or reject each scored clip; rejected ones carry reject_reason."""
    from lhotse_triplets.transforms.gate import Gate

    try:
        stage = Gate(
            min_similarity, max_error_rate, min_mos, min_duration, max_duration, calibrated
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    run_and_report(stage, input_path, output_dir, shard_size, num_jobs)


@cli.command(context_settings=dict(show_default=True))
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output-dir", required=True, type=click.Path(), help="Run directory.")
@click.option(
    "--until",
    type=click.Choice(["prepare", "rephrase", "synthesize", "score", "gate", "export"]),
    default=None,
    help="Stop after a stage.",
)
@click.argument("overrides", nargs=-1)
def run(config: str, output_dir: str, until: str | None, overrides: tuple[str]) -> None:
    """Run the whole pipeline from a YAML config (resumes in an existing OUTPUT_DIR).

    OVERRIDES are dotted KEY=VALUE pairs, e.g. synthesize.voices_per_prompt=2.
    """
    from lhotse_triplets.config import load_config
    from lhotse_triplets.pipeline import run_pipeline

    try:
        cfg = load_config(config, overrides)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    summary = run_pipeline(cfg, output_dir, until=until)
    click.echo("\n" + str(summary))
