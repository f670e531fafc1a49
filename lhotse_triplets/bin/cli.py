"""The ``lhotse-triplets`` command: one click group; each ``bin`` module contributes commands.

The modules under ``bin/`` define their commands without importing this one (no import cycle);
this module adds them to the root group.
"""

import logging

import click

from lhotse_triplets import __version__
from lhotse_triplets.bin.bench_cmds import bench
from lhotse_triplets.bin.export_cmds import export
from lhotse_triplets.bin.prepare_cmds import prepare
from lhotse_triplets.bin.stages import STAGE_COMMANDS, run
from lhotse_triplets.bin.voices_cmds import voices

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


for command in (prepare, *STAGE_COMMANDS, run, export, bench, voices):
    cli.add_command(command)

if __name__ == "__main__":
    cli()
