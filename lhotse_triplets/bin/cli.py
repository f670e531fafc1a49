"""The ``lhotse-triplets`` command: one click group; each ``bin`` module contributes commands.

The modules under ``bin/`` define their commands without importing this one (no import cycle);
this module adds them to the root group.
"""

import json
import logging
import zlib

import click
import yaml

from lhotse_triplets import __version__
from lhotse_triplets.bin.bench_cmds import bench
from lhotse_triplets.bin.browse_cmds import browse
from lhotse_triplets.bin.curriculum_cmds import curriculum
from lhotse_triplets.bin.describe_cmds import describe
from lhotse_triplets.bin.export_cmds import export
from lhotse_triplets.bin.prepare_cmds import prepare
from lhotse_triplets.bin.stages import STAGE_COMMANDS, run
from lhotse_triplets.bin.validate_cmds import validate
from lhotse_triplets.bin.voices_cmds import voices
from lhotse_triplets.engine import RunError

#: Errors that mean bad input or a bad environment (a path, a value, a torn or unreadable file,
#: a full or read-only disk, a missing optional package): shown as one ``Error: ...`` line naming
#: the problem, exit status 1; ``-v`` shows the traceback instead. ``OSError`` covers
#: ``FileNotFoundError``, ``PermissionError``, ``ENOSPC``, ``gzip.BadGzipFile``; ``EOFError`` is a
#: truncated gzip file (click would print only ``Aborted!``); ``ValueError`` covers
#: :class:`~lhotse_triplets.config.ConfigError`, JSON and Unicode decoding errors; ``RunError``
#: a run that stopped (a stage failing every item, an unwritable or torn file).
USER_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    ImportError,
    zlib.error,
    yaml.YAMLError,
    RunError,
)


def error_line(e: BaseException) -> str:
    """One line for a user error: the library's messages as they are (they name the key or the
    file), others prefixed with their type; an ``OSError`` with the file it names."""
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        message = f"{e.filename}: {e.strerror}"
    else:
        message = str(e) or type(e).__name__
    own = isinstance(e, (ValueError, RunError))
    if not own or type(e) in (UnicodeDecodeError, json.JSONDecodeError):
        message = f"{type(e).__name__}: {message}"
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


class Group(click.Group):
    """A click group that turns bad-input exceptions into clean one-line ``Error: ...`` messages
    (exit status 1), and a bad argument value (a missing ``CONFIG`` file) into one line too."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.BadParameter as e:
            if ctx.params.get("verbose"):
                raise
            raise click.ClickException(error_line(ValueError(e.format_message()))) from None
        except USER_ERRORS as e:
            if ctx.params.get("verbose"):
                raise
            raise click.ClickException(error_line(e)) from None


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


for command in (
    prepare,
    *STAGE_COMMANDS,
    run,
    export,
    bench,
    voices,
    curriculum,
    validate,
    describe,
    browse,
):
    cli.add_command(command)

if __name__ == "__main__":
    cli()
