"""The executor seam: who runs a stage over sharded manifests, and the bookkeeping every
executor shares (shard listing, done markers, failed logs, atomic renames).

Layout of a stage directory::

    <stage_dir>/cuts.000000.jsonl.gz     output cuts of input shard 0
    <stage_dir>/failed.000000.jsonl      {"cut_id", "stage", "reason"} per failed item
    <stage_dir>/.done/cuts.000000.json   marker: the shard is finished (with its counts)

A shard's outputs are written to temporary files and renamed when the shard is complete, then
its marker is written; a rerun skips marked shards and redoes an unfinished one from scratch, so
a killed run resumes with no duplicates and nothing lost, whichever executor ran it.

An executor only decides *where* :func:`process_shard` runs for the shards still to do
(:meth:`Executor.execute`); stages never know who runs them (datatrove's executors work the same
way). Executors register by name, like backends::

    @executor("inline")
    class InlineExecutor(Executor):
        def execute(self, stage, shards, output_dir, on_progress):
            for shard in shards:
                yield process_shard(stage, shard, output_dir, on_cut=on_progress)

    get_executor(EngineConfig(name="inline")).run(stage, "out/prompts", "out/rephrase")
"""

import gzip
import json
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lhotse import CutSet
from lhotse.lazy import LazyIteratorChain
from tqdm.auto import tqdm

from lhotse_triplets.errors import Failure, FailureLog
from lhotse_triplets.registry import Registry
from lhotse_triplets.transforms.base import Stage, batched

logger = logging.getLogger(__name__)

Pathlike = str | Path
SHARD_GLOB = "cuts.*.jsonl.gz"
DONE_DIR = ".done"


# --- stage directories ----------------------------------------------------------------------------


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


def shard_inputs(source: Pathlike, shard_dir: Pathlike, shard_size: int) -> list[Path]:
    """The input shards of a stage: a stage directory's own shards, or ``source`` (a manifest)
    split into ``shard_dir`` (once)."""
    source = Path(source)
    shards = list_shards(source) if source.is_dir() else []
    return shards or shard_cuts(read_cuts(source), shard_dir, shard_size)


@dataclass(frozen=True)
class ShardFiles:
    """Where the outputs of one input shard go in a stage directory."""

    input: Path
    output_dir: Path

    @property
    def cuts(self) -> Path:
        return self.output_dir / self.input.name

    @property
    def failed(self) -> Path:
        stem = self.input.name.replace(".jsonl.gz", "")
        return self.output_dir / (stem.replace("cuts.", "failed.", 1) + ".jsonl")

    @property
    def done(self) -> Path:
        return self.output_dir / DONE_DIR / (self.input.name.replace(".jsonl.gz", "") + ".json")

    def read_done(self) -> dict | None:
        """The counts of a finished shard, ``None`` when it is not finished."""
        if not self.cuts.exists():
            return None
        try:
            counts = json.loads(self.done.read_text())
        except (OSError, ValueError):
            return None
        counts["failed"] = Counter(counts["failed"])
        return counts


def process_shard(
    stage: Stage,
    input_path: Pathlike,
    output_dir: Pathlike,
    on_cut: Callable[[int], None] | None = None,
) -> dict:
    """Run ``stage`` over one shard file; write its outputs, failed log and done marker.

    The unit of work every executor runs (in this process, a worker process or an actor).
    Outputs go to hidden temporary files renamed into place when the shard is complete.

    :param on_cut: called with the number of input cuts after each batch (progress).
    :return: ``{"cuts_in", "cuts_out", "failed": Counter(reason -> n)}``.
    """
    files = ShardFiles(Path(input_path), Path(output_dir))
    tmp_out = files.cuts.with_name(f".tmp.{files.cuts.name}")
    tmp_failed = files.failed.with_name(f".tmp.{files.failed.name}")
    counts = {"cuts_in": 0, "cuts_out": 0, "failed": Counter()}
    stage.setup()
    with CutSet.open_writer(tmp_out, overwrite=True) as writer, FailureLog(tmp_failed) as flog:
        for batch in batched(CutSet.from_jsonl_lazy(files.input), max(1, stage.batch_size)):
            for item in stage.process(batch):
                if isinstance(item, Failure):
                    flog.write(item)
                else:
                    writer.write(item)
                    counts["cuts_out"] += 1
            counts["cuts_in"] += len(batch)
            if on_cut is not None:
                on_cut(len(batch))
    counts["failed"] = Counter(flog.counts)
    tmp_out.replace(files.cuts)
    tmp_failed.replace(files.failed)
    files.done.parent.mkdir(exist_ok=True)
    files.done.write_text(json.dumps({**counts, "failed": dict(counts["failed"])}))
    return counts


# --- reports ------------------------------------------------------------------------------------


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

    def row(self) -> dict[str, Any]:
        """The stage's line of a run summary."""
        return {
            "stage": self.stage,
            "cuts_in": self.cuts_in,
            "cuts_out": self.cuts_out,
            "failed": self.num_failed,
            "resumed_shards": self.shards_skipped,
        }

    def __str__(self) -> str:
        lines = [
            f"{self.stage}: {self.cuts_in} cuts in, {self.cuts_out} out, {self.num_failed} failed "
            f"({self.shards_skipped} of {self.shards} shards already done)"
        ]
        lines += [f"  failed {n:5d}  {reason}" for reason, n in self.failed.most_common()]
        return "\n".join(lines)


# --- executors ----------------------------------------------------------------------------------


class Executor(ABC):
    """Runs stages over shards. Subclasses implement :meth:`execute` only.

    :param num_workers: parallel workers (processes, actors) the executor may use.
    :param threads_per_worker: threads each worker's backends may use.
    :param progress: show a progress bar.
    """

    #: Registry name (set by :func:`executor`).
    name: ClassVar[str] = "?"

    def __init__(
        self, num_workers: int = 1, threads_per_worker: int = 1, progress: bool = True
    ) -> None:
        if num_workers < 1 or threads_per_worker < 1:
            raise ValueError(
                f"num_workers and threads_per_worker must be >= 1, got {num_workers} and "
                f"{threads_per_worker}"
            )
        self.num_workers = num_workers
        self.threads_per_worker = threads_per_worker
        self.progress = progress

    @classmethod
    def from_config(cls, cfg: Any, progress: bool = True) -> "Executor":
        """The executor of an ``engine`` config section (:class:`~.config.EngineConfig`)."""
        return cls(
            num_workers=cfg.num_workers,
            threads_per_worker=cfg.threads_per_worker,
            progress=progress,
            **dict(cfg.options),
        )

    @abstractmethod
    def execute(
        self,
        stage: Stage,
        shards: list[Path],
        output_dir: Path,
        on_progress: Callable[[int], None],
    ) -> Iterator[dict]:
        """Run :func:`process_shard` for every shard (in any order, anywhere) and yield each
        shard's counts as it finishes; call ``on_progress(n)`` as input cuts are done."""

    def run(
        self, stage: Stage, inputs: Pathlike | Sequence[Pathlike], output_dir: Pathlike
    ) -> StageReport:
        """Run ``stage`` on every input shard not already done; return the stage's counts.

        :param inputs: a stage directory, a shard manifest, or a list of shard manifests
            (``cuts.NNNNNN.jsonl.gz``).
        :param output_dir: the stage directory written (see the module docstring).
        """
        output_dir = Path(output_dir)
        (output_dir / DONE_DIR).mkdir(parents=True, exist_ok=True)
        if isinstance(inputs, (str, Path)):
            inputs = list_shards(inputs) if Path(inputs).is_dir() else [Path(inputs)]
        shards = [Path(p) for p in inputs]
        report = StageReport(stage=stage.name, shards=len(shards))
        todo = []
        for shard in shards:
            done = ShardFiles(shard, output_dir).read_done()
            if done is None:
                todo.append(shard)
            else:
                report.add(done)
                report.shards_skipped += 1
        if report.shards_skipped:
            logger.info(
                "%s: %d of %d shards already done, resuming",
                stage.name,
                report.shards_skipped,
                len(shards),
            )
        if todo:
            total = sum(_count_lines(p) for p in todo)
            with tqdm(total=total, desc=stage.name, unit="cut", disable=not self.progress) as bar:
                for counts in self.execute(stage, todo, output_dir, bar.update):
                    report.add(counts)
        return report


def _count_lines(path: Path) -> int:
    with gzip.open(path, "rt") as f:
        return sum(1 for _ in f)


# --- the registry ---------------------------------------------------------------------------------

#: Executors by name (``engine: {name: ...}``); built-in ones are imported on first lookup.
EXECUTORS: Registry[type[Executor]] = Registry("engine", ("lhotse_triplets.engine.local",))


def executor(name: str) -> Callable[[type[Executor]], type[Executor]]:
    """Class decorator: make an :class:`Executor` available as ``engine: {name: NAME}``."""

    def wrapper(cls: type[Executor]) -> type[Executor]:
        if not (isinstance(cls, type) and issubclass(cls, Executor)):
            raise TypeError(f"@executor({name!r}) needs an Executor subclass, got {cls!r}")
        cls.name = name
        return EXECUTORS.register(name)(cls)

    return wrapper


def available_executors() -> list[str]:
    """Registered executor names, sorted."""
    return EXECUTORS.names()


def get_executor(cfg: Any, progress: bool = True) -> Executor:
    """The executor an ``engine`` config section names, built from it.

    :raises ValueError: for an unknown name (the known ones are listed).
    """
    return EXECUTORS.get(cfg.name).from_config(cfg, progress=progress)
