"""``browse`` and ``describe`` on a synthetic Shar export of 10,000 and 100,000 clips, side by side.

Writes, per size, a Lhotse Shar export (``cuts.NNNNNN.jsonl.gz`` + ``recording.NNNNNN.tar`` of
tiny 16 kHz FLAC tones, 0.1-0.3 s, written with Lhotse's ``SharWriter``; no images) whose cuts
carry what a gated run's cuts carry: 5 languages, 5 voices each, a TTS engine, the spoken text,
the source text before rephrasing, the ASR text with word substitutions, the answer, the scores
(similarity, wer, cer, error_rate, mos) and a reject reason for about 30 % of them (the gate's
thresholds applied to the scores). Then, in a fresh Python process per size (peak RSS = that
child's own ``VmHWM``, read after each step: it only grows), it measures:

1. building the index (``BrowseIndex.open(path, index_path=..., rebuild=True)``): seconds, index
   size, peak RSS;
2. reopening it (no rebuild: the input stamp is checked, nothing is read): seconds;
3. the HTTP API of a real ``BrowseServer`` (127.0.0.1, port 0, a thread), timed with ``urllib``
   from request to the last byte of the body: the page, facets, the first page, a page filtered
   by language, by reject reason, sorted by a score, the last page (plain and sorted), a
   free-text search and one audio request; "cold" is the first call after opening, "warm" the
   median of the next ``--repeat``;
4. ``describe(path)`` (reads the export itself, not the index): seconds.

Prints one markdown table (one column per size). Run (about 3.5 minutes on 2 CPU cores with the
defaults)::

    .venv/bin/python benchmarks/browse_scale.py
    .venv/bin/python benchmarks/browse_scale.py --sizes 1000 --workdir /tmp/bs   # quick, kept
"""

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lhotse_triplets import fields  # noqa: E402

SAMPLING_RATE = 16000
#: Languages of the quick start and their voices (Kokoro / espeak style names).
VOICES = {
    "en": ("af_heart", "af_bella", "am_adam", "bf_emma", "bm_george"),
    "fr": ("ff_siwis", "fr_f2", "fr_m1", "fr_m2", "fr_f3"),
    "de": ("de_f1", "de_f2", "de_m1", "de_m2", "de_m3"),
    "ja": ("jf_alpha", "jf_gongitsune", "jm_kumo", "jf_nezumi", "jf_tebukuro"),
    "zh": ("zf_xiaobei", "zf_xiaoni", "zm_yunjian", "zm_yunxi", "zf_xiaoyi"),
}
#: TTS engines and how often each speaks a clip.
ENGINES = {"kokoro": 0.7, "espeak": 0.2, "piper": 0.1}
#: Gate thresholds that reject about 30 % of the synthetic scores.
MIN_SIMILARITY, MAX_ERROR_RATE, MIN_MOS = 0.6, 0.15, 3.3
#: The word every ~1 in 500 answers holds (the free-text search).
RARE_WORD = "dodecahedron"
SHAPES = ("cube", "sphere", "cylinder", "cone", "torus")
COLOURS = ("red", "blue", "green", "yellow", "purple", "gray", "brown", "cyan")
SIZES_ = ("large", "small", "tiny", "big")
MATERIALS = ("metal", "rubber", "matte", "shiny")
#: What the ASR hears instead of a word (a substitution).
MISHEARD = {
    "cube": "tube",
    "large": "charge",
    "cone": "phone",
    "metal": "medal",
    "behind": "beyond",
    "small": "smell",
    "sphere": "fear",
}
TONES = 16


# --- the synthetic export ---------------------------------------------------------------------


def tones():
    """``TONES`` in-memory FLAC recordings of 0.1-0.3 s (every clip reuses one of them)."""
    import numpy as np
    import soundfile as sf
    from lhotse import Recording

    out = []
    for i in range(TONES):
        seconds = 0.1 + 0.2 * i / (TONES - 1)
        t = np.arange(int(SAMPLING_RATE * seconds)) / SAMPLING_RATE
        wave = (0.2 * np.sin(2 * np.pi * (220 + 30 * i) * t)).astype(np.float32)
        data = io.BytesIO()
        sf.write(data, wave, SAMPLING_RATE, format="FLAC")
        out.append(Recording.from_bytes(data.getvalue(), f"tone-{i}"))
    return out


def prompt(rng: random.Random) -> tuple[str, str, str]:
    """``(source text, spoken text, answer)`` of one CLEVR-like question."""
    size, colour = rng.choice(SIZES_), rng.choice(COLOURS)
    material, shape = rng.choice(MATERIALS), rng.choice(SHAPES)
    other = rng.choice(SHAPES)
    source = f"What colour is the {size} {material} {shape} behind the {other}?"
    spoken = f"What color is the {size} {material} {shape} that is behind the {other}?"
    thing = RARE_WORD if rng.random() < 0.002 else shape
    answer = f"The {size} {material} {thing} is {colour}."
    return source, spoken, answer


def heard(text: str, rng: random.Random) -> tuple[str, int]:
    """What the ASR heard of ``text`` (lower case, no punctuation, some words substituted) and
    how many words it got wrong."""
    words = text.lower().replace("?", "").replace(".", "").split()
    wrong = 0
    for i, word in enumerate(words):
        if word in MISHEARD and rng.random() < 0.35:
            words[i], wrong = MISHEARD[word], wrong + 1
    return " ".join(words), wrong


def scores(language: str, wrong: int, words: int, rng: random.Random) -> dict:
    """The score stage's fields and the gate's ``reject_reason`` (``None`` when kept)."""
    wer = round(wrong / words, 4)
    cer = round(wer * rng.uniform(0.3, 0.7), 4)
    values = {
        fields.SIMILARITY: round(min(0.99, rng.gauss(0.78, 0.12)), 4),
        fields.WER: wer,
        fields.CER: cer,
        fields.ERROR_RATE: cer if language in ("ja", "zh") else wer,
        fields.MOS: round(min(4.9, max(1.0, rng.gauss(3.9, 0.5))), 3),
    }
    reasons = [
        reason
        for reason, failed in (
            ("low_similarity", values[fields.SIMILARITY] < MIN_SIMILARITY),
            ("high_error_rate", values[fields.ERROR_RATE] > MAX_ERROR_RATE),
            ("low_mos", values[fields.MOS] < MIN_MOS),
        )
        if failed
    ]
    values[fields.REJECT_REASON] = ",".join(reasons) or None
    return values


def synthetic_cut(n: int, recordings: list, rng: random.Random):
    """The ``n``-th clip: a synthesized, scored and gated triplet cut."""
    from lhotse import MonoCut, SupervisionSegment
    from lhotse.utils import fastcopy

    language = list(VOICES)[n % len(VOICES)]
    voice = rng.choice(VOICES[language])
    conversation, turn = n // 3, n % 3
    cut_id = f"clevr_{conversation:07d}-t{turn}-{language}-{voice}"
    source, spoken, answer = prompt(rng)
    asr_text, wrong = heard(spoken, rng)
    recording = fastcopy(rng.choice(recordings), id=cut_id)
    custom = {
        fields.CONVERSATION_ID: f"clevr_{conversation:07d}",
        fields.TURN: turn,
        fields.USER_TEXT: source,
        fields.ANSWER: answer,
        fields.DATA_SOURCE: "CLEVR",
        fields.TTS_MODEL: rng.choices(list(ENGINES), weights=list(ENGINES.values()))[0],
        fields.SYNTHESIS_SECONDS: round(rng.uniform(0.05, 0.4), 3),
        fields.ASR_TEXT: asr_text,
        **scores(language, wrong, len(spoken.split()), rng),
    }
    supervision = SupervisionSegment(
        cut_id, cut_id, 0, recording.duration, text=spoken, language=language, speaker=voice
    )
    return MonoCut(
        cut_id, 0, recording.duration, 0, recording=recording, supervisions=[supervision],
        custom=custom,
    )  # fmt: skip


def write_export(folder: Path, clips: int, seed: int, shard_size: int) -> None:
    """A Shar export of ``clips`` synthetic clips in ``folder`` (``cuts`` + ``recording`` tars)."""
    from lhotse.shar import SharWriter
    from tqdm.auto import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    recordings = tones()
    with SharWriter(str(folder), fields={"recording": "flac"}, shard_size=shard_size) as writer:
        for n in tqdm(range(clips), desc=f"Writing {clips:,} clips", unit="clip", leave=False):
            writer.write(synthetic_cut(n, recordings, rng))


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


# --- the measuring child -----------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``, MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def fetch(url: str) -> tuple[float, bytes]:
    """Milliseconds from request to the last byte of the body, and the body."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as response:
        body = response.read()
    return 1000 * (time.perf_counter() - start), body


def requests(base: str) -> dict[str, str]:
    """The requests timed (name -> path); the last pages are added once the count is known."""
    total = json.loads(fetch(f"{base}api/items?per_page=1")[1])["total"]
    last = max(1, -(-total // 50))
    return {
        "GET / (the page)": "",
        "GET /api/facets": "api/facets",
        "first page (50 items)": "api/items?page=1",
        "filtered: language=fr": "api/items?language=fr",
        "filtered: reason=low_mos": "api/items?reason=low_mos",
        "filtered: status=rejected + language=ja": "api/items?status=rejected&language=ja",
        "sorted by mos (desc)": "api/items?sort=mos&desc=1",
        f"last page (page {last:,})": f"api/items?page={last}",
        "last page sorted by wer": f"api/items?page={last}&sort=wer",
        f"free-text search ({RARE_WORD!r})": f"api/items?q={RARE_WORD}",
        "free-text search ('tube', many hits)": "api/items?q=tube",
        "facets of a search ('tube')": "api/facets?q=tube",
        "one audio clip (/media/<key>/audio)": "media/1/audio",
    }


def time_requests(base: str, repeat: int) -> dict[str, dict[str, float]]:
    """Per request: cold (first) and warm (median of ``repeat`` more) milliseconds."""
    out = {}
    for name, path in requests(base).items():
        cold, body = fetch(base + path)
        if not body:
            raise RuntimeError(f"empty answer to {path}")
        warm = statistics.median(fetch(base + path)[0] for _ in range(repeat))
        out[name] = {"cold_ms": cold, "warm_ms": warm}
    return out


def child_measure(path: str, index_path: str, repeat: int) -> dict:
    """Every measurement of one export, in this process (see the module docstring)."""
    from lhotse_triplets.browse.index import BrowseIndex, Filters
    from lhotse_triplets.browse.server import BrowseServer
    from lhotse_triplets.describe import describe

    result = {"imports_rss_mb": peak_rss_mb()}
    start = time.perf_counter()
    index = BrowseIndex.open(path, index_path=index_path, rebuild=True, progress=False)
    result["build_s"] = time.perf_counter() - start
    result["build_stats"] = index.build_stats()
    result["rows"] = index.count(Filters())
    result["rejected"] = index.count(Filters(status="rejected"))
    result["build_rss_mb"] = peak_rss_mb()
    index.close()

    start = time.perf_counter()
    index = BrowseIndex.open(path, index_path=index_path, progress=False)
    result["reopen_s"] = time.perf_counter() - start
    if index.build_stats()["seconds"] != result["build_stats"]["seconds"]:
        raise RuntimeError("the reopen rebuilt the index")

    start = time.perf_counter()
    server = BrowseServer(index, port=0)
    result["server_start_s"] = time.perf_counter() - start
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result["requests"] = time_requests(server.url, repeat)
    finally:
        server.shutdown()
        server.server_close()
    result["serve_rss_mb"] = peak_rss_mb()
    index.close()

    start = time.perf_counter()
    description = describe(path)
    result["describe_s"] = time.perf_counter() - start
    result["describe_records"] = description.records
    result["exit_rss_mb"] = peak_rss_mb()
    return result


def measure(path: Path, index_path: Path, repeat: int) -> dict:
    """:func:`child_measure` in a fresh Python process (its own heap and ``VmHWM``)."""
    command = [sys.executable, __file__, "--child", str(path), str(index_path), str(repeat)]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the table ----------------------------------------------------------------------------------


def column(clips: int, generate_s: float, export_mb: float, m: dict) -> dict[str, str]:
    """One size's cells, by row name."""
    stats = m["build_stats"]
    cells = {
        "export: generate (SharWriter) s": f"{generate_s:.1f}",
        "export: size on disk MB": f"{export_mb:.1f}",
        "records indexed / rejected": f"{m['rows']:,} / {m['rejected']:,}",
        "1. index build s (clips/s)": f"{m['build_s']:.1f} ({clips / m['build_s']:,.0f}/s)",
        "1. index size MB": f"{stats['bytes'] / 2**20:.1f}",
        "1. peak RSS after imports / after build MB": (
            f"{m['imports_rss_mb']:.0f} / {m['build_rss_mb']:.0f}"
        ),
        "2. reopen (no rebuild) s": f"{m['reopen_s']:.3f}",
        "3. server start (score names) s": f"{m['server_start_s']:.3f}",
    }
    for name, t in m["requests"].items():
        cells[f"3. {name} ms, cold / warm"] = f"{t['cold_ms']:.0f} / {t['warm_ms']:.0f}"
    cells["3. peak RSS after serving MB"] = f"{m['serve_rss_mb']:.0f}"
    cells["4. describe(path) s (records)"] = f"{m['describe_s']:.1f} ({m['describe_records']:,})"
    cells["peak RSS at exit (after describe) MB"] = f"{m['exit_rss_mb']:.0f}"
    return cells


def table(columns: dict[str, dict[str, str]]) -> str:
    names = list(dict.fromkeys(n for cells in columns.values() for n in cells))
    rows = [[name, *(cells.get(name, "") for cells in columns.values())] for name in names]
    return tabulate(
        rows,
        headers=["measurement", *columns],
        tablefmt="github",
        colalign=("left",) + ("right",) * len(columns),
    )


def merge_last_page(cells: dict[str, str]) -> dict[str, str]:
    """Rename the ``last page (page N)`` row so that sizes share it (N goes into the cell)."""
    out = {}
    for name, value in cells.items():
        if name.startswith("3. last page (page "):
            page = name.split("(page ")[1].split(")")[0]
            out["3. last page ms, cold / warm"] = f"{value} (page {page})"
        else:
            out[name] = value
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child_measure(sys.argv[2], sys.argv[3], int(sys.argv[4]))), flush=True)
        return
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="comma-separated clip counts, one column each (default: %(default)s)",
    )
    parser.add_argument("--shard-size", type=int, default=1000, help="clips per Shar shard")
    parser.add_argument("--repeat", type=int, default=3, help="warm calls per request (median)")
    parser.add_argument("--workdir", type=Path, help="scratch folder, kept (default: temporary)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="browse_scale_"))
    workdir.mkdir(parents=True, exist_ok=True)
    columns = {}
    try:
        for clips in sizes:
            export = workdir / f"export_{clips}" / "shar"
            shutil.rmtree(export, ignore_errors=True)
            start = time.perf_counter()
            write_export(export, clips, args.seed, args.shard_size)
            generate_s = time.perf_counter() - start
            m = measure(export, workdir / f"index_{clips}.sqlite", args.repeat)
            if m["rows"] != clips or m["describe_records"] != clips:
                raise RuntimeError(f"{clips} clips written, {m['rows']} indexed")
            cells = column(clips, generate_s, folder_mb(export), m)
            columns[f"{clips:,} clips"] = merge_last_page(cells)
            print(f"{clips:,} clips done", file=sys.stderr, flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\n{os.cpu_count()} CPUs; Shar shards of {args.shard_size:,} clips, 16 kHz FLAC tones "
        f"of 0.1-0.3 s; one child process per size; warm = median of {args.repeat}\n"
    )
    print(table(columns))


if __name__ == "__main__":
    main()
