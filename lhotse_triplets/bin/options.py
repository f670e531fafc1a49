"""Options several commands share: a run configuration to start from, and ``KEY=VALUE`` pairs
over its schema."""

import click

#: ``-c/--config RUN.yaml``: the configuration the command's keys are read from.
CONFIG = click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A run configuration (YAML) to start from (KEY=VALUE pairs override it).",
)

#: ``KEY=VALUE ...`` (dotted config keys; values parsed as YAML).
OVERRIDES = click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
