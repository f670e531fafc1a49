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

#: ``--engine NAME``: the executor (same as the override ``engine.name=NAME``).
ENGINE = click.option(
    "--engine",
    "engine",
    default=None,
    metavar="NAME",
    help="Executor that runs the stages: local (worker processes here) or ray (a Ray cluster; "
    "see engine.address, engine.streaming). Same as engine.name=NAME.",
)


def with_engine(overrides: tuple[str, ...], engine: str | None) -> tuple[str, ...]:
    """``overrides`` with ``engine.name=ENGINE`` first (a later ``engine.name=`` wins)."""
    return overrides if engine is None else (f"engine.name={engine}", *overrides)
