"""The ``lhotse-triplets`` command: one click group; subcommands register themselves."""

import logging

import click

from lhotse_triplets import __version__


@click.group()
@click.version_option(__version__)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def cli(verbose: bool) -> None:
    """Image+text instruction corpora -> (image, spoken prompt) -> target text, for Lhotse/NeMo."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:  # per-clip chatter of model libraries drowns the progress bars
        for name in ("faster_whisper", "httpx", "urllib3", "numba", "jieba"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # kokoro-onnx's phonemizer warns on every clip whose word count changes (harmless).
        logging.getLogger("phonemizer").setLevel(logging.ERROR)


@cli.group()
def prepare() -> None:
    """Import a corpus into prompt cuts (text only: image, user turn, answer, ids)."""


@cli.group()
def export() -> None:
    """Write trainer-ready exports of gated cuts."""


# Register the subcommands.
from lhotse_triplets.bin import export_cmds, prepare_cmds, stages  # noqa: E402,F401

if __name__ == "__main__":
    cli()
