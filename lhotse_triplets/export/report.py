"""A human-readable report of an exported set: ``report.md`` + ``report.html`` + PNG plots.

Counts kept/rejected per language, hours per language and voice, score means and distributions
(one histogram per score, one bar set per language), rejected by gate reason, failed by stage and
reason (``options.failures``, e.g. :func:`~lhotse_triplets.errors.read_failures` of a run). The
numbers come from :func:`~lhotse_triplets.summary.collect_stats`, the same as the run summary's;
this module only renders them. With no clip kept the report is still written (it lists what was
rejected and failed) and the result says so (``details["empty"]``, a warning).

``report.html`` is one self-contained file (plots inline as ``data:`` URIs) that a team can
attach to a review. With ``options.samples`` = N it also holds a gallery
(:mod:`~lhotse_triplets.export.gallery`): N kept clips per language and N rejected clips per
reject reason, each with its image, audio, texts and scores; the cuts are sampled as they stream
past, never all held.

Example::

    >>> result = export_report(read_cuts("out/gate"), "out/export", failures=failures)
    >>> result.paths
    {'report': 'out/export/report/report.md'}
    >>> export_report(read_cuts("out/gate"), "out/export", samples=3, overwrite=True)
"""

import html
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lhotse.cut import Cut
from tabulate import tabulate

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure
from lhotse_triplets.export.base import ExportOptions, ExportResult, exporter
from lhotse_triplets.export.common import AtomicOutput, export_file, layout
from lhotse_triplets.export.gallery import Gallery, GallerySampler, data_uri, render_gallery
from lhotse_triplets.paths import safe_name
from lhotse_triplets.summary import CutStats, collect_stats

FORMAT = "report"
#: The report folder inside the export directory.
REPORT_DIR = "report"
PLOTS_DIR = "plots"
TITLE = "Export report"

#: Axis labels of the score plots (other scores are labelled with their name).
SCORE_LABELS = {
    fields.SIMILARITY: "similarity (prompt vs ASR text)",
    fields.ERROR_RATE: "error rate (WER; CER for ja/zh)",
    fields.MOS: "MOS (predicted)",
}

#: One section of the report: title -> (header, rows).
Table = tuple[list[str], list[list[Any]]]


def report_tables(stats: CutStats, failures: Iterable[Failure] = ()) -> dict[str, Table]:
    """The report's sections, title -> (header, rows), from the statistics of gated cuts.

    Example::

        >>> report_tables(collect_stats(cuts))["Clips per language"][1][0]
        ['en', 3, 1, '75.0', '0.0012']
    """
    scores = [name for name in fields.SCORES if any(stats.scores[name].values())]
    failed = Counter((f.stage, f.reason) for f in failures)
    return {
        "Clips per language": (
            ["language", "kept", "rejected", "kept %", "hours kept"],
            [
                [
                    lang,
                    stats.kept[lang],
                    stats.rejected[lang],
                    _percent(stats.kept[lang], stats.kept[lang] + stats.rejected[lang]),
                    f"{stats.hours(lang):.4f}",
                ]
                for lang in stats.languages
            ],
        ),
        "Hours per language and voice (kept)": (
            ["language", "voice", "clips", "hours", "minutes"],
            [
                [lang, voice, stats.clips[(lang, voice)], f"{s / 3600:.4f}", f"{s / 60:.2f}"]
                for (lang, voice), s in sorted(stats.seconds.items())
            ],
        ),
        "Score means per language (kept and rejected)": (
            ["language", *scores],
            [
                [lang] + [_mean(stats.mean(name, lang)) for name in scores]
                for lang in stats.languages
            ],
        ),
        "Rejected by reason": (
            ["reason", "clips"],
            [[r, n] for r, n in stats.reasons.most_common()],
        ),
        "Failed by stage and reason": (
            ["stage", "reason", "items"],
            [[stage, reason, n] for (stage, reason), n in failed.most_common()],
        ),
    }


@exporter(FORMAT)
def export_report(cuts: Iterable[Cut], output_dir: Path, options: ExportOptions) -> ExportResult:
    """Markdown + HTML report: counts, hours per language/voice, score plots, rejections.

    Pass gated cuts, kept *and* rejected (the rejected ones are counted, not exported). Writes
    ``OUT/report/`` (``report.md``, ``report.html``, ``plots/<score>.png``) atomically; the HTML
    is self-contained. Options used: ``failures`` (listed by stage and reason), ``samples``
    (gallery: clips per language and rejected clips per reason in the HTML; 0: none),
    ``overwrite``, ``progress``.

    :return: paths ``report`` (the Markdown file); details ``html``, ``plots`` (score ->
        PNG path) and ``gallery`` (cards per section: ``{"kept": {language: n}, "rejected":
        {reason: n}}``); counts: kept clips as written, rejected and failed.

    Example::

        >>> export_report(cuts, "out/export", failures=read_failures("out")).paths["report"]
        'out/export/report/report.md'
    """
    target = AtomicOutput(
        output_dir / REPORT_DIR,
        overwrite=options.overwrite,
        replaceable=layout("report.md", "report.html", PLOTS_DIR),
        format=FORMAT,
    )
    sampler = GallerySampler(options.samples or 0)
    stats = collect_stats(sampler.watch(cuts))
    gallery = sampler.gallery()
    sections = report_tables(stats, options.failures)
    intro = (
        f"{stats.num_kept} clips kept ({stats.hours():.4f} h), {stats.num_rejected} rejected, "
        f"{len(options.failures)} failed."
    )
    with target as tmp:
        plots = _plots(stats, export_file(tmp, PLOTS_DIR))
        cards = _gallery_html(gallery, options)
        markdown = _markdown(intro, sections, plots, _gallery_line(gallery, options.samples))
        page = _html(intro, sections, plots, cards)
        export_file(tmp, "report.md").write_text(markdown, encoding="utf-8")
        export_file(tmp, "report.html").write_text(page, encoding="utf-8")
    result = ExportResult(FORMAT, paths={FORMAT: str(target.path / "report.md")})
    result.counts.written, result.counts.rejected = stats.num_kept, stats.num_rejected
    result.counts.failed = len(options.failures)
    result.counts.seconds = stats.hours() * 3600
    result.counts.per_language = dict(stats.kept)
    result.details.update(
        html=str(target.path / "report.html"),
        plots={name: str(target.path / PLOTS_DIR / Path(p).name) for name, p in plots.items()},
        gallery=gallery.counts(),
    )
    if not stats.num_kept:
        result.say_empty("clips kept", "the report lists what was rejected and failed")
    return result


def _gallery_html(gallery: Gallery, options: ExportOptions) -> str:
    if not options.samples:
        return ""
    return render_gallery(gallery, options.on_failure, progress=options.progress)


def _gallery_line(gallery: Gallery, samples: int | None) -> str | None:
    """The Markdown's line about the gallery (``None`` without one)."""
    if not samples:
        return None
    counts = gallery.counts()
    return (
        f"{len(gallery)} sample clips ({sum(counts['kept'].values())} kept cards, "
        f"{sum(counts['rejected'].values())} rejected cards; up to {samples} per language and "
        "per reject reason) are in the gallery of report.html."
    )


def _markdown(
    intro: str, sections: dict[str, Table], plots: dict[str, str], gallery: str | None = None
) -> str:
    md = [f"# {TITLE}", "", intro, ""]
    if gallery:
        md += [gallery, ""]
    for name, (header, rows) in sections.items():
        cells = [[str(v).replace("|", "\\|") for v in row] for row in rows]
        table = tabulate(cells, headers=header, tablefmt="github", disable_numparse=True)
        md += [f"## {name}", "", table if rows else "(none)", ""]
    if plots:
        md += ["## Score distributions", ""]
        md += [f"![{name}]({PLOTS_DIR}/{Path(path).name})\n" for name, path in plots.items()]
    return "\n".join(md)


def _html(intro: str, sections: dict[str, Table], plots: dict[str, str], gallery: str = "") -> str:
    """The page: tables, the plots inline (``data:`` URIs: one file to attach), the gallery."""
    body = [f"<h1>{html.escape(TITLE)}</h1>", f"<p>{html.escape(intro)}</p>"]
    for name, (header, rows) in sections.items():
        table = tabulate(rows, headers=header, tablefmt="html", disable_numparse=True)
        body += [f"<h2>{html.escape(name)}</h2>", table if rows else "<p>(none)</p>"]
    if plots:
        body.append("<h2>Score distributions</h2>")
        body += [
            f'<img src="{_png_uri(path)}" alt="{html.escape(name)}" width="480">'
            for name, path in plots.items()
        ]
    body.append(gallery)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(TITLE)}</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}</style>"
        f"</head><body>{''.join(body)}</body></html>"
    )


def _png_uri(path: str) -> str:
    return data_uri(Path(path).read_bytes(), "image/png")


def _plots(stats: CutStats, directory: Path) -> dict[str, str]:
    """One histogram per score that has values (one series per language): score -> PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    for name in fields.SCORES:
        per_language = {k: v for k, v in stats.scores[name].items() if v}
        if not per_language:
            continue
        directory.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for language, values in sorted(per_language.items()):
            ax.hist(values, bins=20, alpha=0.5, label=f"{language} (n={len(values)})")
        ax.set_xlabel(SCORE_LABELS.get(name, name))
        ax.set_ylabel("clips")
        ax.legend()
        fig.tight_layout()
        path = export_file(directory, f"{safe_name(name)}.png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        out[name] = str(path)
    return out


def _percent(part: int, total: int) -> str:
    return f"{100 * part / max(1, total):.1f}"


def _mean(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"
