"""``lhotse-triplets validate PATH``: check a manifest, a stage directory or any export."""

import json

import click

from lhotse_triplets.validate import TOLERANCE


@click.command(context_settings=dict(show_default=True))
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--sampling-rate",
    type=click.IntRange(min=1),
    default=None,
    help="Rate every audio must have (default: what the export declares, else 16000 for "
    "dialogue data, else only 'stored at the declared rate').",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=TOLERANCE,
    help="Seconds an audio's length may differ from its declared duration.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for scripts).")
@click.option(
    "--max-items",
    type=click.IntRange(min=1),
    default=None,
    help="Check at most N items per export.",
)
@click.option("--progress/--no-progress", default=True, help="Progress bars (on stderr).")
def validate(
    path: str,
    sampling_rate: int | None,
    tolerance: float,
    as_json: bool,
    max_items: int | None,
    progress: bool,
) -> None:
    """Check PATH (manifest, stage directory, export, or export folder) before training on it;
    exit status 1 on any failure, listing the offending ids (first 20 + count)."""
    from lhotse_triplets.validate import validate as run_validate

    report = run_validate(path, sampling_rate, tolerance, max_items, progress=progress)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else str(report))
    if not report.ok:
        raise SystemExit(1)
