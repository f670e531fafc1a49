"""Run a stage over sharded manifests: incremental, resumable, with a failed log.

Layout of a stage directory::

    <stage_dir>/cuts.000000.jsonl.gz     output cuts of input shard 0
    <stage_dir>/failed.000000.jsonl      {"cut_id", "stage", "reason"} per failed item
    <stage_dir>/.done/cuts.000000.json   marker: the shard is finished (with its counts)

A shard's outputs are written to temporary files and renamed when the shard is complete, then
its marker is written; a rerun skips marked shards and redoes an unfinished one from scratch, so
a killed run resumes with no duplicates and nothing lost.
"""

import json
import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from lhotse import CutSet
from lhotse.lazy import LazyIteratorChain
from tqdm.auto import tqdm

from lhotse_triplets.errors import Failure
from lhotse_triplets.transforms.base import Stage, batched

logger = logging.getLogger(__name__)

Pathlike = str | Path
SHARD_GLOB = "cuts.*.jsonl.gz"
DONE_DIR = ".done"


@dataclass
class StageReport:
    """Counts of one stage run (all shards, including those done by an earlier run)."""

    stage: str
    shards: int = 0
    shards_skipped: int = 0
    cuts_in: int = 0
    cuts_out: int = 0
    failed: Counter = field(default_factory=Counter)

    @property
    def num_failed(self) -> int:
        return sum(self.failed.values())

    def add(self, counts: dict) -> None:
        self.cuts_in += counts["cuts_in"]
        self.cuts_out += counts["cuts_out"]
        self.failed.update(counts["failed"])


def list_shards(stage_dir: Pathlike) -> list[Path]:
    """The shard manifests of a stage directory, in order."""
    return sorted(Path(stage_dir).glob(SHARD_GLOB))


def read_cuts(path: Pathlike) -> CutSet:
    """Lazily open a manifest file, or all shards of a stage directory, as one CutSet."""
    path = Path(path)
    if path.is_dir():
        shards = list_shards(path)
        if not shards:
            raise FileNotFoundError(f"No {SHARD_GLOB} manifests in {path}")
        return CutSet(LazyIteratorChain(*[CutSet.from_jsonl_lazy(p) for p in shards]))
    if not path.exists():
        raise FileNotFoundError(f"No such manifest: {path}")
    return CutSet.from_jsonl_lazy(path)


def read_failures(stage_dir: Pathlike) -> list[Failure]:
    """All failure records of a stage directory."""
    out = []
    for p in sorted(Path(stage_dir).glob("failed.*.jsonl")):
        with p.open() as f:
            out.extend(Failure(**json.loads(line)) for line in f if line.strip())
    return out


def shard_cuts(cuts: CutSet, output_dir: Pathlike, shard_size: int) -> list[Path]:
    """Split ``cuts`` into shards of ``shard_size`` in ``output_dir`` (done once, then reused)."""
    output_dir = Path(output_dir)
    marker = output_dir / ".completed"
    if not marker.exists():
        output_dir.mkdir(parents=True, exist_ok=True)
        for old in list_shards(output_dir):
            old.unlink()
        cuts.split_lazy(output_dir, chunk_size=shard_size, prefix="cuts", num_digits=6)
        marker.touch()
    return list_shards(output_dir)


def _count_lines(path: Path) -> int:
    import gzip

    with gzip.open(path, "rt") as f:
        return sum(1 for _ in f)


def process_shard(
    stage: Stage,
    input_path: Pathlike,
    output_dir: Pathlike,
    on_cut: Callable[[int], None] | None = None,
) -> dict:
    """Run ``stage`` over one shard file; write outputs, failures and the done marker."""
    input_path, output_dir = Path(input_path), Path(output_dir)
    name = input_path.name
    out_path = output_dir / name
    failed_path = output_dir / name.replace("cuts.", "failed.").replace(".jsonl.gz", ".jsonl")
    done_path = output_dir / DONE_DIR / (name.replace(".jsonl.gz", "") + ".json")
    tmp_out = out_path.with_name(f".tmp.{out_path.name}")
    tmp_failed = failed_path.with_name(f".tmp.{failed_path.name}")
    counts = {"cuts_in": 0, "cuts_out": 0, "failed": Counter()}
    stage.setup()
    with CutSet.open_writer(tmp_out, overwrite=True) as writer, tmp_failed.open("w") as flog:
        for batch in batched(CutSet.from_jsonl_lazy(input_path), max(1, stage.batch_size)):
            for item in stage.process(batch):
                if isinstance(item, Failure):
                    flog.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
                    counts["failed"][item.reason] += 1
                else:
                    writer.write(item)
                    counts["cuts_out"] += 1
            counts["cuts_in"] += len(batch)
            if on_cut is not None:
                on_cut(len(batch))
    os.replace(tmp_out, out_path)
    os.replace(tmp_failed, failed_path)
    done_path.parent.mkdir(exist_ok=True)
    done_path.write_text(json.dumps({**counts, "failed": dict(counts["failed"])}))
    return counts


def _load_done(done_path: Path) -> dict | None:
    try:
        counts = json.loads(done_path.read_text())
    except (OSError, ValueError):
        return None
    counts["failed"] = Counter(counts["failed"])
    return counts


def run_stage(
    stage: Stage,
    inputs: Pathlike | Sequence[Pathlike],
    output_dir: Pathlike,
    *,
    num_jobs: int = 1,
    progress: bool = True,
) -> StageReport:
    """Run ``stage`` on every input shard not already done; return the stage's counts.

    :param inputs: a stage directory or a list of shard manifests (``cuts.NNNNNN.jsonl.gz``).
    :param num_jobs: worker processes; each builds its own backends.
    """
    output_dir = Path(output_dir)
    (output_dir / DONE_DIR).mkdir(parents=True, exist_ok=True)
    if isinstance(inputs, (str, Path)):
        inputs = list_shards(inputs) if Path(inputs).is_dir() else [Path(inputs)]
    inputs = [Path(p) for p in inputs]
    report = StageReport(stage=stage.name, shards=len(inputs))
    todo = []
    for p in inputs:
        done = _load_done(output_dir / DONE_DIR / (p.name.replace(".jsonl.gz", "") + ".json"))
        if done is not None and (output_dir / p.name).exists():
            report.add(done)
            report.shards_skipped += 1
        else:
            todo.append(p)
    if report.shards_skipped:
        logger.info(
            "%s: %d of %d shards already done, resuming",
            stage.name,
            report.shards_skipped,
            len(inputs),
        )
    if not todo:
        return report
    total = sum(_count_lines(p) for p in todo)
    with tqdm(total=total, desc=stage.name, unit="cut", disable=not progress) as bar:
        if num_jobs <= 1:
            for p in todo:
                report.add(process_shard(stage, p, output_dir, on_cut=bar.update))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=num_jobs, mp_context=ctx) as pool:
                futures = {pool.submit(process_shard, stage, p, output_dir): p for p in todo}
                for fut in as_completed(futures):
                    counts = fut.result()
                    report.add(counts)
                    bar.update(counts["cuts_in"])
    return report
