"""A stage for executor tests: it records where it ran (process, thread limits) on every cut."""

import os
from typing import Any

from lhotse_triplets.cuts import with_custom
from lhotse_triplets.threads import worker_threads
from lhotse_triplets.transforms.base import Stage


class ThreadProbe(Stage):
    """Passes every cut through with custom ``pid``, ``worker_threads`` (the backends' thread
    limit in the process that ran it) and ``omp_num_threads`` (its ``OMP_NUM_THREADS``)."""

    name = "probe"
    summary = "Record the process and thread limits a stage runs with."

    def __init__(self, batch_size: int = 2) -> None:
        super().__init__()
        self.batch_size = batch_size

    def process_batch(self, cuts: list) -> list[Any]:
        where = {
            "pid": os.getpid(),
            "worker_threads": worker_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
        return [with_custom(cut, **where) for cut in cuts]
