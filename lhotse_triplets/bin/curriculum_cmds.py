"""``lhotse-triplets curriculum IN OUT --stages ... --tokenizer PATH``: length curricula.

Example::

    lhotse-triplets curriculum out/turns.jsonl.gz out/curriculum \\
        --stages 8192,16384,32768,65536 --tokenizer models/tokenizer.model
"""

import json

import click

from lhotse_triplets.curriculum import TOKEN_EQUIVALENT_DURATION, build_curriculum, parse_stages

_EPILOG = (
    "Tokens of a conversation = text tokens of every turn (the tokenizer's count of its text, no "
    "special tokens) + ceil(duration / token-equivalent-duration) audio frames of every turn "
    "that has audio (NeMo's measure). A conversation enters the first stage with tokens <= "
    "limit. OUT gets curriculum_<limit>.jsonl.gz per stage, too_long.jsonl (longer than the last "
    "stage), failed.jsonl (turn gaps, a turn without text) and summary.json."
)


def _stages(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        return parse_stages(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command("curriculum", context_settings=dict(show_default=True), epilog=_EPILOG)
@click.argument("input_path", metavar="IN", type=click.Path(exists=True))
@click.argument("output_dir", metavar="OUT", type=click.Path())
@click.option(
    "--stages",
    required=True,
    callback=_stages,
    help="Ascending token limits, comma-separated (e.g. 8192,16384,32768,65536).",
)
@click.option(
    "--tokenizer",
    "tokenizer_path",
    required=True,
    help="A Hugging Face tokenizer folder or a (NeMo) SentencePiece .model file.",
)
@click.option(
    "--token-equivalent-duration",
    type=float,
    default=TOKEN_EQUIVALENT_DURATION,
    help="Seconds of audio counted as one token (NeMo's token_equivalent_duration).",
)
@click.option("--overwrite", is_flag=True, help="Replace an earlier curriculum in OUT.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def curriculum(
    input_path: str,
    output_dir: str,
    stages: list[int],
    tokenizer_path: str,
    token_equivalent_duration: float,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Split the conversations of IN (a manifest or stage directory) into token-length stages."""
    result = build_curriculum(
        input_path,
        output_dir,
        stages,
        tokenizer_path,
        token_equivalent_duration=token_equivalent_duration,
        overwrite=overwrite,
    )
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else str(result))
