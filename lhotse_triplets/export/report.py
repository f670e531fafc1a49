"""A human-readable report of an exported set: ``report.md`` + ``report.html`` + PNG plots.

Counts kept/rejected per language, hours per language and voice, score distributions (one
histogram per score, one line per language), rejected by gate reason, failed by stage and
reason (from ``failed.jsonl`` when given).

Example::

    >>> paths = write_report(CutSet.from_jsonl_lazy("gate/cuts.000000.jsonl.gz"), "out/report")
    >>> paths["markdown"]
    'out/report/report.md'
"""

import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lhotse.cut import Cut
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure
from lhotse_triplets.export.common import cut_language, cut_voice
from lhotse_triplets.export.shar import check_export_path, is_rejected

#: Scores plotted, with their axis labels.
SCORES = {
    fields.SIMILARITY: "similarity (prompt vs ASR text)",
    fields.ERROR_RATE: "error rate (WER; CER for ja/zh)",
    fields.MOS: "MOS (predicted)",
}

Table = tuple[list[str], list[list[Any]]]


def collect(cuts: Iterable[Cut], failures: Iterable[Failure] = ()) -> dict[str, Any]:
    """The report's numbers from gated cuts (kept and rejected) and failures."""
    kept: Counter = Counter()
    rejected: Counter = Counter()
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    clips: Counter = Counter()
    reasons: Counter = Counter()
    scores: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in SCORES}
    for cut in cuts:
        language = cut_language(cut)
        custom = cut.custom or {}
        for name in SCORES:
            value = custom.get(name)
            if isinstance(value, (int, float)):
                scores[name][language].append(float(value))
        if is_rejected(cut):
            rejected[language] += 1
            for reason in str(custom[fields.REJECT_REASON]).split(","):
                reasons[reason.strip()] += 1
            continue
        kept[language] += 1
        key = (language, cut_voice(cut))
        seconds[key] += cut.duration
        clips[key] += 1
    failed = Counter((f.stage, f.reason) for f in failures)
    return {
        "kept": kept,
        "rejected": rejected,
        "seconds": seconds,
        "clips": clips,
        "reasons": reasons,
        "scores": scores,
        "failed": failed,
    }


def tables(data: dict[str, Any]) -> dict[str, Table]:
    """Section title -> (header, rows)."""
    languages = sorted(set(data["kept"]) | set(data["rejected"]))
    out: dict[str, Table] = {}
    out["Clips per language"] = (
        ["language", "kept", "rejected", "kept %", "hours kept"],
        [
            [
                lang,
                data["kept"][lang],
                data["rejected"][lang],
                _percent(data["kept"][lang], data["kept"][lang] + data["rejected"][lang]),
                f"{sum(s for (l2, _), s in data['seconds'].items() if l2 == lang) / 3600:.4f}",
            ]
            for lang in languages
        ],
    )
    out["Hours per language and voice (kept)"] = (
        ["language", "voice", "clips", "hours", "minutes"],
        [
            [lang, voice, data["clips"][(lang, voice)], f"{s / 3600:.4f}", f"{s / 60:.2f}"]
            for (lang, voice), s in sorted(data["seconds"].items())
        ],
    )
    out["Score means per language (kept and rejected)"] = (
        ["language", *SCORES],
        [[lang] + [_mean(data["scores"][name].get(lang)) for name in SCORES] for lang in languages],
    )
    out["Rejected by reason"] = (
        ["reason", "clips"],
        [[r, n] for r, n in data["reasons"].most_common()],
    )
    out["Failed by stage and reason"] = (
        ["stage", "reason", "items"],
        [[stage, reason, n] for (stage, reason), n in data["failed"].most_common()],
    )
    return out


def write_report(
    cuts: Iterable[Cut],
    output_dir: Pathlike,
    *,
    failures: Iterable[Failure] = (),
    title: str = "Export report",
) -> dict[str, str]:
    """Write ``report.md``, ``report.html`` and ``plots/<score>.png`` into ``output_dir``.

    :param cuts: gated cuts, kept *and* rejected (the rejected ones are counted, not exported).
    :param failures: failed items (e.g. :func:`read_failures` of a run's ``failed.jsonl``).
    :return: ``markdown``, ``html`` and one ``plot_<score>`` entry per plot written.

    Example::

        >>> write_report(cuts, "out/report", failures=read_failures("out/failed.jsonl"))
    """
    out = check_export_path(output_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    data = collect(cuts, failures)
    sections = tables(data)
    plots = _plots(data, out / "plots")
    total_kept, total_rej = sum(data["kept"].values()), sum(data["rejected"].values())
    hours = sum(data["seconds"].values()) / 3600
    intro = (
        f"{total_kept} clips kept ({hours:.4f} h), {total_rej} rejected, "
        f"{sum(data['failed'].values())} failed."
    )
    md = [f"# {title}", "", intro, ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>"]
    for name, (header, rows) in sections.items():
        md += [f"## {name}", "", *_md_table(header, rows), ""]
        body += [f"<h2>{html.escape(name)}</h2>", _html_table(header, rows)]
    if plots:
        md += ["## Score distributions", ""]
        body.append("<h2>Score distributions</h2>")
        for name, path in plots.items():
            rel = f"plots/{Path(path).name}"
            md += [f"![{name}]({rel})", ""]
            body.append(f'<img src="{rel}" alt="{html.escape(name)}" width="480">')
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}</style>"
        f"</head><body>{''.join(body)}</body></html>"
    )
    (out / "report.html").write_text(page, encoding="utf-8")
    result = {"markdown": str(out / "report.md"), "html": str(out / "report.html")}
    result.update({f"plot_{name}": path for name, path in plots.items()})
    return result


def read_failures(path: Pathlike) -> list[Failure]:
    """The failures of a ``failed.jsonl`` (``{"cut_id", "stage", "reason"}`` per line)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out.append(Failure(d.get("cut_id", "?"), d.get("stage", "?"), d.get("reason", "?")))
    return out


def _plots(data: dict[str, Any], directory: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    for name, label in SCORES.items():
        per_language = {k: v for k, v in data["scores"][name].items() if v}
        if not per_language:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for language, values in sorted(per_language.items()):
            ax.hist(values, bins=20, alpha=0.5, label=f"{language} (n={len(values)})")
        ax.set_xlabel(label)
        ax.set_ylabel("clips")
        ax.legend()
        fig.tight_layout()
        path = directory / f"{name}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        out[name] = str(path)
    return out


def _percent(part: int, total: int) -> str:
    return f"{100 * part / max(1, total):.1f}"


def _mean(values: list[float] | None) -> str:
    return f"{sum(values) / len(values):.3f}" if values else "-"


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def _html_table(header: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
