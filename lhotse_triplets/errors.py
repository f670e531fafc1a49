"""Failures of single items: the error a stage raises, the record it keeps, and the log files.

A failure on one item never kills a run: the item is recorded (cut id, stage, reason) in a
failed log (JSON lines) and skipped. This module is the one place that builds those records,
writes them and reads them back, whoever failed (a recipe, a stage, an exporter).

Example::

    try:
        ...
    except Exception as e:
        failure = Failure.of("clevr_1-t0", "synthesize", e)
    with FailureLog("out/failed.jsonl") as log:
        log.write(failure)
    read_failures("out")  # every *failed*.jsonl below ``out``, in name order
"""

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

#: Names of failed logs inside a folder (``failed.000000.jsonl``, ``llava_instruct_failed_train
#: .jsonl``, ``failed.jsonl``): what :func:`read_failures` reads from a directory.
FAILED_GLOB = "*failed*.jsonl"


def reason_code(reason: str) -> str:
    """The code a failure reason starts with: ``"non_finite_audio: 3 NaN samples"`` ->
    ``"non_finite_audio"`` (reasons are written ``"<code>: <detail>"``, the code in snake_case).
    """
    return reason.split(":", 1)[0].strip()


class ItemError(Exception):
    """One item cannot be processed; the run records it and goes on.

    :param reason: short reason, ``"<code>: <detail>"`` (e.g. ``"wrong_script: 0% Latin
        letters"``), shown in ``failed.jsonl`` and the summary; :func:`reason_code` reads the
        code back.
    :param cut_id: the item it concerns, when known where the error is raised.
    """

    def __init__(self, reason: str, cut_id: str | None = None) -> None:
        super().__init__(reason if cut_id is None else f"{cut_id}: {reason}")
        self.reason = reason
        self.cut_id = cut_id


def failure_reason(error: BaseException | str) -> str:
    """The reason recorded for an item that failed with ``error``.

    An :class:`ItemError` gives its own reason; any other exception ``"<Type>: <message>"``.

    Example::

        >>> failure_reason(ValueError("bad rate"))
        'ValueError: bad rate'
    """
    if isinstance(error, ItemError):
        return error.reason
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


@dataclass
class Failure:
    """One line of a failed log: which item failed, in which stage, and why."""

    cut_id: str
    stage: str
    reason: str

    @classmethod
    def of(cls, cut_id: str, stage: str, error: BaseException | str) -> "Failure":
        """The record of ``cut_id`` failing in ``stage`` with ``error`` (:func:`failure_reason`)."""
        return cls(cut_id=str(cut_id), stage=stage, reason=failure_reason(error))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], stage: str = "?") -> "Failure":
        """From a failed-log line; extra keys are ignored, missing ones read ``"?"``."""
        return cls(
            str(data.get("cut_id", "?")),
            str(data.get("stage", stage)),
            str(data.get("reason", "?")),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def log_failure(failure: Failure) -> None:
    """The default ``on_failure``: a warning naming the item, the stage and the reason."""
    logger.warning("%s failed in %s: %s", failure.cut_id, failure.stage, failure.reason)


class FailureLog:
    """A failed log being written: one JSON object per line, counted by reason.

    :param path: the file (truncated when opened).
    :param echo: also log each failure as a warning.

    Example::

        with FailureLog(out / "failed.jsonl") as log:
            log.write(Failure("x-t0", "prepare", "empty user turn"))
        log.counts  # Counter({'empty user turn': 1})
    """

    def __init__(self, path: str | Path, echo: bool = False) -> None:
        self.path = Path(path)
        self.echo = echo
        self.counts: Counter = Counter()
        self._file: IO[str] | None = None

    def __enter__(self) -> "FailureLog":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        return self

    def write(self, failure: Failure, **extra: Any) -> None:
        """Record ``failure`` (``extra`` keys are written on the same line)."""
        if self._file is None:
            raise RuntimeError(f"{self.path} is not open (use FailureLog as a context manager)")
        line = {**failure.to_dict(), **extra} if extra else failure.to_dict()
        self._file.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self.counts[failure.reason] += 1
        if self.echo:
            log_failure(failure)

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def write_failures(path: str | Path, failures: Iterable[Failure]) -> Path:
    """Write ``failures`` as a failed log at ``path`` (replacing it); return the path."""
    with FailureLog(path) as log:
        for failure in failures:
            log.write(failure)
    return Path(path)


def read_failures(path: str | Path) -> list[Failure]:
    """The failures of a failed log, or of every failed log in a folder (:data:`FAILED_GLOB`,
    hidden files left out, in name order). A folder without one gives ``[]``.

    :raises FileNotFoundError: when ``path`` does not exist.

    Example::

        >>> read_failures("out/synthesize")  # failed.000000.jsonl, failed.000001.jsonl, ...
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob(FAILED_GLOB) if not p.name.startswith("."))
        return [f for p in files for f in read_failures(p)]
    if not path.exists():
        raise FileNotFoundError(f"No such failed log: {path}")
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(Failure.from_dict(json.loads(line)))
    return out


def count_failures(failures: Iterable[Failure]) -> dict[str, int]:
    """Failures grouped by ``"<stage>: <reason>"``."""
    return dict(Counter(f"{f.stage}: {f.reason}" for f in failures))
