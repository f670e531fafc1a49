"""``lhotse-triplets voices``: list the voice catalog (presets and cloning references)."""

import click


@click.command(context_settings=dict(show_default=True))
@click.option("-e", "--engine", "engines", multiple=True, help="TTS engine(s) (default: all).")
@click.option("-l", "--language", "languages", multiple=True, help="ISO 639-1 code(s).")
@click.option(
    "-c",
    "--catalog",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Voice catalog YAML (references: {name: {audio, text, language}}, engines: {...}).",
)
def voices(engines: tuple[str, ...], languages: tuple[str, ...], catalog: str | None) -> None:
    """List the voices per engine and language: preset voices and cloning references."""
    from tabulate import tabulate

    from lhotse_triplets.backends.registry import available
    from lhotse_triplets.config import language_problem
    from lhotse_triplets.voices import VoiceCatalog

    for language in languages:
        if (problem := language_problem(language)) is not None:
            raise click.BadParameter(f"{language!r}: {problem}", param_hint="--language")

    for engine in engines:
        if engine not in available("tts"):
            raise click.BadParameter(
                f"unknown TTS engine {engine!r}; known: {', '.join(available('tts'))}",
                param_hint="--engine",
            )
    cat = VoiceCatalog.from_yaml(catalog) if catalog else VoiceCatalog()
    rows = cat.rows(engines or None, languages or None)
    click.echo(tabulate(rows, headers="keys", tablefmt="github") if rows else "(no voices)")
    n_engines = len({r["engine"] for r in rows})
    n_refs = len({r["voice"] for r in rows if r["kind"] == "reference"})
    click.echo(f"\n{len(rows)} voices, {n_engines} engines, {n_refs} cloning references")
