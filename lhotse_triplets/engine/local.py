"""The default executor: shards run in this process, or in a pool of worker processes.

``engine: {name: local, num_workers: N, threads_per_worker: T}``: with ``N > 1`` each shard runs
in one of ``N`` spawned worker processes (each builds its own backends once), whose backends are
limited to ``T`` threads (:mod:`lhotse_triplets.threads`: CTranslate2, onnxruntime, torch,
OpenMP) so that the workers do not oversubscribe the cores; ``T`` defaults to the usable CPUs
shared out among the workers. With ``N = 1`` the backends built in this process get ``T`` too.
"""

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from lhotse_triplets.engine.base import Executor, executor, process_shard
from lhotse_triplets.threads import set_worker_threads, thread_limit
from lhotse_triplets.transforms.base import Stage


@executor("local")
class LocalExecutor(Executor):
    """Shards in this process (``num_workers=1``) or in spawned worker processes.

    Example::

        report = LocalExecutor(num_workers=2, threads_per_worker=1).run(
            Score(...), "out/synthesize", "out/score"
        )
        print(report)
    """

    def execute(
        self,
        stage: Stage,
        shards: list[Path],
        output_dir: Path,
        on_progress: Callable[[int], None],
    ) -> Iterator[dict]:
        workers = self.workers_of(stage)
        if workers <= 1:
            with thread_limit(self.threads_per_worker):
                for shard in shards:
                    yield process_shard(stage, shard, output_dir, on_cut=on_progress)
            return
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=set_worker_threads,
            initargs=(self.threads_per_worker,),
        )
        try:
            futures = [pool.submit(process_shard, stage, shard, output_dir) for shard in shards]
            for future in as_completed(futures):
                counts = future.result()
                on_progress(counts["cuts_in"])
                yield counts
        finally:
            # A stopped stage (or a failed shard) waits for the shards running, not the rest.
            pool.shutdown(wait=True, cancel_futures=True)
