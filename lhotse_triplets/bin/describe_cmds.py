"""``lhotse-triplets describe PATH``: counts, hours, percentiles, kept / rejected / failed."""

import json

import click


@click.command(context_settings=dict(show_default=True))
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON (for scripts).")
def describe(path: str, as_json: bool) -> None:
    """Describe PATH (run folder, stage directory, manifest, export or export folder, bench
    run): counts and hours per language / voice / engine, duration and score percentiles,
    kept / rejected by reason / failed by reason."""
    from lhotse_triplets.describe import describe as run_describe

    description = run_describe(path)
    click.echo(json.dumps(description.to_dict(), indent=2) if as_json else str(description))
