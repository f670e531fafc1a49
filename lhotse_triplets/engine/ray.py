"""Stages on a Ray cluster: ``engine: {name: ray, address: auto|ray://HOST:10001|null}``.

Each stage runs as a pool of Ray actors: every actor holds the stage and builds its backends
(its models) once, then runs :func:`~lhotse_triplets.engine.base.process_shard` on one shard after
another. What an actor reserves comes from the stage's backend configs (``num_gpus``,
``num_cpus``; see :func:`~lhotse_triplets.transforms.registry.stage_resources`), and how many
actors a stage gets from its ``concurrency`` (default ``engine.num_workers``), so a TTS on 0.5
GPU and an ASR on 1 GPU share a node. Shards are files on storage every node sees (the run
directory), with the same layout, done markers and failed logs as the local executor: a run
started locally resumes on Ray and the reverse.

With ``engine.streaming: true``, :meth:`RayExecutor.run_chain` chains the stages shard by shard:
a shard goes on to the next stage's actors as soon as it is done, so synthesis (on GPU) and
scoring (on GPU) work at the same time instead of waiting for each other. Every shard is still
written and marked per stage, so a killed run resumes.

The actors are plain Ray actors, whose methods run on the worker process's main thread, so the
per-item time limit (``SIGALRM``, :func:`~lhotse_triplets.transforms.base.time_limit`) holds as it
does locally. (Ray Data's ``map_batches`` runs a class UDF on a separate thread, where no signal
can cut off a hung call; see docs/scale-out.md.) A worker that dies (killed, out of
memory) is restarted by Ray and its shard redone from scratch, up to ``max_restarts`` times.

Example::

    from lhotse_triplets.engine.ray import RayExecutor

    ex = RayExecutor(address="auto", num_workers=4, threads_per_worker=2)
    report = ex.run(build_stage("score", cfg, "out"), "out/synthesize", "out/score")
"""

import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lhotse_triplets.engine.base import (
    Executor,
    Pathlike,
    Progress,
    RunError,
    ShardFiles,
    StageReport,
    StageStopped,
    executor,
    finished_counts,
    input_shards,
    prepare_output,
    process_shard,
    unmark_empty,
)
from lhotse_triplets.threads import THREAD_VARIABLES, set_worker_threads
from lhotse_triplets.transforms.base import Stage

logger = logging.getLogger(__name__)

INSTALL = "pip install 'lhotse-triplets[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"engine.name=ray needs Ray: {INSTALL}") from e
    return ray


class ShardWorker:
    """One Ray actor of a stage: the stage (backends built on first use, kept) and the worker's
    thread limit. Runs in the actor's process."""

    def __init__(self, stage: Stage, threads: int) -> None:
        set_worker_threads(threads)
        self.stage = stage

    def run(self, input_path: str, output_dir: str) -> dict:
        """:func:`process_shard` of one shard; the counts with ``failed`` as a plain dict."""
        counts = process_shard(self.stage, input_path, output_dir)
        return {**counts, "failed": dict(counts["failed"])}

    def pid(self) -> int:
        """The actor's process id (tests kill it)."""
        return os.getpid()


@executor("ray")
class RayExecutor(Executor):
    """Stages as Ray actor pools (see the module docstring).

    :param address: the cluster to join: ``None`` (the one ``RAY_ADDRESS`` names, else a local
        Ray started for this process), ``"auto"`` (a running one on this machine) or
        ``"ray://HOST:10001"``. When Ray is already initialised in this process it is used.
    :param streaming: :meth:`run_chain` overlaps the stages, shard by shard.
    :param max_restarts: times Ray restarts a dead worker (and redoes its shard).
    :param runtime_env: Ray runtime environment of the run (``ray.init``), e.g.
        ``{"pip": ["lhotse-triplets[all]"]}`` where the nodes lack the package.
    :param init_options: other keyword arguments of ``ray.init`` (e.g. ``{"num_cpus": 8}`` for
        a local Ray).
    """

    engine_keys = ("address", "streaming")

    @classmethod
    def check_available(cls) -> None:
        import_ray()

    def __init__(
        self,
        num_workers: int = 1,
        threads_per_worker: int | None = None,
        progress: bool = True,
        stop_after_failures: int | None = None,
        address: str | None = None,
        streaming: bool = False,
        max_restarts: int = 3,
        runtime_env: dict | None = None,
        init_options: dict | None = None,
    ) -> None:
        super().__init__(num_workers, threads_per_worker, progress, stop_after_failures)
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
        self.address = address
        self.streaming = bool(streaming)
        self.max_restarts = max_restarts
        self.runtime_env = dict(runtime_env or {})
        self.init_options = dict(init_options or {})

    def connect(self) -> Any:
        """Join (or start) the cluster once per process; return the ``ray`` module."""
        ray = import_ray()
        if not ray.is_initialized():
            options = {"include_dashboard": False, "logging_level": logging.WARNING}
            options.update(self.init_options)
            ray.init(address=self.address, runtime_env=self.runtime_env or None, **options)
            logger.info("Ray: %s", ray.cluster_resources())
        return ray

    def worker_options(self, stage: Stage, cpu_scale: float = 1.0) -> dict[str, Any]:
        """The ``ray.remote`` options of one actor of ``stage`` (resources, restarts, the
        thread variables of its process)."""
        resources = stage.resources or {}
        cpus = resources.get("num_cpus")
        return {
            "num_cpus": cpus if cpus is not None else self.threads_per_worker * cpu_scale,
            "num_gpus": resources.get("num_gpus") or 0,
            "max_restarts": self.max_restarts,
            "max_task_retries": self.max_restarts,
            "runtime_env": {
                "env_vars": {name: str(self.threads_per_worker) for name in THREAD_VARIABLES}
            },
        }

    def execute(
        self,
        stage: Stage,
        shards: list[Path],
        output_dir: Path,
        on_progress: Callable[[int], None],
    ) -> Iterator[dict]:
        flow = _Flow(self, [stage], [output_dir])
        try:
            for shard in shards:
                flow.add(0, shard)
            for _, _, counts in flow.results():
                on_progress(counts["cuts_in"])
                yield counts
        finally:
            flow.close()

    def run_chain(
        self,
        inputs: Pathlike | Sequence[Pathlike],
        chain: Sequence[tuple[Stage, Pathlike]],
        on_start: Callable[[Stage], None] | None = None,
        on_report: Callable[[StageReport], None] | None = None,
    ) -> list[StageReport]:
        """Like :meth:`Executor.run_chain`; with ``streaming`` every stage's actors work at once
        and each shard moves on to the next stage as soon as it is done."""
        if not self.streaming or len(chain) < 2:
            return super().run_chain(inputs, chain, on_start, on_report)
        stages = [stage for stage, _ in chain]
        dirs = [Path(d) for _, d in chain]
        for stage, output_dir in zip(stages, dirs):
            prepare_output(stage.name, output_dir)
            if on_start is not None:
                on_start(stage)
        shards = input_shards(inputs)
        stream = _Stream(self, stages, dirs, shards)
        reports = stream.run()
        for report in reports:
            if on_report is not None:
                on_report(report)
        return reports


class _Flow:
    """Shards flowing through the actor pools of a chain of stages: ``add(k, shard)`` queues a
    shard for stage ``k``; :meth:`results` runs them on the stage's actors (made when its first
    shard comes) and yields ``(k, shard, counts)`` as they finish."""

    def __init__(self, executor: RayExecutor, stages: list[Stage], dirs: list[Path]) -> None:
        self.ray = executor.connect()
        self.executor = executor
        self.stages = stages
        self.dirs = dirs
        self.queues: list[deque[Path]] = [deque() for _ in stages]
        self.actors: list[list[Any]] = [[] for _ in stages]
        self.idle: list[list[Any]] = [[] for _ in stages]
        self.running: dict[Any, tuple[int, Path, Any]] = {}
        self.cpu_scale = _cpu_scale(self.ray, executor, stages) if len(stages) > 1 else 1.0

    def add(self, k: int, shard: Path) -> None:
        self.queues[k].append(shard)

    def results(self) -> Iterator[tuple[int, Path, dict]]:
        while True:
            for k in reversed(range(len(self.stages))):  # later stages first: drain the chain
                self._submit(k)
            if not self.running:
                return
            [ref], _ = self.ray.wait(list(self.running), num_returns=1)
            k, shard, actor = self.running.pop(ref)
            counts = self._get(ref, k, shard)
            self.idle[k].append(actor)
            yield k, shard, counts

    def release(self, k: int) -> None:
        """Stop stage ``k``'s actors (it has no more work): their resources go to the others."""
        for actor in self.actors[k]:
            self.ray.kill(actor)
        self.actors[k], self.idle[k] = [], []

    def close(self) -> None:
        for k in range(len(self.stages)):
            self.release(k)
        self.running.clear()

    def _submit(self, k: int) -> None:
        queue = self.queues[k]
        if queue and not self.actors[k]:
            self._start(k, len(queue))
        while queue and self.idle[k]:
            shard, actor = queue.popleft(), self.idle[k].pop()
            self.running[actor.run.remote(str(shard), str(self.dirs[k]))] = (k, shard, actor)

    def _start(self, k: int, queued: int) -> None:
        stage = self.stages[k]
        count = self.executor.workers_of(stage)
        if len(self.stages) == 1:
            count = min(count, queued)
        options = self.executor.worker_options(stage, self.cpu_scale)
        remote = self.ray.remote(ShardWorker).options(**options)
        threads = self.executor.threads_per_worker
        self.actors[k] = [remote.remote(stage, threads) for _ in range(count)]
        self.idle[k] = list(self.actors[k])
        logger.info("%s: %d Ray workers, each %s", stage.name, count, _resources(options))

    def _get(self, ref: Any, k: int, shard: Path) -> dict:
        """The counts of a finished shard; a shard's error as raised there (a
        :class:`RunError` as itself), a worker that died too often as a :class:`RunError`."""
        ray = self.ray
        try:
            counts = ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, RunError):
                raise e.cause from None
            raise
        except ray.exceptions.ActorDiedError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RunError(
                f"{self.stages[k].name}: its Ray worker died running {shard.name} "
                f"{self.executor.max_restarts + 1} times ({first})"
            ) from e
        counts["failed"] = Counter(counts["failed"])
        return counts


class _Stream:
    """One streaming run of a chain: reports, the progress bar, resumption and early stops."""

    def __init__(
        self, executor: RayExecutor, stages: list[Stage], dirs: list[Path], shards: list[Path]
    ) -> None:
        self.executor = executor
        self.stages = stages
        self.dirs = dirs
        self.shards = shards
        self.reports = [StageReport(stage=s.name, shards=len(shards)) for s in stages]
        self.counted = [0] * len(stages)
        self.flow: _Flow | None = None

    def run(self) -> list[StageReport]:
        names = " -> ".join(s.name for s in self.stages)
        total = len(self.shards) * len(self.stages)
        disable = not self.executor.progress
        with tqdm(total=total, desc=names, unit="shard", disable=disable) as bar:
            limit = self.executor.stop_after_failures
            watchers = [Progress(bar, report, limit) for report in self.reports]
            self.flow = _Flow(self.executor, self.stages, self.dirs)
            try:
                for shard in self.shards:
                    self._offer(0, shard, watchers)
                for k, shard, counts in self.flow.results():
                    self.reports[k].add(counts)
                    self._counted(k, watchers)
                    self._offer(k + 1, self.dirs[k] / shard.name, watchers)
            except StageStopped:
                for k in range(len(self.stages)):
                    unmark_empty(self.shards, self.dirs[k])
                raise
            finally:
                self.flow.close()
        return self.reports

    def _offer(self, k: int, shard: Path, watchers: list[Progress]) -> None:
        """Queue ``shard`` for stage ``k``, or count it when that stage already finished it (an
        earlier run) and offer its output to the next stage."""
        if k == len(self.stages):
            return
        files = ShardFiles(shard, self.dirs[k])
        done = finished_counts(self.stages[k].name, files)
        if done is None:
            self.flow.add(k, shard)
            return
        self.reports[k].add(done)
        self.reports[k].shards_skipped += 1
        self._counted(k, watchers)
        self._offer(k + 1, files.cuts, watchers)

    def _counted(self, k: int, watchers: list[Progress]) -> None:
        self.counted[k] += 1
        watchers[k](1)
        watchers[k].watch()
        if self.counted[k] == len(self.shards):
            self.flow.release(k)


def _cpu_scale(ray: Any, executor: RayExecutor, stages: list[Stage]) -> float:
    """Factor on the default CPU request of streaming actors, so that every stage's actors fit
    on the cluster at once (all stages work together; on a small machine they share its CPUs,
    as processes do): 1 when they fit."""
    default = sum(
        executor.workers_of(s) * executor.threads_per_worker
        for s in stages
        if (s.resources or {}).get("num_cpus") is None
    )
    explicit = sum(
        executor.workers_of(s) * s.resources["num_cpus"]
        for s in stages
        if (s.resources or {}).get("num_cpus") is not None
    )
    available = float(ray.cluster_resources().get("CPU", 0)) - explicit
    if default <= 0 or available >= default:
        return 1.0
    scale = max(available, 0.01 * default) / default
    logger.info(
        "streaming: the stages' workers ask for %g CPUs, the cluster has %g free; each asks for "
        "%.2f of its threads' CPUs so that all stages run at once",
        default,
        available,
        scale,
    )
    return scale


def _resources(options: dict[str, Any]) -> str:
    return f"{options['num_cpus']:g} CPU, {options['num_gpus']:g} GPU"
