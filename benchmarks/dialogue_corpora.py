"""The three dialogue recipes on synthetic corpora 100x their test fixtures, side by side.

Writes DeepDialogue, MultiDialog and InstructS2S-200K in their real on-disk shapes
(``lhotse_triplets.testing.corpora``, quirks included) at ``--scale`` times the conversations of
each recipe's test fixture, prepares each with the CLI (``lhotse-triplets prepare <name> SRC
OUT``) in a process of its own, and prints one markdown table: source size on disk,
conversations, turns (cuts), hours of audio, prepare wall time, turns/s, MB/s of source, the
child's peak RSS (its own ``VmHWM``: ``getrusage``'s ``ru_maxrss`` carries a parent's size over
``exec``) and failures (written on purpose / recorded).

InstructS2S's streaming parse: a text-only copy of ``--instructs2s-rows`` rows (no wavs, about
8 KB a row, the real file being ~1 GB / 200K rows) is parsed bare (the recipe's ``stream_rows``
alone, no cuts) at 10 % and 100 % of its rows, and prepared from the CLI (``--limit``) at 10 %
and 100 % of ``--instructs2s-prepare-rows`` (the prepare runs a few hundred rows/s, most of it
in Lhotse's ``to_dict`` of the ``speech_units`` lists); the peak RSS of 100 % over 10 % shows
whether memory stays flat. Times exclude each child's start and imports (shown apart). Run
(a few minutes on 2 CPU cores with the defaults)::

    .venv/bin/python benchmarks/dialogue_corpora.py
    .venv/bin/python benchmarks/dialogue_corpora.py --quick
    .venv/bin/python benchmarks/dialogue_corpora.py --instructs2s-rows 200000 --workdir /tmp/dc
"""

import argparse
import atexit
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lhotse_triplets.testing.corpora import (  # noqa: E402
    FIXTURE_CONVERSATIONS,
    WrittenCorpus,
    write_deepdialogue,
    write_instructs2s,
    write_multidialog,
)

#: Each corpus's writer and the name of its size argument.
WRITERS = {
    "deepdialogue": (write_deepdialogue, "dialogues"),
    "multidialog": (write_multidialog, "conversations"),
    "instructs2s": (write_instructs2s, "rows"),
}
#: Share of the text-only InstructS2S rows of the small memory point.
SMALL_SHARE = 0.1


# --- children: each measured process reports its own peak RSS ---------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``, MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child_cli(args: list[str]) -> None:
    """``lhotse-triplets ARGS`` in this process; at exit, one JSON line with the peak RSS."""
    from lhotse_triplets.bin.cli import cli

    start = time.perf_counter()

    def report() -> None:
        run_s = time.perf_counter() - start
        print(json.dumps({"peak_rss_mb": peak_rss_mb(), "run_s": run_s}), flush=True)

    atexit.register(report)
    cli(args, prog_name="lhotse-triplets")


def child_parse(path: str, limit: int) -> None:
    """Rows and turns of the InstructS2S file, parsed by the recipe's streaming reader only."""
    from itertools import islice

    from lhotse_triplets.recipes.instructs2s import corpus_file, stream_rows

    rows = turns = 0
    start = time.perf_counter()
    for _, row in islice(stream_rows(corpus_file(path)), limit or None):
        rows += 1
        turns += len(row.get("conversation", [])) if isinstance(row, dict) else 0
    run_s = time.perf_counter() - start
    print(json.dumps({"rows": rows, "turns": turns, "peak_rss_mb": peak_rss_mb(), "run_s": run_s}))


def in_child(mode: str, *args: str) -> tuple[dict, float]:
    """Run this script with ``mode`` in a fresh process: its last stdout line (``run_s``: the
    seconds after its imports) and the wall seconds of the whole process."""
    command = [sys.executable, __file__, mode, *args]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.stderr.write(result.stderr[-3000:])
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1]), seconds


# --- measurements ------------------------------------------------------------------------------


def size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def read_outputs(out: Path, durations: bool) -> dict:
    """Cuts, seconds of audio (``durations``) and recorded failures of a prepared folder."""
    cuts, seconds = 0, 0.0
    for manifest in sorted(out.glob("*_cuts_*.jsonl.gz")):
        with gzip.open(manifest, "rt", encoding="utf-8") as f:
            for line in f:
                cuts += 1
                seconds += json.loads(line)["duration"] if durations else 0.0
    failures = 0
    for log in out.glob("*_failed_*.jsonl"):
        with log.open(encoding="utf-8") as f:
            failures += sum(1 for line in f if line.strip())
    return {"cuts": cuts, "seconds": seconds, "failures": failures}


def table_row(run: str, **values) -> dict:
    keys = (
        "source",
        "conversations",
        "turns (cuts)",
        "audio h",
        "write s",
        "prepare s",
        "turns/s",
        "MB/s",
        "peak RSS MB",
        "failures (made / recorded)",
    )
    return {"run": run, **{key: values.get(key, "") for key in keys}}


def prepare_row(
    run: str, info: WrittenCorpus, out: Path, write_s: float, args: list, source_mb: float
) -> dict:
    """Prepare a written corpus from the CLI into ``out`` and measure it (``source_mb``: the
    megabytes it reads)."""
    child, wall = in_child("--child-cli", "prepare", *args)
    seconds = child["run_s"]
    got = read_outputs(out, durations=info.audio_seconds > 0)
    turns = f"{got['cuts']:,}"
    if got["cuts"] != info.turns:
        turns += f" (**expected {info.turns:,}**)"
    return table_row(
        run,
        source=f"{source_mb:,.1f} MB",
        conversations=f"{info.conversations:,}",
        **{
            "turns (cuts)": turns,
            "audio h": f"{got['seconds'] / 3600:.2f}",
            "write s": f"{write_s:.1f}",
            "prepare s": f"{seconds:.1f} (+{wall - seconds:.1f} start)",
            "turns/s": f"{got['cuts'] / seconds:,.0f}",
            "MB/s": f"{source_mb / seconds:.1f}",
            "peak RSS MB": f"{child['peak_rss_mb']:.0f}",
            "failures (made / recorded)": f"{info.failures} / {got['failures']}",
        },
    )


def corpus_rows(names: list[str], scale: int, seed: int, workdir: Path) -> list[dict]:
    """Each corpus at ``scale`` x its fixture, written then prepared."""
    rows = []
    for name in names:
        conversations = FIXTURE_CONVERSATIONS[name] * scale
        bad = max(1, conversations // 200)
        source, out = workdir / name, workdir / f"{name}_prepared"
        start = time.perf_counter()
        writer, size = WRITERS[name]
        info = writer(source, **{size: conversations}, seed=seed, bad=bad)
        write_s = time.perf_counter() - start
        print(f"{name}: wrote {info.turns:,} turns in {write_s:.1f} s", file=sys.stderr)
        args = [name, str(source), str(out)]
        rows.append(prepare_row(f"{name} x{scale}", info, out, write_s, args, size_mb(source)))
        shutil.rmtree(out)
    return rows


def parse_rows(total: int, prepare_total: int, seed: int, workdir: Path) -> list[dict]:
    """InstructS2S text-only (``total`` rows, no wavs): the bare streaming parse at
    :data:`SMALL_SHARE` and 100 % of the file, the CLI prepare (``--limit``) at the same shares
    of ``prepare_total`` rows, then the peak RSS ratios."""
    source = workdir / "instructs2s_text"
    start = time.perf_counter()
    write_instructs2s(source, rows=total, seed=seed, with_audio=False)
    write_s = time.perf_counter() - start
    file_mb = size_mb(source)
    print(f"instructs2s text-only: wrote {file_mb:,.0f} MB in {write_s:.1f} s", file=sys.stderr)
    rows, peaks = [], {}
    for share in (SMALL_SHARE, 1.0):
        label = f"{share:.0%}"
        limit = max(1, int(total * share))
        parsed_mb = file_mb * limit / total
        child, wall = in_child("--child-parse", str(source), str(limit))
        seconds = child["run_s"]
        rows.append(
            table_row(
                f"instructs2s text-only, parse only, {label} of {total:,} rows",
                source=f"{parsed_mb:,.0f} of {file_mb:,.0f} MB",
                conversations=f"{child['rows']:,}",
                **{
                    "turns (cuts)": f"{child['turns']:,} (no cuts)",
                    "write s": f"{write_s:.1f}",
                    "prepare s": f"{seconds:.1f} (+{wall - seconds:.1f} start)",
                    "turns/s": f"{child['turns'] / seconds:,.0f}",
                    "MB/s": f"{parsed_mb / seconds:.1f}",
                    "peak RSS MB": f"{child['peak_rss_mb']:.0f}",
                },
            )
        )
        limit = max(1, int(min(prepare_total, total) * share))
        expected, _ = in_child("--child-parse", str(source), str(limit))
        part = WrittenCorpus(source, expected["rows"], turns=expected["turns"])
        out = workdir / f"instructs2s_text_{label}"
        args = ["instructs2s", str(source), str(out), "--limit", str(limit)]
        run = f"instructs2s text-only, prepare, {label} of {prepare_total:,} rows"
        rows.append(prepare_row(run, part, out, write_s, args, file_mb * limit / total))
        shutil.rmtree(out)
        peaks[share] = (prepare_peak(rows[-1]), child["peak_rss_mb"])
    small, large = peaks[SMALL_SHARE], peaks[1.0]
    ratio = f"parse x{large[1] / small[1]:.2f}, prepare x{large[0] / small[0]:.2f}"
    label = "instructs2s text-only peak RSS, 100 % / 10 % (flat: x1.00)"
    rows.append(table_row(label, **{"peak RSS MB": ratio}))
    return rows


def prepare_peak(row: dict) -> float:
    return float(row["peak RSS MB"])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-cli":
        return child_cli(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "--child-parse":
        return child_parse(sys.argv[2], int(sys.argv[3]))
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=100, help="x the fixtures' conversations")
    parser.add_argument(
        "--instructs2s-rows", type=int, default=100_000, help="text-only rows (bare parse)"
    )
    parser.add_argument(
        "--instructs2s-prepare-rows",
        type=int,
        default=10_000,
        help="of those, rows the text-only prepare reads (--limit; it runs ~100-300 rows/s)",
    )
    parser.add_argument("--workdir", type=Path, help="scratch folder, kept (default: temporary)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="--scale 5 --instructs2s-rows 5000 --instructs2s-prepare-rows 1000",
    )
    parser.add_argument(
        "--only",
        default="deepdialogue,multidialog,instructs2s,parse",
        help="comma-separated: deepdialogue, multidialog, instructs2s, parse",
    )
    args = parser.parse_args()
    scale, total, prepare_total = (
        (5, 5000, 1000)
        if args.quick
        else (args.scale, args.instructs2s_rows, args.instructs2s_prepare_rows)
    )
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dialogue_corpora_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        rows = corpus_rows([n for n in only if n in WRITERS], scale, args.seed, workdir)
        if "parse" in only:
            rows += parse_rows(total, prepare_total, args.seed, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\n{os.cpu_count()} CPUs; scale x{scale}; InstructS2S text-only rows: {total:,} "
        f"(prepare: {prepare_total:,}); 'start': process start and imports\n"
    )
    print(tabulate(rows, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
