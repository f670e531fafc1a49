"""Benchmark results: one row per clip, tables per language, plots.

``write_report(DIR)`` reads the scored clips of a benchmark directory, decides good/bad with the
gate (a calibrated gate when the config or the caller names one, else the config thresholds)
and writes::

    DIR/clips.csv, DIR/clips.jsonl     one row per clip (scores, duration, chars/s, RTF, verdict)
    DIR/failed.jsonl                   every clip that failed to synthesize or score
    DIR/tables/<lang>.md               per engine and per engine × voice, best first
    DIR/tables/<lang>_engines.csv, <lang>_voices.csv
    DIR/report.md                      all languages
    DIR/plots/good_ratio.png           good ratio per engine per language
    DIR/plots/similarity_vs_mos.png    one point per clip, coloured by engine

The good ratio counts failed clips as not good: ``good / (clips + failed)``. RTF is synthesis
seconds per second of audio.
"""

import csv
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from lhotse_triplets import fields
from lhotse_triplets.engine import read_cuts
from lhotse_triplets.errors import read_failures
from lhotse_triplets.transforms.gate import Gate, clip_features

#: Columns of ``clips.csv``, in order.
CLIP_COLUMNS = [
    "cut_id",
    "engine",
    "language",
    "voice",
    "prompt_id",
    "text",
    fields.ASR_TEXT,
    *fields.SCORES,
    "duration",
    "chars_per_second",
    fields.SYNTHESIS_SECONDS,
    "rtf",
    "good",
    fields.REJECT_REASON,
    "audio",
]

#: Metric columns of the tables: (column, clip field, digits).
METRICS = [
    ("similarity", fields.SIMILARITY, 3),
    ("mos", fields.MOS, 2),
    ("wer", fields.WER, 3),
    ("cer", fields.CER, 3),
    ("duration", "duration", 2),
    ("chars_per_second", "chars_per_second", 1),
]


def _cells(bench_dir: Path) -> list[tuple[str, str]]:
    """``(engine, language)`` of every scored cell, sorted."""
    root = bench_dir / "score"
    if not root.is_dir():
        raise FileNotFoundError(f"{bench_dir} holds no scored clips (run `bench run` first)")
    return sorted(
        (e.name, lang.name)
        for e in root.iterdir()
        if e.is_dir()
        for lang in e.iterdir()
        if lang.is_dir()
    )


def _grid(bench_dir: Path, engine: str, language: str) -> dict:
    path = bench_dir / "prompts" / engine / language / "grid.json"
    return json.loads(path.read_text()) if path.exists() else {"assignments": {}}


def load_gate(bench_dir: str | Path, calibrated: str | Path | None = None) -> Gate:
    """The gate that decides "good": ``calibrated`` if given, else the run's config gate."""
    from lhotse_triplets.config import BenchConfig, load_config

    cfg_path = Path(bench_dir) / "config.yaml"
    cfg = load_config(cfg_path if cfg_path.exists() else None, schema=BenchConfig)
    if calibrated is not None:
        cfg.gate.calibrated = str(calibrated)
    return Gate.from_config(cfg)


def collect_clips(bench_dir: str | Path, gate: Gate | None = None) -> tuple[list[dict], list[dict]]:
    """Clip rows (see :data:`CLIP_COLUMNS`) and failure rows of a benchmark directory.

    :param gate: decides ``good``; default :func:`load_gate` (the run's config).

    Example::

        clips, failures = collect_clips("bench-out")
    """
    bench_dir = Path(bench_dir)
    gate = gate or load_gate(bench_dir)
    root = bench_dir.resolve()
    clips, failures = [], []
    for engine, language in _cells(bench_dir):
        assignments = _grid(bench_dir, engine, language)["assignments"]
        score_dir = bench_dir / "score" / engine / language
        for cut in read_cuts(score_dir) if any(score_dir.glob("cuts.*.jsonl.gz")) else []:
            clips.append(_clip_row(cut, engine, gate, root))
        for stage_dir in (bench_dir / "synthesize" / engine / language, score_dir):
            for failure in read_failures(stage_dir):
                prompt_id, voice = _split_id(failure.cut_id, assignments)
                failures.append(
                    {
                        "cut_id": failure.cut_id,
                        "engine": engine,
                        "language": language,
                        "voice": voice,
                        "prompt_id": prompt_id,
                        "stage": failure.stage,
                        "reason": failure.reason,
                    }
                )
    return clips, failures


def _split_id(cut_id: str, assignments: dict[str, list[str]]) -> tuple[str, str]:
    """``(prompt cut id, voice)`` of a clip id ``{prompt cut id}-{voice}``."""
    for prompt, voices in assignments.items():
        for voice in voices:
            if cut_id == f"{prompt}-{voice}":
                return prompt, voice
    return cut_id, "?"


def _clip_row(cut, engine: str, gate: Gate, root: Path) -> dict:
    custom = cut.custom or {}
    sup = cut.supervisions[0]
    reasons, p = gate.verdict(cut)
    seconds = custom.get(fields.SYNTHESIS_SECONDS)
    audio = cut.recording.sources[0].source if cut.recording is not None else ""
    try:
        audio = str(Path(audio).resolve().relative_to(root))
    except ValueError:
        pass
    cps = clip_features(cut, ["chars_per_second"])["chars_per_second"]
    row = {
        "cut_id": cut.id,
        "engine": engine,
        "language": sup.language,
        "voice": sup.speaker,
        "prompt_id": custom.get(fields.CONVERSATION_ID),
        "text": sup.text,
        fields.ASR_TEXT: custom.get(fields.ASR_TEXT),
        fields.SIMILARITY: custom.get(fields.SIMILARITY),
        fields.WER: custom.get(fields.WER),
        fields.CER: custom.get(fields.CER),
        fields.ERROR_RATE: custom.get(fields.ERROR_RATE),
        fields.MOS: custom.get(fields.MOS),
        "duration": round(cut.duration, 3),
        "chars_per_second": None if cps is None else round(cps, 2),
        fields.SYNTHESIS_SECONDS: seconds,
        "rtf": None if seconds is None or not cut.duration else round(seconds / cut.duration, 4),
        "good": 0 if reasons else 1,
        fields.REJECT_REASON: ",".join(reasons) or None,
        fields.GATE_SCORE: None if p is None else round(p, 4),
        "audio": audio,
    }
    # NaN/inf are not JSON (the labelling page parses clips.jsonl rows) and mean "no score".
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else None


def aggregate(clips: Sequence[dict], failures: Sequence[dict], by: Sequence[str]) -> list[dict]:
    """One row per group of ``by`` columns: counts, good ratio, mean metrics, RTF; best first
    (good ratio, then MOS)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    failed: dict[tuple, int] = defaultdict(int)
    for row in clips:
        groups[tuple(row[k] for k in by)].append(row)
    for row in failures:
        key = tuple(row[k] for k in by)
        failed[key] += 1
        groups.setdefault(key, [])
    out = []
    for key, rows in groups.items():
        good = sum(r["good"] for r in rows)
        attempts = len(rows) + failed[key]
        synth = [r[fields.SYNTHESIS_SECONDS] for r in rows if r[fields.SYNTHESIS_SECONDS]]
        audio_seconds = sum(r["duration"] for r in rows if r[fields.SYNTHESIS_SECONDS])
        agg = dict(zip(by, key))
        agg.update(
            {
                "good_ratio": good / attempts if attempts else 0.0,
                "good": good,
                "clips": len(rows),
                "failed": failed[key],
            }
        )
        for column, name, _ in METRICS:
            agg[column] = _mean(r[name] for r in rows)
        agg["rtf"] = sum(synth) / audio_seconds if audio_seconds else None
        out.append(agg)
    out.sort(key=lambda a: (-a["good_ratio"], -(a["mos"] or 0.0), tuple(str(a[k]) for k in by)))
    return out


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def format_table(rows: Sequence[dict], by: Sequence[str]) -> str:
    """A markdown table of :func:`aggregate` rows."""
    headers = [*by, "good ratio", "good", "clips", "failed"] + [m[0] for m in METRICS] + ["RTF"]
    body = [
        [*(r[k] for k in by), _fmt(r["good_ratio"], 3), r["good"], r["clips"], r["failed"]]
        + [_fmt(r[c], d) for c, _, d in METRICS]
        + [_fmt(r["rtf"], 3)]
        for r in rows
    ]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def _write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    tmp = path.with_name(f".tmp.{path.name}")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp.{path.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def language_tables(clips: Sequence[dict], failures: Sequence[dict]) -> dict[str, dict]:
    """language -> ``{"engines": rows, "voices": rows}`` (:func:`aggregate` rows)."""
    languages = sorted({r["language"] for r in [*clips, *failures]})
    out = {}
    for lang in languages:
        c = [r for r in clips if r["language"] == lang]
        f = [r for r in failures if r["language"] == lang]
        out[lang] = {
            "engines": aggregate(c, f, ["engine"]),
            "voices": aggregate(c, f, ["engine", "voice"]),
        }
    return out


def write_report(
    bench_dir: str | Path,
    *,
    cfg: Any = None,
    calibrated: str | Path | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Write clips, failures, tables and plots of a benchmark directory (see module doc).

    :param calibrated: a gate JSON deciding "good" (default: the run's config gate).
    :return: ``{"clips": n, "failed": n, "tables": {lang: ...}, "paths": {...}, "gate": ...}``.

    Example::

        info = write_report("bench-out", calibrated="bench-out/gate.json")
        print(info["markdown"])
    """
    bench_dir = Path(bench_dir)
    gate = load_gate(bench_dir, calibrated)
    clips, failures = collect_clips(bench_dir, gate)
    _write_csv(bench_dir / "clips.csv", clips, CLIP_COLUMNS)
    _write_text(
        bench_dir / "clips.jsonl",
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in clips),
    )
    _write_text(
        bench_dir / "failed.jsonl",
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in failures),
    )
    tables_dir = bench_dir / "tables"
    tables_dir.mkdir(exist_ok=True)
    tables = language_tables(clips, failures)
    gate_name = "calibrated gate" if gate.calibrated is not None else "config thresholds"
    sections = [f"Good = kept by the {gate_name}; good ratio = good / (clips + failed).\n"]
    columns_e = ["engine", "good_ratio", "good", "clips", "failed"] + [m[0] for m in METRICS]
    for lang, t in tables.items():
        md = (
            f"### {lang}\n\nper engine\n\n{format_table(t['engines'], ['engine'])}\n\n"
            f"per engine × voice\n\n{format_table(t['voices'], ['engine', 'voice'])}\n"
        )
        _write_text(tables_dir / f"{lang}.md", md)
        _write_csv(tables_dir / f"{lang}_engines.csv", t["engines"], [*columns_e, "rtf"])
        _write_csv(
            tables_dir / f"{lang}_voices.csv",
            t["voices"],
            ["engine", "voice", *columns_e[1:], "rtf"],
        )
        sections.append(md)
    markdown = "\n".join(sections)
    _write_text(bench_dir / "report.md", markdown)
    paths = {
        "clips": str(bench_dir / "clips.csv"),
        "report": str(bench_dir / "report.md"),
        "failed": str(bench_dir / "failed.jsonl"),
    }
    if plots and clips:
        paths.update(write_plots(bench_dir / "plots", clips, tables))
    return {
        "clips": len(clips),
        "failed": len(failures),
        "good": sum(r["good"] for r in clips),
        "gate": gate_name,
        "tables": tables,
        "markdown": markdown,
        "paths": paths,
    }


def write_plots(plot_dir: Path, clips: Sequence[dict], tables: dict[str, dict]) -> dict[str, str]:
    """``good_ratio.png`` (grouped bars) and ``similarity_vs_mos.png`` (scatter by engine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    languages = sorted(tables)
    engines = sorted({r["engine"] for t in tables.values() for r in t["engines"]})
    colours = {e: plt.get_cmap("tab10")(i % 10) for i, e in enumerate(engines)}
    width = 0.8 / max(1, len(engines))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(languages)), 4))
    for i, engine in enumerate(engines):
        xs, ys = [], []
        for j, lang in enumerate(languages):
            row = next((r for r in tables[lang]["engines"] if r["engine"] == engine), None)
            if row is not None:
                xs.append(j + (i - (len(engines) - 1) / 2) * width)
                ys.append(row["good_ratio"])
        ax.bar(xs, ys, width=width, label=engine, color=colours[engine])
    ax.set_xticks(range(len(languages)), languages)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("good ratio")
    good_path = _save(fig, ax, "Good ratio per engine and language", plot_dir / "good_ratio.png")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for engine in engines:
        pts = [
            (r[fields.SIMILARITY], r[fields.MOS])
            for r in clips
            if r["engine"] == engine and r[fields.SIMILARITY] is not None and r[fields.MOS]
        ]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, s=10, alpha=0.6, label=engine, color=colours[engine])
    ax.set_xlabel("similarity (ASR transcript vs prompt)")
    ax.set_ylabel("MOS")
    scatter_path = _save(fig, ax, "Similarity vs MOS per clip", plot_dir / "similarity_vs_mos.png")
    return {"good_ratio_plot": str(good_path), "scatter_plot": str(scatter_path)}


def _save(fig: Any, ax: Any, title: str, path: Path) -> Path:
    """Title and legend ``ax``, write ``fig`` as a PNG at ``path`` and close it."""
    import matplotlib.pyplot as plt

    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
