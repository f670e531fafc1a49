"""The per-speaker report of a speaker set: ``report.md`` plus three PNG figures.

For the team preparing the set, never part of an export: it names clips by their **file name
only** (no folders), so it can be shared without the layout of the disk it was made on.

- ``report.md``: an overview table (one row per speaker), then one table per speaker: clips kept,
  minutes, average/shortest/longest duration, train/valid sizes, clips excluded by reason, and
  the medoid (file name and transcript);
- ``durations.png``: a duration histogram per speaker (one panel each), with the 1 s / 20 s
  bounds of index-tts-lora's training marked;
- ``splits.png``: clips per split and clips excluded by reason, per speaker (bar charts);
- ``embeddings.png``: a 2-D PCA projection of every kept clip's speaker embedding, coloured by
  speaker, each speaker's medoid marked with a star.

Every file is written to a hidden temporary name and renamed into place; the same input gives
the same bytes.

Example::

    path = write_speaker_report(
        [{"speaker": "anna", "durations": [2.5, 3.1], "train": 1, "valid": 1,
          "excluded": {"too_short": 2}, "medoid": {"audio": "/data/anna/01.wav",
          "text": "Hello there.", "index": 0}, "embeddings": np.zeros((2, 256))}],
        Path("out/speakers"),
    )  # out/speakers/report.md (+ durations.png, splits.png, embeddings.png)
"""

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
from tabulate import tabulate

from lhotse_triplets.recipes.speakers.files import atomic_path

REPORT_NAME = "report.md"
DURATIONS_PNG = "durations.png"
SPLITS_PNG = "splits.png"
EMBEDDINGS_PNG = "embeddings.png"
#: Clip length bounds of index-tts-lora's training (it drops clips outside them), in seconds.
TRAINING_BOUNDS = (1.0, 20.0)
#: Longest transcript shown for a medoid (characters).
MAX_TRANSCRIPT_CHARS = 200
_DPI = 90


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary name next to ``path``, then rename it to ``path``
    (:func:`~.files.atomic_path`): a failed write (full disk) leaves the previous file whole and
    no stray file."""
    with atomic_path(Path(path)) as tmp:
        write(tmp)
    return Path(path)


def write_speaker_report(speakers: Sequence[Mapping[str, Any]], out_dir: Path) -> Path:
    """Write ``report.md`` and its PNG figures into ``out_dir``; return the markdown's path.

    :param speakers: one dict per speaker, in the order shown: ``speaker`` (name),
        ``durations`` (seconds of the kept clips), ``train`` and ``valid`` (clip counts),
        ``excluded`` (reason code -> clips), ``medoid`` (``{"audio", "text", "index"}``, the
        index into the kept clips; ``None`` when no clip was kept) and ``embeddings``
        (``(N_kept, D)``; ``None`` or empty when no clip was kept).
    :raises OSError: when ``out_dir`` or a file in it cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [_normalised(s) for s in speakers]
    figures = {
        "Durations": _plot_durations(rows, out_dir / DURATIONS_PNG),
        "Clips per split and excluded by reason": _plot_splits(rows, out_dir / SPLITS_PNG),
        "Speaker embeddings (PCA)": _plot_embeddings(rows, out_dir / EMBEDDINGS_PNG),
    }
    markdown = _markdown(rows, figures)
    return write_atomic(out_dir / REPORT_NAME, lambda tmp: tmp.write_text(markdown, "utf-8"))


def _normalised(speaker: Mapping[str, Any]) -> dict[str, Any]:
    """One speaker's entry with every field present and typed (empty when nothing was kept)."""
    durations = [float(d) for d in speaker.get("durations") or []]
    return {
        "speaker": str(speaker["speaker"]),
        "durations": durations,
        "train": int(speaker.get("train") or 0),
        "valid": int(speaker.get("valid") or 0),
        "excluded": {str(k): int(v) for k, v in sorted((speaker.get("excluded") or {}).items())},
        "medoid": dict(speaker["medoid"]) if speaker.get("medoid") else None,
        "embeddings": _matrix(speaker.get("embeddings"), len(durations)),
    }


def _matrix(embeddings: object, clips: int) -> np.ndarray:
    """Embeddings as a float ``(N, D)`` array; a 1-D array is one clip's embedding when one clip
    was kept, else one value per clip; ``None`` or empty: ``(0, 0)``."""
    array = np.asarray([] if embeddings is None else embeddings, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 0))
    if array.ndim == 1:
        return array.reshape(1, -1) if clips == 1 else array.reshape(-1, 1)
    return array.reshape(array.shape[0], -1)


def _file_name(audio: object) -> str:
    """The file name of a clip path, whichever separators it was written with."""
    text = str(audio)
    return PureWindowsPath(text).name if "\\" in text else PurePosixPath(text).name


def _cell(text: object, limit: int | None = None) -> str:
    """``text`` fit for one markdown table cell (one line, ``|`` escaped, cut to ``limit``)."""
    text = " ".join(str(text).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _medoid_cells(medoid: Mapping[str, Any] | None) -> tuple[str, str]:
    if not medoid:
        return "-", "-"
    name = f"{_cell(_file_name(medoid.get('audio', '')))} (clip {int(medoid.get('index', 0))})"
    return name, _cell(medoid.get("text", ""), MAX_TRANSCRIPT_CHARS)


def _stats(row: Mapping[str, Any]) -> dict[str, str]:
    durations = row["durations"]
    total = sum(durations)
    return {
        "clips": str(len(durations)),
        "minutes": f"{total / 60:.2f}",
        "avg duration (s)": f"{total / len(durations):.2f}" if durations else "-",
        "shortest (s)": f"{min(durations):.2f}" if durations else "-",
        "longest (s)": f"{max(durations):.2f}" if durations else "-",
        "train": str(row["train"]),
        "valid": str(row["valid"]),
        "excluded": str(sum(row["excluded"].values())),
    }


def _markdown(rows: Sequence[Mapping[str, Any]], figures: Mapping[str, str]) -> str:
    lines = [
        "# Speaker set report",
        "",
        "For the team preparing the set; not an export (clips are named by file name only).",
        f"Training keeps clips of {TRAINING_BOUNDS[0]:g}-{TRAINING_BOUNDS[1]:g} s at 24 kHz.",
        "",
        "## Overview",
        "",
    ]
    header = ["speaker", "clips", "minutes", "avg duration (s)", "train", "valid", "excluded"]
    overview = [[_cell(r["speaker"])] + [_stats(r)[h] for h in header[1:]] for r in rows]
    lines += [_table(overview, header) if overview else "(no speakers)", ""]
    for row in rows:
        lines += _speaker_section(row)
    lines += ["## Figures", ""]
    lines += [f"![{title}]({name})\n" for title, name in figures.items()]
    return "\n".join(lines)


def _speaker_section(row: Mapping[str, Any]) -> list[str]:
    medoid, transcript = _medoid_cells(row["medoid"])
    cells = [[k, v] for k, v in _stats(row).items()]
    cells += [[f"excluded: {_cell(reason)}", str(n)] for reason, n in row["excluded"].items()]
    cells += [["medoid", medoid], ["medoid transcript", transcript]]
    return [f"## Speaker {_cell(row['speaker'])}", "", _table(cells, ["", row["speaker"]]), ""]


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    return tabulate(
        rows, headers=[_cell(h) for h in header], tablefmt="github", disable_numparse=True
    )


def _colour(plt: Any, i: int) -> Any:
    return plt.get_cmap("tab10" if i < 10 else "tab20")(i % 20)


def _save(fig: Any, path: Path) -> str:
    """Write ``fig`` as a PNG at ``path`` (atomically) and close it; return the file name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=_DPI))
    finally:
        plt.close(fig)
    return path.name


def _grid(plt: Any, panels: int, width: float, height: float) -> tuple[Any, list[Any]]:
    """A figure with ``panels`` axes (at most 3 a row), unused ones hidden."""
    cols = min(3, max(1, panels))
    rows = math.ceil(max(1, panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat


def _plot_durations(rows: Sequence[Mapping[str, Any]], path: Path) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    longest = max((max(r["durations"]) for r in rows if r["durations"]), default=0.0)
    upper = max(TRAINING_BOUNDS[1] + 1.0, math.ceil(longest) + 1.0)
    bins = np.arange(0.0, upper + 0.5, 0.5) if upper <= 60 else np.linspace(0.0, upper, 121)
    fig, axes = _grid(plt, len(rows), 4.2, 2.6)
    for i, (row, ax) in enumerate(zip(rows, axes, strict=False)):
        ax.hist(row["durations"], bins=bins, color=_colour(plt, i))
        for bound in TRAINING_BOUNDS:
            ax.axvline(bound, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(f"{row['speaker']} (n={len(row['durations'])})", fontsize="small")
        ax.set_xlabel("duration (s)")
        ax.set_ylabel("clips")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not rows:
        axes[0].set_visible(True)
        axes[0].set_title("no speakers")
    return _save(fig, path)


def _plot_splits(rows: Sequence[Mapping[str, Any]], path: Path) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = [r["speaker"] for r in rows]
    x = np.arange(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(8.0, 1.2 * len(rows) + 4.0), 3.6))
    for offset, split, colour in ((-0.2, "train", "tab:blue"), (0.2, "valid", "tab:orange")):
        left.bar(x + offset, [r[split] for r in rows], width=0.4, label=split, color=colour)
    left.set_title("Clips per split")
    reasons = sorted({reason for r in rows for reason in r["excluded"]})
    bottom = np.zeros(len(rows))
    for j, reason in enumerate(reasons):
        counts = np.array([r["excluded"].get(reason, 0) for r in rows], dtype=float)
        right.bar(x, counts, bottom=bottom, width=0.6, label=reason, color=_colour(plt, j))
        bottom += counts
    right.set_title("Excluded by reason" if reasons else "Excluded by reason (none)")
    rotated = len(rows) > 4
    for ax in (left, right):
        ax.set_xticks(x, names, rotation=30 if rotated else 0, ha="right" if rotated else "center")
        ax.set_ylabel("clips")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return _save(fig, path)


def _projection(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """2-D coordinates of every kept clip's embedding (PCA over all speakers together); fewer
    than two clips or dimensions give zeros in the missing axes."""
    from sklearn.decomposition import PCA

    blocks = [r["embeddings"] for r in rows if len(r["embeddings"])]
    if not blocks:
        return np.zeros((0, 2))
    widths = {b.shape[1] for b in blocks}
    if len(widths) > 1:
        raise ValueError(f"speaker embeddings differ in size: {sorted(widths)}")
    data = np.concatenate(blocks)
    data = np.where(np.isfinite(data), data, 0.0)
    out = np.zeros((len(data), 2))
    components = min(2, len(data), data.shape[1])
    if components == 0 or len(data) < 2:
        return out
    out[:, :components] = PCA(n_components=components, svd_solver="full").fit_transform(data)
    return out


def _plot_embeddings(rows: Sequence[Mapping[str, Any]], path: Path) -> str:
    import matplotlib.pyplot as plt

    points = _projection(rows)
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    start = 0
    for i, row in enumerate(rows):
        n = len(row["embeddings"])
        if not n:
            continue
        xy = points[start : start + n]
        start += n
        colour = _colour(plt, i)
        ax.scatter(xy[:, 0], xy[:, 1], s=14, alpha=0.7, color=colour, label=row["speaker"])
        index = (row["medoid"] or {}).get("index")
        if index is not None and 0 <= int(index) < n:
            mx, my = xy[int(index)]
            ax.scatter([mx], [my], s=180, marker="*", color=colour, edgecolors="black")
    ax.scatter([], [], s=120, marker="*", color="white", edgecolors="black", label="medoid")
    ax.set_title("Speaker embeddings, PCA (one point per kept clip)")
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.legend(
        fontsize="small",
        ncol=max(1, math.ceil(len(rows) / 20)),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    return _save(fig, path)
