"""Pieces every export shares: conversations grouped from cuts, audio encoding, shard rolling,
atomic output directories and the per-item failure handling.

A *conversation* here is every cut of one source conversation spoken in one language by one
voice: ``(conversation_id, language, voice)``. Its cuts are the user turns, ordered by ``turn``.
"""

import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.audio import encode
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.export.shar import check_export_path, is_rejected

logger = logging.getLogger(__name__)

#: Characters kept in file / tar member names made from ids (everything else becomes ``_``).
_UNSAFE_NAME = re.compile(r"[^\w.\-]+", re.UNICODE)


class ConversationKey(NamedTuple):
    """What one exported conversation is: a source conversation in one language and voice."""

    conversation_id: str
    language: str
    voice: str


def cut_language(cut: Cut) -> str:
    """The language of ``cut`` (its first supervision's), ``"und"`` when unknown."""
    sup = cut.supervisions[0] if cut.supervisions else None
    return (sup.language if sup and sup.language else None) or "und"


def cut_voice(cut: Cut) -> str:
    """The voice of ``cut`` (its first supervision's speaker), ``"unknown"`` when unset."""
    sup = cut.supervisions[0] if cut.supervisions else None
    return (sup.speaker if sup and sup.speaker else None) or "unknown"


def cut_text(cut: Cut) -> str | None:
    """The spoken prompt text of ``cut``."""
    sup = cut.supervisions[0] if cut.supervisions else None
    return sup.text if sup else None


def conversation_key(cut: Cut) -> ConversationKey:
    """The conversation ``cut`` belongs to (its own id when it has no ``conversation_id``)."""
    custom = cut.custom or {}
    return ConversationKey(
        str(custom.get(fields.CONVERSATION_ID) or cut.id), cut_language(cut), cut_voice(cut)
    )


def group_conversations(cuts: Iterable[Cut]) -> dict[ConversationKey, list[Cut]]:
    """Cuts grouped by :class:`ConversationKey`, each group ordered by ``turn`` (then id).

    Holds the cut *manifests* (not their audio) in memory: about 2 kB per cut.

    Example::

        >>> groups = group_conversations(cuts)
        >>> [c.custom["turn"] for c in groups[("clevr_1", "en", "v0")]]
        [0, 1, 2]
    """
    groups: dict[ConversationKey, list[Cut]] = {}
    for cut in cuts:
        groups.setdefault(conversation_key(cut), []).append(cut)
    for group in groups.values():
        group.sort(key=lambda c: (int((c.custom or {}).get(fields.TURN) or 0), c.id))
    return groups


def safe_name(text: str) -> str:
    """``text`` made safe as a file or tar member name (``/``, spaces, brackets -> ``_``).

    Example::

        >>> safe_name("clevr 1/(a)-t0-en-v0")
        'clevr_1_a_-t0-en-v0'
    """
    return _UNSAFE_NAME.sub("_", text).strip("._") or "_"


def audio_samples(cut: Cut, sampling_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Mono ``float32`` samples of ``cut`` (resampled to ``sampling_rate`` when given) and rate.

    :raises ItemError: when the cut has no audio.
    """
    if not cut.has_recording:
        raise ItemError("no audio", cut_id=cut.id)
    if sampling_rate is not None and cut.sampling_rate != sampling_rate:
        cut = cut.resample(sampling_rate)
    audio = cut.load_audio()
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    return audio.astype(np.float32), cut.sampling_rate


def encode_audio(audio: np.ndarray, sampling_rate: int, audio_format: str = "flac") -> bytes:
    """``audio`` encoded as ``flac`` or ``wav`` (16-bit PCM) bytes.

    Example::

        >>> data = encode_audio(np.zeros(16000, np.float32), 16000, "wav")
    """
    if audio_format not in ("flac", "wav"):
        raise ValueError(f"Unknown audio format {audio_format!r}; use 'flac' or 'wav'")
    return encode(audio, sampling_rate, audio_format)


def failure_reason(error: Exception) -> str:
    """The reason recorded for an item that failed with ``error``."""
    return error.reason if isinstance(error, ItemError) else f"{type(error).__name__}: {error}"


def log_failure(failure: Failure) -> None:
    """Default ``on_failure``: a warning naming the item, the stage and the reason."""
    logger.warning("%s failed in %s: %s", failure.cut_id, failure.stage, failure.reason)


@dataclass
class ShardRoller:
    """Decides when a new shard starts: after ``max_items`` items or ``max_hours`` of audio.

    Either or both limits may be set; ``None`` for both means a single shard. A shard always
    takes at least one item, so an item longer than ``max_hours`` gets a shard of its own.

    Example::

        >>> roller = ShardRoller(max_items=None, max_hours=1.0)
        >>> roller.next_index(seconds=1800.0), roller.next_index(seconds=1900.0)
        (0, 1)
    """

    max_items: int | None = None
    max_hours: float | None = None
    index: int = -1
    items: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"shard size must be a positive count of items, got {self.max_items}")
        if self.max_hours is not None and self.max_hours <= 0:
            raise ValueError(f"shard hours must be positive, got {self.max_hours}")

    def next_index(self, seconds: float) -> int:
        """The shard index the next item (``seconds`` of audio) goes to; counts it in."""
        full = self.index < 0 or (
            self.items > 0
            and (
                (self.max_items is not None and self.items >= self.max_items)
                or (self.max_hours is not None and self.seconds + seconds > self.max_hours * 3600)
            )
        )
        if full:
            self.index += 1
            self.items, self.seconds = 0, 0.0
        self.items += 1
        self.seconds += seconds
        return self.index

    def undo(self, seconds: float) -> None:
        """Take back the last item (it failed to write)."""
        self.items -= 1
        self.seconds -= seconds


@dataclass
class ExportCounts:
    """What an export wrote and skipped (printed by the CLI, kept in reports)."""

    written: int = 0
    rejected: int = 0
    failed: int = 0
    seconds: float = 0.0
    per_language: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def count(self, language: str, seconds: float, n: int = 1) -> None:
        self.written += n
        self.seconds += seconds
        self.per_language[language] = self.per_language.get(language, 0) + n

    def __str__(self) -> str:
        langs = " ".join(f"{k}={v}" for k, v in sorted(self.per_language.items()))
        return (
            f"written: {self.written} ({self.seconds / 3600:.4f} h; {langs or '-'})   "
            f"rejected skipped: {self.rejected}   failed: {self.failed}"
        )


class AtomicDir:
    """A directory written under a hidden ``.NAME.partial`` sibling and moved into place on
    success, so a killed export never looks finished. Refuses to replace a non-empty directory
    unless ``overwrite``, and anything but a directory in any case.

    Example::

        >>> with AtomicDir("out/nemo", overwrite=True) as tmp:
        ...     (tmp / "manifest_0.jsonl").write_text("...")
    """

    def __init__(self, output_dir: str | os.PathLike, overwrite: bool = False) -> None:
        self.output_dir = check_export_path(output_dir)
        if self.output_dir.exists():
            if not self.output_dir.is_dir():
                raise FileExistsError(f"{self.output_dir} exists and is not a directory")
            if any(self.output_dir.iterdir()) and not overwrite:
                raise FileExistsError(
                    f"{self.output_dir} is not empty; pass overwrite=True (CLI: --overwrite) to "
                    f"replace it"
                )
        resolved = self.output_dir.resolve()
        self.partial = resolved.parent / f".{resolved.name}.partial"

    def __enter__(self) -> Path:
        if self.partial.exists():
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True)
        return self.partial

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            return
        if self.output_dir.exists():
            shutil.rmtree(self.output_dir)
        self.output_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.partial, self.output_dir)


def kept_cuts(cuts: Iterable[Cut], include_rejected: bool, counts: ExportCounts) -> Iterator[Cut]:
    """``cuts`` without the rejected ones (counted) unless ``include_rejected``."""
    for cut in cuts:
        if not include_rejected and is_rejected(cut):
            counts.rejected += 1
            continue
        yield cut


OnFailure = Callable[[Failure], None]
