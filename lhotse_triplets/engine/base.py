"""The executor seam: who runs a stage over sharded manifests, and the bookkeeping every
executor shares (shard listing, done markers, failed logs, atomic renames).

Layout of a stage directory::

    <stage_dir>/cuts.000000.jsonl.gz     output cuts of input shard 0
    <stage_dir>/failed.000000.jsonl      {"cut_id", "stage", "reason"} per failed item
    <stage_dir>/.done/cuts.000000.json   marker: the shard is finished (with its counts)

A shard's outputs are written to temporary files (``.tmp.*``) and renamed when the shard is
complete, then its marker is written; a rerun skips marked shards and redoes an unfinished one from
scratch, so a killed run resumes with no duplicates and nothing lost, whichever executor ran it.
A rerun also removes the temporary files a killed run left, and redoes a marked shard whose
manifest is torn (gzip CRC or end of file, or a line that is not JSON), naming the file.

A stage whose first ``stop_after_failures`` items all fail (nothing came out yet) stops with
:class:`StageStopped`: a broken backend or configuration, not bad items. Shards of that stage
finished with no output are unmarked, so a rerun after the fix redoes them.

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

import errno
import gzip
import json
import logging
import zlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lhotse import CutSet
from lhotse.lazy import LazyIteratorChain
from tqdm.auto import tqdm

from lhotse_triplets.errors import Failure, FailureLog
from lhotse_triplets.registry import Registry
from lhotse_triplets.threads import auto_threads
from lhotse_triplets.transforms.base import Stage, batched

logger = logging.getLogger(__name__)

Pathlike = str | Path
SHARD_GLOB = "cuts.*.jsonl.gz"
DONE_DIR = ".done"
#: Prefix of the temporary files a shard (or an audio file) is written to before its rename.
TMP_PREFIX = ".tmp."
#: ``errno`` values that mean "this output cannot be written" (a one-line error, not a traceback).
WRITE_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG}
)


# --- errors ---------------------------------------------------------------------------------------


class RunError(RuntimeError):
    """A stage or run cannot go on (not one bad item): the message is one line naming the stage
    or file and the reason. ``lhotse-triplets`` shows it as ``Error: ...`` and exits with 1."""


class StageStopped(RunError):
    """A stage's first ``stop_after_failures`` items all failed (see :class:`Executor`)."""


class NotWritable(RunError):
    """An output file or folder cannot be written (permissions, full or read-only disk)."""


class TornManifest(RunError):
    """A manifest that cannot be read to its end (truncated or corrupt gzip, a line not JSON)."""


def not_writable(error: OSError, what: str, path: Pathlike | None = None) -> NotWritable | None:
    """A :class:`NotWritable` for ``error`` when it means an output cannot be written, else
    ``None``. The message names the file (``error.filename``, else ``path``) and the reason.

    Example::

        >>> not_writable(OSError(errno.ENOSPC, "No space left on device"), "gate", "out/gate")
        NotWritable('gate: cannot write in out/gate: No space left on device')
    """
    if error.errno not in WRITE_ERRNOS:
        return None
    where = error.filename if error.filename is not None else f"in {path}"
    reason = error.strerror or str(error)
    return NotWritable(f"{what}: cannot write {where}: {reason}")


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


def check_manifest(path: Pathlike) -> str | None:
    """Why the manifest ``path`` cannot be read to its end (``None`` when it can): a truncated
    or corrupt gzip (end of file, CRC) or a line that is not a JSON object. Reads the whole file.

    Example::

        >>> check_manifest("out/gate/cuts.000003.jsonl.gz")
        'Compressed file ended before the end-of-stream marker was reached'
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip() and not isinstance(json.loads(line), dict):
                    return f"line {number} is not a JSON object"
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        return str(e) or type(e).__name__
    except ValueError as e:
        return f"line {number} is not JSON ({e})"
    return None


def remove_temporary(folder: Pathlike, recursive: bool = False) -> list[Path]:
    """Remove the temporary files (``.tmp.*``) a killed run left in ``folder``; return them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(f"{TMP_PREFIX}*") if recursive else folder.glob(f"{TMP_PREFIX}*")
    removed = [p for p in found if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    if removed:
        logger.info("Removed %d temporary files a killed run left in %s", len(removed), folder)
    return removed


def _torn_shards(shards: Iterable[Path]) -> list[tuple[Path, str]]:
    """``(shard, reason)`` for every shard that cannot be read to its end."""
    return [(p, reason) for p in shards if (reason := check_manifest(p)) is not None]


def shard_cuts(cuts: CutSet, output_dir: Pathlike, shard_size: int) -> list[Path]:
    """Split ``cuts`` into shards of ``shard_size`` in ``output_dir`` (done once, then reused;
    redone when a shard of an earlier split is torn, with a warning naming it).

    :raises ValueError: when ``shard_size`` is not a positive integer.
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be an integer >= 1, got {shard_size!r}")
    output_dir = Path(output_dir)
    marker = output_dir / ".completed"
    if marker.exists():
        torn = _torn_shards(list_shards(output_dir))
        if not torn:
            return list_shards(output_dir)
        for path, reason in torn:
            logger.warning("%s is torn (%s); splitting the prompts again", path, reason)
        marker.unlink()
    output_dir.mkdir(parents=True, exist_ok=True)
    for old in list_shards(output_dir):
        old.unlink()
    cuts.split_lazy(output_dir, chunk_size=shard_size, prefix="cuts", num_digits=6)
    marker.touch()
    return list_shards(output_dir)


def shard_inputs(source: Pathlike, shard_dir: Pathlike, shard_size: int) -> list[Path]:
    """The input shards of a stage: a stage directory's own shards, or ``source`` (a manifest)
    split into ``shard_dir`` (once).

    :raises TornManifest: when ``source`` cannot be read to its end (naming it).
    """
    source = Path(source)
    shards = list_shards(source) if source.is_dir() else []
    if shards:
        return shards
    try:
        return shard_cuts(read_cuts(source), shard_dir, shard_size)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise TornManifest(f"cannot read {source} to its end: {e}") from e


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

    def unmark(self) -> None:
        """Forget that the shard is finished (a rerun redoes it; its outputs stay until then)."""
        self.done.unlink(missing_ok=True)


def unmark_failed_shards(stage_dir: Pathlike, also: Iterable[str] = ()) -> list[str]:
    """Unmark the finished shards of ``stage_dir`` that have failed items, and those named in
    ``also`` (shard file names), so that the next run redoes them (whole shards: each is
    replaced atomically when it is done again). Return the names unmarked, sorted.

    Example::

        >>> unmark_failed_shards("out/synthesize")
        ['cuts.000003.jsonl.gz']
    """
    also = set(also)
    names = []
    for marker in sorted((Path(stage_dir) / DONE_DIR).glob("*.json")):
        files = ShardFiles(marker.parent.parent / (marker.stem + ".jsonl.gz"), Path(stage_dir))
        done = files.read_done()
        if files.input.name in also or (done is not None and sum(done["failed"].values())):
            files.unmark()
            names.append(files.input.name)
    return sorted(names)


def process_shard(
    stage: Stage,
    input_path: Pathlike,
    output_dir: Pathlike,
    on_cut: Callable[[int], None] | None = None,
) -> dict:
    """Run ``stage`` over one shard file; write its outputs, failed log and done marker.

    The unit of work every executor runs (in this process, a worker process or an actor).
    Outputs go to hidden temporary files renamed into place when the shard is complete; when the
    shard fails they are removed (a stopped stage keeps the shard's failed log, unmarked).

    :param on_cut: called with the number of input cuts after each batch (progress). When it
        has a ``watch(counts)`` method (the progress of :meth:`Executor.run`), that is called too
        with the shard's counts so far; it raises :class:`StageStopped` to stop the stage.
    :return: ``{"cuts_in", "cuts_out", "failed": Counter(reason -> n)}``.
    :raises NotWritable: when an output cannot be written (naming it).
    :raises TornManifest: when the input shard cannot be read to its end.
    """
    files = ShardFiles(Path(input_path), Path(output_dir))
    tmp_out = files.cuts.with_name(f"{TMP_PREFIX}{files.cuts.name}")
    tmp_failed = files.failed.with_name(f"{TMP_PREFIX}{files.failed.name}")
    try:
        counts = _write_shard(stage, files.input, tmp_out, tmp_failed, on_cut)
        tmp_out.replace(files.cuts)
        tmp_failed.replace(files.failed)
        files.done.parent.mkdir(exist_ok=True)
        files.done.write_text(json.dumps({**counts, "failed": dict(counts["failed"])}))
    except StageStopped:
        tmp_out.unlink(missing_ok=True)
        tmp_failed.replace(files.failed)  # the failures stay in the run's failed log
        raise
    except BaseException as e:
        tmp_out.unlink(missing_ok=True)
        tmp_failed.unlink(missing_ok=True)
        wrapped = _shard_error(e, stage.name, files)
        if wrapped is e:
            raise
        raise wrapped from e
    return counts


def _write_shard(
    stage: Stage,
    input_path: Path,
    tmp_out: Path,
    tmp_failed: Path,
    on_cut: Callable[[int], None] | None,
) -> dict:
    """Run ``stage`` over ``input_path`` into the temporary outputs; return the counts."""
    watch = getattr(on_cut, "watch", None)
    counts = {"cuts_in": 0, "cuts_out": 0, "failed": Counter()}
    stage.setup()
    with CutSet.open_writer(tmp_out, overwrite=True) as writer, FailureLog(tmp_failed) as flog:
        counts["failed"] = flog.counts
        for batch in batched(CutSet.from_jsonl_lazy(input_path), max(1, stage.batch_size)):
            for item in stage.process(batch):
                if isinstance(item, Failure):
                    flog.write(item)
                else:
                    writer.write(item)
                    counts["cuts_out"] += 1
            counts["cuts_in"] += len(batch)
            if on_cut is not None:
                on_cut(len(batch))
            if watch is not None:
                watch(counts)
    counts["failed"] = Counter(flog.counts)
    return counts


def _shard_error(error: BaseException, stage: str, files: ShardFiles) -> BaseException:
    """The error to raise for ``error`` in a shard: a one-line :class:`RunError` for outputs
    that cannot be written and inputs that cannot be read, else ``error`` itself."""
    if isinstance(error, OSError) and (wrapped := not_writable(error, stage, files.output_dir)):
        return wrapped
    if isinstance(error, (EOFError, zlib.error, gzip.BadGzipFile)):
        return TornManifest(f"{stage}: cannot read {files.input} to its end: {error}")
    return error


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
    :param threads_per_worker: threads each worker's backends may use (``None``: the usable
        CPUs shared out among ``num_workers``; see :mod:`lhotse_triplets.threads`).
    :param progress: show a progress bar.
    :param stop_after_failures: stop a stage with :class:`StageStopped` when its first N items
        all fail (nothing came out yet); ``None``: never. Checked after each batch where shards
        run in this process (through ``on_progress``), after each shard everywhere.
    """

    #: Registry name (set by :func:`executor`).
    name: ClassVar[str] = "?"
    #: ``engine`` keys (beyond the common ones) this executor takes as constructor arguments;
    #: another executor refuses them when they are set (e.g. ``engine.streaming`` on ``local``).
    engine_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        num_workers: int = 1,
        threads_per_worker: int | None = None,
        progress: bool = True,
        stop_after_failures: int | None = None,
    ) -> None:
        if num_workers < 1 or (threads_per_worker is not None and threads_per_worker < 1):
            raise ValueError(
                f"num_workers and threads_per_worker must be >= 1, got {num_workers} and "
                f"{threads_per_worker}"
            )
        if stop_after_failures is not None and stop_after_failures < 1:
            raise ValueError(f"stop_after_failures must be >= 1 or null, got {stop_after_failures}")
        self.num_workers = num_workers
        self.threads_per_worker = (
            threads_per_worker if threads_per_worker is not None else auto_threads(num_workers)
        )
        self.progress = progress
        self.stop_after_failures = stop_after_failures

    @classmethod
    def check_available(cls) -> None:
        """Raise ``ImportError`` (saying what to install) when the executor cannot run here."""
        return None

    @classmethod
    def from_config(cls, cfg: Any, progress: bool = True) -> "Executor":
        """The executor of an ``engine`` config section (:class:`~.config.EngineConfig`).

        :raises ValueError: when the section sets an ``engine`` key this executor does not take
            (e.g. ``streaming: true`` for ``local``), naming it.
        """
        own = {key: getattr(cfg, key, None) for key in cls.engine_keys}
        if (unsupported := unsupported_engine_key(cls, cfg)) is not None:
            key, problem = unsupported
            raise ValueError(f"engine.{key}: {problem}")
        return cls(
            num_workers=cfg.num_workers,
            threads_per_worker=cfg.threads_per_worker,
            progress=progress,
            stop_after_failures=getattr(cfg, "stop_after_failures", None),
            **own,
            **dict(cfg.options),
        )

    def workers_of(self, stage: Stage) -> int:
        """Workers (processes, actors) ``stage`` gets: its ``concurrency``, else ``num_workers``."""
        return (stage.resources or {}).get("concurrency") or self.num_workers

    @abstractmethod
    def execute(
        self,
        stage: Stage,
        shards: list[Path],
        output_dir: Path,
        on_progress: Callable[[int], None],
    ) -> Iterator[dict]:
        """Run :func:`process_shard` for every shard (in any order, anywhere) and yield each
        shard's counts as it finishes; call ``on_progress(n)`` as input cuts are done (pass it
        as ``on_cut`` where shards run in this process)."""

    def run(
        self, stage: Stage, inputs: Pathlike | Sequence[Pathlike], output_dir: Pathlike
    ) -> StageReport:
        """Run ``stage`` on every input shard not already done; return the stage's counts.

        :param inputs: a stage directory, a shard manifest, or a list of shard manifests
            (``cuts.NNNNNN.jsonl.gz``).
        :param output_dir: the stage directory written (see the module docstring).
        :raises StageStopped: when the stage's first ``stop_after_failures`` items all fail.
        :raises NotWritable: when ``output_dir`` or a file in it cannot be written.
        """
        output_dir = Path(output_dir)
        prepare_output(stage.name, output_dir)
        shards = input_shards(inputs)
        report = StageReport(stage=stage.name, shards=len(shards))
        todo = _resume(stage.name, shards, output_dir, report)
        if todo:
            total = sum(_count_lines(p) for p in todo)
            with tqdm(total=total, desc=stage.name, unit="cut", disable=not self.progress) as bar:
                progress = Progress(bar, report, self.stop_after_failures)
                try:
                    with closing(self.execute(stage, todo, output_dir, progress)) as results:
                        for counts in results:
                            report.add(counts)
                            progress.watch()
                except StageStopped:
                    unmark_empty(shards, output_dir)
                    raise
        return report

    def run_chain(
        self,
        inputs: Pathlike | Sequence[Pathlike],
        chain: Sequence[tuple[Stage, Pathlike]],
        on_start: Callable[[Stage], None] | None = None,
        on_report: Callable[[StageReport], None] | None = None,
    ) -> list[StageReport]:
        """Run stages one after another, each reading the previous one's directory: ``chain``
        is ``(stage, output_dir)`` pairs, the first stage reads ``inputs``. Executors that can
        overlap stages (:class:`~lhotse_triplets.engine.ray.RayExecutor` with ``streaming``)
        override this; the outputs are the same.

        :param on_start: called with each stage before it starts (all of them first when the
            stages overlap).
        :param on_report: called with each stage's report in chain order when it is finished
            (after all of them when they overlap); an error it raises stops the chain.
        """
        reports = []
        for stage, output_dir in chain:
            if on_start is not None:
                on_start(stage)
            reports.append(self.run(stage, inputs, output_dir))
            if on_report is not None:
                on_report(reports[-1])
            inputs = output_dir
        return reports


def prepare_output(stage: str, output_dir: Path) -> None:
    """Make a stage directory (and its ``.done/``) and remove a killed run's temporary files.

    :raises NotWritable: when it cannot be written.
    """
    try:
        (output_dir / DONE_DIR).mkdir(parents=True, exist_ok=True)
        remove_temporary(output_dir)
    except OSError as e:
        if (wrapped := not_writable(e, stage, output_dir)) is None:
            raise
        raise wrapped from e


def finished_counts(stage: str, files: ShardFiles) -> dict | None:
    """The counts of a finished shard; ``None`` when it is still to do (unfinished, or finished
    with a torn manifest: then unmarked, with a warning naming it)."""
    done = files.read_done()
    if done is not None and (torn := check_manifest(files.cuts)) is not None:
        logger.warning("%s: %s is torn (%s); redoing its shard", stage, files.cuts, torn)
        files.unmark()
        done = None
    return done


def _resume(stage: str, shards: list[Path], output_dir: Path, report: StageReport) -> list[Path]:
    """Count the finished shards into ``report``; return those still to do (unfinished ones,
    and finished ones whose manifest is torn, with a warning naming it)."""
    todo = []
    for shard in shards:
        done = finished_counts(stage, ShardFiles(shard, output_dir))
        if done is None:
            todo.append(shard)
        else:
            report.add(done)
            report.shards_skipped += 1
    if report.shards_skipped:
        logger.info(
            "%s: %d of %d shards already done, resuming", stage, report.shards_skipped, len(shards)
        )
    return todo


def input_shards(inputs: Pathlike | Sequence[Pathlike]) -> list[Path]:
    """The shard manifests ``inputs`` names: a stage directory's shards, a manifest, a list."""
    if isinstance(inputs, (str, Path)):
        return list_shards(inputs) if Path(inputs).is_dir() else [Path(inputs)]
    return [Path(p) for p in inputs]


def unmark_empty(shards: list[Path], output_dir: Path) -> None:
    """Unmark the finished shards that gave no cut (a stopped stage redoes them when rerun)."""
    for shard in shards:
        files = ShardFiles(shard, output_dir)
        done = files.read_done()
        if done is not None and not done["cuts_out"]:
            files.unmark()


class Progress:
    """The ``on_progress`` of :meth:`Executor.run`: advances the bar; :meth:`watch` stops the
    stage when its first ``limit`` items all failed."""

    def __init__(self, bar: Any, report: StageReport, limit: int | None) -> None:
        self.bar = bar
        self.report = report
        self.limit = limit

    def __call__(self, n: int) -> None:
        self.bar.update(n)

    def watch(self, shard: dict | None = None) -> None:
        """Raise :class:`StageStopped` when nothing came out of the stage (the finished shards
        and ``shard``, the counts of the one in progress) and at least ``limit`` items failed."""
        if self.limit is None:
            return
        failed = Counter(self.report.failed)
        cuts_out = self.report.cuts_out
        if shard is not None:
            failed.update(shard["failed"])
            cuts_out += shard["cuts_out"]
        if cuts_out or sum(failed.values()) < self.limit:
            return
        common = "; ".join(f"{n} x {reason}" for reason, n in failed.most_common(3))
        raise StageStopped(
            f"{self.report.stage} stopped: its first {sum(failed.values())} items all failed "
            f"(engine.stop_after_failures={self.limit}); most common: {common}. Fix the cause and "
            "rerun: the failed shards are redone"
        )


def _count_lines(path: Path) -> int:
    """Lines of a shard, for the progress bar (a torn shard: those before the break; the shard
    itself then fails with :class:`TornManifest`)."""
    count = 0
    try:
        with gzip.open(path, "rt") as f:
            for _ in f:
                count += 1
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        pass
    return count


# --- the registry ---------------------------------------------------------------------------------

#: Executors by name (``engine: {name: ...}``); built-in ones are imported on first lookup.
EXECUTORS: Registry[type[Executor]] = Registry(
    "engine", ("lhotse_triplets.engine.local", "lhotse_triplets.engine.ray")
)


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


#: ``engine`` keys only some executors take (``Executor.engine_keys``).
OPTIONAL_ENGINE_KEYS = ("address", "streaming")


def unsupported_engine_key(cls: type[Executor], cfg: Any) -> tuple[str, str] | None:
    """``(key, problem)`` for the first key of :data:`OPTIONAL_ENGINE_KEYS` the ``engine``
    section ``cfg`` sets that executor ``cls`` does not take (``None`` when there is none)."""
    for key in OPTIONAL_ENGINE_KEYS:
        if getattr(cfg, key, None) and key not in cls.engine_keys:
            takers = [n for n in EXECUTORS.names() if key in EXECUTORS.get(n).engine_keys]
            what = f"executor {cls.name!r}"
            return key, f"not an option of {what} (executors that take it: {', '.join(takers)})"
    return None


def get_executor(cfg: Any, progress: bool = True) -> Executor:
    """The executor an ``engine`` config section names, built from it.

    :raises ValueError: for an unknown name (the known ones are listed).
    """
    return EXECUTORS.get(cfg.name).from_config(cfg, progress=progress)
