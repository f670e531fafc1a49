"""``lhotse-triplets export FORMAT IN OUT [KEY=VALUE ...]``: one command per registered format.

The commands are generated from the export registry when click asks for them, so a format
registered later (``@exporter("name")``) gets its command too. ``IN`` is a manifest or a stage
directory, ``OUT`` an export directory (the same as ``run``'s ``DIR/export``), the keys those of
the ``export`` section of the pipeline config.

Example::

    lhotse-triplets export shar out/gate out/export include_rejected=true question='""'
    lhotse-triplets export nemo out/gate out/export --overwrite weights.en=2 image_mode=path
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from lhotse_triplets.bin.options import CONFIG, OVERRIDES
from lhotse_triplets.errors import Failure

if TYPE_CHECKING:
    from lhotse_triplets.export import ExportOptions

#: Failures listed after an export.
SHOWN_FAILURES = 10


class ExportGroup(click.Group):
    """A click group whose commands are the registered export formats, looked up when asked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from lhotse_triplets.export import available_formats

        return sorted({*available_formats(), *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from lhotse_triplets.export import available_formats

        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in available_formats():
            return None
        return format_command(cmd_name)


export = ExportGroup(
    "export",
    help="Write trainer-ready exports of gated cuts or dialogue turns (one command per format).",
    context_settings={"token_normalize_func": lambda s: s.replace("-", "_")},
)


_KEYS_EPILOG = (
    "KEY=VALUE pairs set keys of the export section of the pipeline config (e.g. "
    "shard_size=500 weights.en=2 question='\"\"'); other keys are taken from the top "
    "(e.g. synthesize.sampling_rate). KEY=null unsets a key."
)


def format_command(name: str) -> click.Command:
    """The ``export NAME IN OUT [KEY=VALUE ...]`` command of the registered format ``name``.

    Example::

        >>> format_command("shar").help
        'Lhotse Shar (audio and image bytes inside) + the NeMo sqa_as_conversation YAML ...'
    """
    from lhotse_triplets.export import get_exporter

    doc = (get_exporter(name).__doc__ or name).strip().splitlines()[0]

    @click.command(name, help=doc, short_help=doc, epilog=_KEYS_EPILOG)
    @click.argument("input_path", metavar="IN", type=click.Path(exists=True))
    @click.argument("output_dir", metavar="OUT", type=click.Path())
    @OVERRIDES
    @CONFIG
    @click.option("--overwrite", is_flag=True, help="Replace this format's earlier export in OUT.")
    @click.option(
        "--failed",
        "failed_path",
        type=click.Path(exists=True),
        help="A failed log (or folder of them) listed in the report.",
    )
    def command(
        input_path: str,
        output_dir: str,
        overrides: tuple[str, ...],
        config_file: str | None,
        overwrite: bool,
        failed_path: str | None,
    ) -> None:
        run_export(name, input_path, output_dir, overrides, config_file, overwrite, failed_path)

    return command


def run_export(
    name: str,
    input_path: str,
    output_dir: str,
    pairs: Sequence[str] = (),
    config_file: str | None = None,
    overwrite: bool = False,
    failed_path: str | None = None,
) -> None:
    """Export the cuts of ``input_path`` as the format ``name`` into ``output_dir`` and print
    what was written (the body of every ``export`` command).

    :raises ValueError: for an unknown key or value (naming it).
    """
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.export import get_exporter
    from lhotse_triplets.preflight import check_output_dir

    failures: list[Failure] = []
    options = command_options(
        pairs,
        config_file,
        overwrite=overwrite,
        failed_path=failed_path,
        settings={"source": str(input_path)},
        on_failure=failures.append,
    )
    check_output_dir(output_dir, subdirs=())
    result = get_exporter(name)(read_cuts(input_path), output_dir, options)
    click.echo(str(result))
    for failure in failures[:SHOWN_FAILURES]:
        click.echo(f"  failed: {failure.cut_id} ({failure.stage}): {failure.reason}")
    if len(failures) > SHOWN_FAILURES:
        click.echo(f"  ... and {len(failures) - SHOWN_FAILURES} more failures")


def command_options(
    pairs: Sequence[str],
    config_file: str | None = None,
    *,
    overwrite: bool = False,
    failed_path: str | None = None,
    **runtime: Any,
) -> "ExportOptions":
    """The :class:`~lhotse_triplets.export.ExportOptions` of an export command: the config
    file's ``export`` section, then the ``KEY=VALUE`` pairs, then the flags.

    :raises ValueError: for a pair that is not ``KEY=VALUE`` or an unknown key (naming it).

    Example::

        >>> command_options(["include_rejected=true", "weights.en=2"]).weights
        {'en': 2.0}
    """
    from lhotse_triplets.config import load_config, scoped_overrides
    from lhotse_triplets.errors import read_failures
    from lhotse_triplets.export import ExportOptions
    from lhotse_triplets.preflight import check_export

    cfg = load_config(config_file, scoped_overrides(pairs, "export"))
    check_export(cfg)
    options = ExportOptions.for_run(cfg, progress=True, **runtime)
    if overwrite:
        options.overwrite = True
    if failed_path is not None:
        options.failures = read_failures(failed_path)
    return options
