"""The base class of every pipeline stage: a picklable batch transform of cuts.

A stage takes a list of cuts and returns, for each, zero or more output cuts or a
:class:`~lhotse_triplets.errors.Failure`. It stores backend *specs* and builds the backends
on first use in each worker process, so it pickles cleanly into worker processes and Ray actors.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from lhotse import CutSet
from lhotse.cut import Cut

from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.errors import Failure, ItemError, log_failure

logger = logging.getLogger(__name__)

Output = Cut | Failure


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
            self._backends[key] = spec.build()
        return self._backends[key]

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
        """:meth:`process_batch`, isolating the bad item when a whole batch raises."""
        try:
            return self.process_batch(cuts)
        except (ImportError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:
            if len(cuts) == 1:
                return [self.failure(cuts[0], e)]
            logger.debug("Batch failed in %s (%s); retrying item by item", self.name, e)
            out: list[Output] = []
            for cut in cuts:
                out.extend(self.process([cut]))
            return out

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
