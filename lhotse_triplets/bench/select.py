"""``bench select``: per language, the engine with the best good ratio and its best voices.

It writes a selection file (:mod:`lhotse_triplets.selection`, read by the synthesize stage:
``synthesize.selection``) with, per language, the engine, its options and voices, and what the
benchmark measured: ``good_ratio``, ``mos``, ``similarity``, ``clips``, ``voice_scores`` and the
``runner_up`` engine.
"""

import json
from pathlib import Path

from lhotse_triplets.bench.report import collect_clips, language_tables, load_gate
from lhotse_triplets.redact import without_redacted
from lhotse_triplets.selection import write_selection


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def select_engines(
    bench_dir: str | Path,
    output: str | Path | None = None,
    *,
    top_k: int = 3,
    calibrated: str | Path | None = None,
    min_clips: int = 1,
    min_voices: int = 1,
) -> dict:
    """Choose, per language, the engine with the best good ratio (ties: higher MOS) and its
    ``top_k`` voices (same order); write the selection YAML to ``output`` when given.

    :param calibrated: gate JSON deciding "good" (default: the run's config gate).
    :param min_clips: engines with fewer scored clips in a language are not eligible there.
    :param min_voices: engines with fewer benchmarked voices in a language rank after those with
        enough (a one-voice engine wins only where no engine offers ``min_voices`` voices).

    Example::

        selection = select_engines("bench-out", "selection.yaml", top_k=2)
        selection["languages"]["en"]["engine"]
    """
    bench_dir = Path(bench_dir)
    gate = load_gate(bench_dir, calibrated)
    clips, failures = collect_clips(bench_dir, gate)
    tables = language_tables(clips, failures)
    if not tables:
        raise ValueError(f"{bench_dir} holds no clips to select from")
    languages: dict[str, dict] = {}
    for lang, t in tables.items():
        eligible = [r for r in t["engines"] if r["clips"] >= min_clips]
        if not eligible:
            continue
        num_voices = {
            r["engine"]: sum(v["engine"] == r["engine"] for v in t["voices"]) for r in eligible
        }
        eligible = [r for r in eligible if num_voices[r["engine"]] >= min_voices] + [
            r for r in eligible if num_voices[r["engine"]] < min_voices
        ]
        best, *rest = eligible
        grid = _grid_backend(bench_dir, best["engine"], lang)
        voices = [v for v in t["voices"] if v["engine"] == best["engine"]][: max(1, top_k)]
        entry = {
            "engine": grid.get("name", best["engine"]),
            "label": best["engine"],
            # Secrets and references were redacted in grid.json: left out here (a backend reads
            # its key from the environment; references come from a voice catalog).
            "options": without_redacted(grid.get("options", {})),
            "voices": [v["voice"] for v in voices],
            "good_ratio": _round(best["good_ratio"]),
            "mos": _round(best["mos"], 3),
            "similarity": _round(best["similarity"], 3),
            "clips": best["clips"],
            "failed": best["failed"],
            "voices_benchmarked": num_voices[best["engine"]],
            "voice_scores": [
                {
                    "voice": v["voice"],
                    "good_ratio": _round(v["good_ratio"]),
                    "mos": _round(v["mos"], 3),
                    "clips": v["clips"],
                }
                for v in voices
            ],
        }
        if rest:
            r = rest[0]
            entry["runner_up"] = {
                "engine": r["engine"],
                "good_ratio": _round(r["good_ratio"]),
                "mos": _round(r["mos"], 3),
            }
        languages[lang] = entry
    selection = {
        "gate": "calibrated" if gate.calibrated is not None else "config thresholds",
        "languages": languages,
    }
    if output is not None:
        header = (
            f"lhotse-triplets bench select {bench_dir} (top_k={top_k}, min_voices={min_voices})"
        )
        write_selection(output, selection, header)
    return selection


def _grid_backend(bench_dir: Path, engine: str, language: str) -> dict:
    path = bench_dir / "prompts" / engine / language / "grid.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text()).get("backend", {})
