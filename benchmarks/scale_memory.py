"""One point of ``benchmarks/scale.py``'s memory measurement, run in its own process.

Writes ``--size`` text-only LLaVA-style rows (the CLEVR conversations of
``../shared/reference-data/clevr``, repeated under fresh ids, no image) to a JSONL dump, then
runs ``prepare`` (recipe ``llava_instruct``) -> ``rephrase`` (rules, no embedder, English) of the
pipeline and exports the rephrased cuts as one manifest and as Lhotse Shar (cuts only: text-only
prompts have no audio). Prints one JSON line: seconds per step and the counts. The peak RSS is
measured by the parent (``os.wait4``), so every size gets a heap of its own::

    .venv/bin/python benchmarks/scale_memory.py --size 100000 --workdir /tmp/mem
"""

import argparse
import json
import time
from itertools import cycle, islice
from pathlib import Path

CLEVR = (
    Path(__file__).resolve().parents[2] / "shared/reference-data/clevr/clevr_first1000_raw.jsonl"
)


def write_rows(path: Path, size: int) -> None:
    """``size`` LLaVA rows cycling over the CLEVR conversations, each with its own id."""
    rows = [json.loads(line) for line in CLEVR.read_text().splitlines() if line.strip()]
    with path.open("w", encoding="utf-8") as f:
        for i, row in enumerate(islice(cycle(rows), size)):
            f.write(json.dumps({**row, "id": f"{i:08d}"}, ensure_ascii=False) + "\n")


def run(size: int, workdir: Path, shard_size: int) -> dict:
    """Prepare, rephrase and export ``size`` prompts under ``workdir``; return the timings."""
    from lhotse_triplets.config import load_config
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.pipeline import run_pipeline

    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "rows.jsonl"
    timings: dict = {"size": size}
    start = time.perf_counter()
    write_rows(source, size)
    timings["write_rows_s"] = time.perf_counter() - start
    cfg = load_config(
        overrides=[
            "prepare.recipe=llava_instruct",
            f"prepare.options={{source: {source}}}",
            "languages=[en]",
            "rephrase.embed=null",
            f"shard_size={shard_size}",
            "engine.name=local",
            "engine.num_workers=1",
        ],
    )
    out = workdir / "run"
    start = time.perf_counter()
    summary = run_pipeline(cfg, out, progress=False, until="rephrase")
    timings["prepare_rephrase_s"] = time.perf_counter() - start
    timings["prompts"] = summary.prompts
    start = time.perf_counter()
    cuts = read_cuts(out / "rephrase")
    (workdir / "export" / "shar").mkdir(parents=True, exist_ok=True)
    cuts.to_file(workdir / "export" / "cuts.jsonl.gz")
    timings["manifest_s"] = time.perf_counter() - start
    start = time.perf_counter()
    written = read_cuts(out / "rephrase").to_shar(
        workdir / "export" / "shar", fields={}, shard_size=shard_size
    )
    timings["shar_s"] = time.perf_counter() - start
    timings["shar_shards"] = len(written["cuts"])
    timings["cuts_out"] = sum(1 for _ in read_cuts(workdir / "export" / "cuts.jsonl.gz"))
    timings["peak_rss_mb"] = peak_rss_mb()
    return timings


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``, MB). Not ``getrusage``/``wait4``: Linux
    keeps ``ru_maxrss`` across ``exec``, so a child of a large parent would report the parent's
    size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, required=True, help="text-only prompts")
    parser.add_argument("--workdir", type=Path, required=True, help="scratch folder (filled)")
    parser.add_argument("--shard-size", type=int, default=5000)
    args = parser.parse_args()
    print(json.dumps(run(args.size, args.workdir, args.shard_size)))


if __name__ == "__main__":
    main()
