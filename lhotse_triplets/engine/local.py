"""The default executor: shards run in this process, or in a pool of worker processes.

``engine: {name: local, num_workers: N, threads_per_worker: T}``: with ``N > 1`` each shard runs
in one of ``N`` spawned worker processes (each builds its own backends once), whose numeric
libraries are limited to ``T`` threads so the workers do not oversubscribe the cores.
"""

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from lhotse_triplets.engine.base import Executor, executor, process_shard
from lhotse_triplets.transforms.base import Stage

#: Environment variables read by the numeric libraries backends use (OpenMP, BLAS, onnxruntime
#: and CTranslate2 through OpenMP, torch's intra-op pool).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Limit the numeric libraries of this (fresh worker) process to ``threads`` threads."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


@executor("local")
class LocalExecutor(Executor):
    """Shards in this process (``num_workers=1``) or in spawned worker processes.

    Example::

        report = LocalExecutor(num_workers=2).run(Score(...), "out/synthesize", "out/score")
        print(report)
    """

    def execute(
        self,
        stage: Stage,
        shards: list[Path],
        output_dir: Path,
        on_progress: Callable[[int], None],
    ) -> Iterator[dict]:
        if self.num_workers <= 1:
            for shard in shards:
                yield process_shard(stage, shard, output_dir, on_cut=on_progress)
            return
        pool = ProcessPoolExecutor(
            max_workers=self.num_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=limit_threads,
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
