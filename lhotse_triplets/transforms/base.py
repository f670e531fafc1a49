"""The base class of every pipeline stage: a picklable batch transform of cuts.

A stage takes a list of cuts and returns, for each, zero or more output cuts or a
:class:`~lhotse_triplets.errors.Failure`. It stores backend *specs* and builds the backends
on first use in each worker process, so it pickles cleanly into worker processes and Ray actors.

**Per-item time limit.** With :attr:`Stage.item_timeout` set (``engine.item_timeout`` in a
config, seconds), :meth:`Stage.process` gives a batch ``item_timeout x len(batch)`` seconds; a
batch that takes longer is retried item by item, each with ``item_timeout`` seconds, and an item
that still takes longer fails with ``timeout: <stage> took longer than N s``. After a timeout the
stage's backends are dropped (``close()`` called when they have one) and built again for the next
items, so a backend left mid-call does not serve them. The limit is a ``SIGALRM`` timer, so it
works where stages run on a process's main thread (the CLI, the local executor's worker
processes) on POSIX; elsewhere (another thread, Windows) items run without a limit (logged at
debug level). Python code, sleeps and blocking I/O are interrupted; a long call inside a C
extension is interrupted only when it returns to Python. Building a backend does not count
against the limit.
"""

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from lhotse import CutSet
from lhotse.cut import Cut

from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.errors import Failure, ItemError, log_failure

logger = logging.getLogger(__name__)

Output = Cut | Failure


class ItemTimeout(BaseException):
    """Raised inside a stage when its time limit is up.

    A ``BaseException`` (like ``KeyboardInterrupt``), so that a backend's or a stage's
    ``except Exception`` cannot swallow it; :meth:`Stage.process` turns it into failures.
    """


#: Deadline (``time.monotonic()``) of the time limit running in this process, if any.
_deadline: float | None = None


def _on_alarm(signum: int, frame: Any) -> None:
    if _deadline is not None:
        raise ItemTimeout()


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`ItemTimeout` in this block after ``seconds`` (``None``: no limit).

    Only on the main thread of a POSIX process (``SIGALRM``); elsewhere the block runs without a
    limit. A timer set by someone else (e.g. pytest-timeout) is put back afterwards, with the
    time it had left (at least 1 ms); limits do not nest (an inner one replaces the outer one).
    """
    global _deadline
    if seconds is None or not _can_alarm():
        if seconds is not None:
            logger.debug("No time limit: not on the main thread of a POSIX process")
        yield
        return
    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    outer_deadline, _deadline = _deadline, start + seconds
    outer, outer_interval = signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        _deadline = None  # from here on a late alarm is ignored
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _deadline = outer_deadline
        if outer > 0:
            left = max(outer - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


@contextlib.contextmanager
def limit_paused() -> Iterator[None]:
    """Stop the clock of the running :func:`time_limit` in this block (e.g. loading a model)."""
    global _deadline
    if _deadline is None or not _can_alarm():
        yield
        return
    left, _ = signal.setitimer(signal.ITIMER_REAL, 0)
    deadline, _deadline = _deadline, None
    start = time.monotonic()
    try:
        yield
    finally:
        _deadline = deadline + (time.monotonic() - start)
        signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


class Stage:
    """A batch Cut transform. Subclasses implement :meth:`process_batch` and :meth:`from_config`.

    ``__call__`` makes a one-to-one stage usable with ``CutSet.map``; :meth:`apply` works for
    every stage (also those that expand one cut into several) and stays lazy.
    """

    #: Name used in ``failed.jsonl`` and summaries; also the config section the stage reads.
    name: str = "stage"
    #: One line saying what the stage does (its command's help).
    summary: str = ""
    batch_size: int = 1
    #: Seconds one input item may take (see the module's docstring); ``None``: no limit.
    #: :func:`~lhotse_triplets.transforms.registry.build_stage` sets it from
    #: ``engine.item_timeout``.
    item_timeout: float | None = None
    #: What one worker of the stage reserves on a cluster (``num_gpus``, ``num_cpus``,
    #: ``concurrency``; see :func:`~lhotse_triplets.transforms.registry.stage_resources`), set
    #: by ``build_stage``; executors that place workers read it.
    resources: dict[str, Any] = {}

    def __init__(self) -> None:
        self._backends: dict[str, Any] = {}

    @classmethod
    def from_config(
        cls, cfg: Any, run_dir: str | Path | None = None, stage_dir: str | Path | None = None
    ) -> "Stage":
        """The stage a run configuration describes: the only place a stage is built from config.

        :param cfg: the run's configuration (a :class:`~lhotse_triplets.config.PipelineConfig`,
            or any config with this stage's section, e.g. a benchmark's ``score``/``gate``); the
            stage reads ``cfg.<name>`` (and what it shares with the run, e.g. ``languages``).
        :param run_dir: where the run writes (the stage's side outputs, e.g. ``audio/``).
        :param stage_dir: the stage's own output folder (default ``run_dir/<name>``).
        """
        raise NotImplementedError(f"{cls.__name__} cannot be built from a config")

    # -- backends built lazily, once per process -------------------------------------------
    def backend(self, key: str, spec: BackendSpec) -> Any:
        if key not in self._backends:
            with limit_paused():  # loading a model is not an item's time
                self._backends[key] = spec.build()
        return self._backends[key]

    def reset_backends(self) -> None:
        """Drop the built backends (calling their ``close()``, if any): the next use builds them
        again. Done after a timeout, when a backend may be stuck in the middle of a call."""
        backends, self._backends = self._backends, {}
        for key, backend in backends.items():
            close = getattr(backend, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as e:
                    logger.debug("Closing backend %s of %s failed: %s", key, self.name, e)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_backends"] = {}
        return state

    # -- processing ---------------------------------------------------------------------------
    def process_batch(self, cuts: list[Cut]) -> list[Output]:
        """Process a batch; return output cuts and :class:`Failure` records (any order)."""
        raise NotImplementedError

    def setup(self) -> None:
        """Build backends eagerly (so that a missing dependency fails before any work)."""

    def process(self, cuts: list[Cut]) -> list[Output]:
        """:meth:`process_batch` under the time limit, isolating the bad item when a whole batch
        raises or runs out of time (the batch is retried item by item)."""
        limit = self._limit(len(cuts))
        try:
            with time_limit(limit):
                return self.process_batch(cuts)
        except ItemTimeout:
            self.reset_backends()
            if len(cuts) == 1:
                return [self.failure(cuts[0], self.timeout_reason(limit))]
            logger.debug("Batch of %d timed out in %s; retrying item by item", len(cuts), self.name)
        except (ImportError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:
            if len(cuts) == 1:
                return [self.failure(cuts[0], e)]
            logger.debug("Batch failed in %s (%s); retrying item by item", self.name, e)
        return [out for cut in cuts for out in self.process([cut])]

    def _limit(self, items: int) -> float | None:
        timeout = self.item_timeout
        if timeout is None or not math.isfinite(timeout) or timeout <= 0:
            return None
        return float(timeout) * max(1, items)

    def timeout_reason(self, seconds: float | None) -> str:
        """The failure reason of an item that ran out of time."""
        return f"timeout: {self.name} took longer than {seconds:g} s"

    def failure(self, cut: Cut | str, error: Exception | str) -> Failure:
        """A :class:`Failure` record for ``cut`` (or a cut id) in this stage."""
        return Failure.of(cut if isinstance(cut, str) else cut.id, self.name, error)

    def __call__(self, cut: Cut) -> Cut:
        outputs = self.process([cut])
        cuts = [o for o in outputs if not isinstance(o, Failure)]
        failures = [o for o in outputs if isinstance(o, Failure)]
        if failures:
            raise ItemError(failures[0].reason, cut_id=cut.id)
        if len(cuts) != 1:
            raise TypeError(
                f"Stage {self.name} produced {len(cuts)} cuts from {cut.id}; use .apply() "
                "for stages that expand cuts"
            )
        return cuts[0]

    def apply(
        self,
        cuts: CutSet,
        on_failure: Callable[[Failure], None] | None = None,
    ) -> CutSet:
        """Lazily apply this stage to ``cuts``; failures go to ``on_failure`` (default: log)."""
        return CutSet(LazyStage(cuts, self, on_failure))


def one_each(outputs: Any, expected: int, kind: str, backend: str, what: str) -> list[Any]:
    """A backend's ``outputs`` as a list of exactly ``expected`` items, one per input.

    :param kind: the backend kind, the start of the reason code (``tts`` -> ``tts_output_count``).
    :param what: what the outputs are, for the message (``"audio"``, ``"transcripts"``).
    :raises ItemError: ``<kind>_output_count: ...`` when there are more or fewer (or ``outputs``
        is not a sequence); a stage then retries item by item, so only the items whose outputs
        cannot be matched fail.
    """
    try:
        items = list(outputs)
    except TypeError:
        raise ItemError(
            f"{kind}_output_count: {backend} returned {type(outputs).__name__}, not a list"
        ) from None
    if len(items) != expected:
        raise ItemError(
            f"{kind}_output_count: {backend} returned {len(items)} {what} for {expected} "
            f"input{'s' if expected != 1 else ''}"
        )
    return items


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class LazyStage:
    """Iterable of the cuts a stage produces from an iterable of cuts (picklable, lazy)."""

    def __init__(
        self,
        source: Iterable[Cut],
        stage: Stage,
        on_failure: Callable[[Failure], None] | None = None,
    ) -> None:
        self.source = source
        self.stage = stage
        self.on_failure = on_failure

    @property
    def is_lazy(self) -> bool:
        return True

    def __iter__(self) -> Iterator[Cut]:
        on_failure = self.on_failure or log_failure
        for batch in batched(self.source, max(1, self.stage.batch_size)):
            for item in self.stage.process(batch):
                if isinstance(item, Failure):
                    on_failure(item)
                else:
                    yield item

    def __len__(self) -> int:
        raise TypeError("The length of a lazily transformed CutSet is unknown until iterated.")
