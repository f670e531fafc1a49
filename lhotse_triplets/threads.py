"""How many CPU threads this process's backends may use (one worker of ``engine.num_workers``).

An executor sets the limit once per worker (:func:`set_worker_threads`, from
``engine.threads_per_worker``); every backend that runs a numeric library reads it with
:func:`worker_threads` when it builds its model (CTranslate2 ``cpu_threads``, onnxruntime
``intra_op_num_threads``, ``torch.set_num_threads``), so N workers of T threads use N x T cores
and never oversubscribe the machine. Unset (a plain Python session), a backend may use every CPU
this process may run on.

Example::

    >>> set_worker_threads(2)
    >>> worker_threads()
    2
"""

import contextlib
import os
from collections.abc import Iterator

#: Environment variables read by the numeric libraries backends use (OpenMP, BLAS, and
#: onnxruntime/CTranslate2 through OpenMP), set for the worker and the processes it starts.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_limit: int | None = None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def auto_threads(num_workers: int) -> int:
    """Threads per worker when ``engine.threads_per_worker`` is unset: the usable CPUs shared
    out among ``num_workers`` workers (at least 1)."""
    return max(1, usable_cpus() // max(1, num_workers))


def set_worker_threads(threads: int | None, environment: bool = True) -> None:
    """Limit this process's backends to ``threads`` threads (``None``: lift the limit).

    :param environment: also set the OpenMP/BLAS variables and torch's intra-op pool (do it in
        a worker process before models load; a library reads the variables once).
    """
    global _limit
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ValueError(f"threads must be >= 1 or None, got {threads!r}")
    _limit = None if threads is None else int(threads)
    if _limit is None or not environment:
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = str(_limit)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is installed with lhotse
        return
    if torch.get_num_threads() != _limit:
        torch.set_num_threads(_limit)


def worker_threads(requested: int | None = None) -> int:
    """The threads a backend should use: ``requested`` (its own option) when given, else this
    worker's limit (:func:`set_worker_threads`), else every usable CPU."""
    if requested is not None:
        return max(1, int(requested))
    return _limit if _limit is not None else usable_cpus()


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """:func:`set_worker_threads` (without the environment) for this block, then the limit
    before it: for work run in the caller's own process."""
    previous = _limit
    set_worker_threads(threads, environment=False)
    try:
        yield
    finally:
        set_worker_threads(previous, environment=False)
