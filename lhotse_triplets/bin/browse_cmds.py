"""``lhotse-triplets browse PATH``: see and hear any output of this library in a local page."""

import click


@click.command(context_settings=dict(show_default=True))
@click.argument("path", type=click.Path(exists=True))
@click.option("--host", default="127.0.0.1", help="Address to bind (a warning when not loopback).")
@click.option("--port", default=8765, type=int, help="Port to listen on (0: any free port).")
@click.option(
    "--index",
    "index_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite index file [default: ~/.cache/lhotse-triplets/browse/<hash>.sqlite].",
)
@click.option("--rebuild", is_flag=True, help="Rebuild the index even if PATH has not changed.")
@click.option("--no-open", is_flag=True, help="Do not open a web browser.")
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    help="Another name the page may be reached by (e.g. this machine's, with --host 0.0.0.0).",
)
def browse(
    path: str,
    host: str,
    port: int,
    index_path: str | None,
    rebuild: bool,
    no_open: bool,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Browse PATH (a stage dir, manifest, run, export, bench run) in a local web page.

    One row per clip or turn: image, audio, spoken / source / ASR text with the misheard words
    marked, answer, scores, kept or rejected and why; filters, sort, search, threads.
    """
    from lhotse_triplets.browse.server import serve

    serve(
        path,
        host=host,
        port=port,
        index_path=index_path,
        rebuild=rebuild,
        open_browser=not no_open,
        allowed_hosts=allowed_hosts,
    )
