"""The ``lhotse-triplets`` command: one click group; subcommands register themselves."""

import logging

import click

from lhotse_triplets import __version__

#: Errors that mean bad input (a path, a value, a missing optional package): shown as a one-line
#: message naming the problem; ``-v`` shows the traceback instead.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, ImportError)


class Group(click.Group):
    """A click group that turns bad-input exceptions into clean ``Error: ...`` messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as e:
            if ctx.params.get("verbose"):
                raise
            raise click.ClickException(f"{type(e).__name__}: {e}") from None


@click.group(cls=Group)
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
from lhotse_triplets.bin import (  # noqa: E402,F401
    bench_cmds,
    export_cmds,
    prepare_cmds,
    stages,
    voices_cmds,
)

if __name__ == "__main__":
    cli()
