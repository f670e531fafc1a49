"""TTS benchmark: engine × language × voice × prompt grid, tables and plots, a labelling page,
gate calibration from labels, and per-language engine selection.

Example::

    cfg = load_config("configs/bench.yaml", schema=BenchConfig)
    run_bench(cfg, "bench-out")           # synthesize + score every grid cell, then report
    write_report("bench-out")             # clips.csv, tables/, plots/
    select_engines("bench-out", "selection.yaml")
"""

from lhotse_triplets.bench.prompts import load_prompts
from lhotse_triplets.bench.report import collect_clips, write_report
from lhotse_triplets.bench.run import run_bench
from lhotse_triplets.bench.select import select_engines

__all__ = [
    "collect_clips",
    "load_prompts",
    "run_bench",
    "select_engines",
    "write_report",
]
