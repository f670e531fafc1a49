"""Export triplet cuts to Lhotse Shar, the format NeMo reads as ``sqa_as_conversation``.

A Shar directory holds, per shard, ``cuts.NNNNNN.jsonl.gz`` (metadata), ``recording.NNNNNN.tar``
(FLAC audio) and ``image.NNNNNN.tar`` (the *encoded* image, PNG/JPEG bytes as a 1-D ``uint8``
array): the image travels with the data, so a trainer on another machine needs nothing else.

Each exported cut is one ``(image, spoken prompt) -> answer`` triplet. Its custom fields are what
NeMo's ``sqa_as_conversation`` reader turns into a conversation::

    [system_prompt]  [context]  question + <audio>  ->  answer

``question`` is a short text instruction before the audio (:data:`DEFAULT_QUESTION` unless the
cut or the caller sets one), ``answer`` the verbatim target. Scores and provenance stay in
``custom`` (NeMo passes it through as ``conversation.custom``); bookkeeping of no use to a trainer,
``None`` values and anything that is not JSON are left out.

Example::

    >>> paths = export_shar(CutSet.from_jsonl_lazy("gated.jsonl.gz"), "data/en/shar")
    >>> for image, audio, sampling_rate, answer, meta in iter_triplets("data/en/shar"):
    ...     ...
"""

import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from lhotse import CutSet
from lhotse.array import Array, TemporalArray
from lhotse.audio import Recording
from lhotse.cut import Cut, MonoCut
from lhotse.image import Image
from lhotse.shar import SharWriter
from lhotse.utils import Pathlike, fastcopy

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.images import has_image, load_image, with_image_array

logger = logging.getLogger(__name__)

#: Text turn before the audio turn when neither the cut nor the caller sets ``question``.
#: NeMo accepts an empty string, but then the audio alone is the user turn, exactly like the
#: transcription data SALM is usually trained on (``lhotse_as_conversation``): a short
#: instruction tells the model to *answer* the spoken request rather than transcribe it.
DEFAULT_QUESTION = "Answer the spoken request about the image."

#: Characters NeMo rewrites in data paths (brace expansion / shard ranges).
UNSAFE_PATH_CHARS = ("(", "[", "<")

#: Custom fields left out of the Shar: synthesis bookkeeping and per-language source texts.
DROPPED_FIELDS = frozenset({fields.SYNTHESIS_SECONDS, fields.TRANSLATIONS})

#: Fields that NeMo turns into text turns whenever they exist: dropped when empty.
_TURN_FIELDS = (fields.CONTEXT, fields.SYSTEM_PROMPT)

#: Fields Lhotse's Shar reader sets on every cut it reads (never written back).
_SHAR_READER_FIELDS = frozenset({"shard_origin", "shar_epoch"})

#: Shard files written by Lhotse's SharWriter: ``<field>.<6 digits>.<ext>`` (or unsharded).
_SHARD_FILE = re.compile(r"^[A-Za-z0-9_\-]+(\.\d{6})?\.(tar|jsonl\.gz|jsonl)$")

AUDIO_FORMATS = ("flac", "wav", "opus", "mp3", "original")


def check_export_path(path: Pathlike) -> Path:
    """``path`` as a :class:`~pathlib.Path`, refusing characters NeMo rewrites in data paths.

    NeMo expands ``(...)``/``[...]``/``<...>`` in shard paths, so a Shar under such a directory
    would be read from the wrong place (or not at all).

    :raises ValueError: naming the path and the offending character.

    Example::

        >>> check_export_path("data/en/shar")
        PosixPath('data/en/shar')
    """
    path = Path(path)
    for text in (str(path), str(path.resolve())):
        bad = [c for c in UNSAFE_PATH_CHARS if c in text]
        if bad:
            raise ValueError(
                f"Export path {text!r} contains {' '.join(repr(c) for c in bad)}: NeMo rewrites "
                f"these characters in data paths (brace/range expansion), so it could not read "
                f"the export. Choose a path without any of {' '.join(UNSAFE_PATH_CHARS)}."
            )
    return path


def is_rejected(cut: Cut) -> bool:
    """Whether the quality gate rejected ``cut`` (it has a ``reject_reason``)."""
    return (cut.custom or {}).get(fields.REJECT_REASON) is not None


class PrepareForShar:
    """Cut -> the cut as it is stored in Shar (picklable; the input cut is not modified).

    - ``question`` set (caller's value, else the cut's own, else :data:`DEFAULT_QUESTION`);
    - the image attached as its encoded bytes (1-D ``uint8`` array);
    - custom fields kept when useful and JSON-able (numpy scalars become Python numbers);
      :data:`~lhotse_triplets.fields.NEMO_RESERVED` keys, ``None`` values, empty
      context/system prompt and :data:`DROPPED_FIELDS` removed;
    - features dropped; audio resampled to ``sampling_rate`` when given.

    :raises ItemError: for a cut with no audio, no answer, or an unreadable image.

    Example::

        >>> shar_cut = PrepareForShar(question="")(cut)
    """

    def __init__(
        self,
        question: str | None = None,
        sampling_rate: int | None = None,
        keep_reject_reason: bool = False,
    ) -> None:
        self.question = question
        self.sampling_rate = sampling_rate
        self.keep_reject_reason = keep_reject_reason
        self.dropped: dict[str, int] = {}

    def __call__(self, cut: Cut) -> Cut:
        if not isinstance(cut, MonoCut) or not cut.has_recording:
            raise ItemError("no audio (a MonoCut with a recording is needed)", cut_id=cut.id)
        source = cut.custom or {}
        answer = source.get(fields.ANSWER)
        if not isinstance(answer, str):
            raise ItemError(f"no '{fields.ANSWER}' text (got {type(answer).__name__})", cut.id)

        custom: dict[str, Any] = {}
        for key, value in source.items():
            if key == fields.IMAGE:
                continue  # attached below as encoded bytes
            reason = self._drop_reason(key, value)
            if reason is None:
                try:
                    custom[key] = to_json_value(value)
                    continue
                except TypeError:
                    reason = "not JSON"
            self.dropped[f"{key} ({reason})"] = self.dropped.get(f"{key} ({reason})", 0) + 1

        question = self.question if self.question is not None else source.get(fields.QUESTION)
        custom[fields.QUESTION] = DEFAULT_QUESTION if question is None else str(question)
        custom[fields.ANSWER] = answer

        if has_image(cut):
            custom[fields.IMAGE] = source[fields.IMAGE]
        out = fastcopy(cut, custom=custom, features=None)
        if has_image(out):
            out = with_image_array(out)
        if self.sampling_rate is not None and out.sampling_rate != self.sampling_rate:
            out = out.resample(self.sampling_rate)
        return out

    def _drop_reason(self, key: str, value: Any) -> str | None:
        if key in fields.NEMO_RESERVED:
            return "reserved by NeMo"
        if key in DROPPED_FIELDS or key in _SHAR_READER_FIELDS:
            return "not for training"
        if key == fields.REJECT_REASON and not self.keep_reject_reason:
            return "not for training"
        if key == fields.QUESTION:
            return None  # set in __call__ (an empty question is a valid choice)
        if value is None:
            return "None"
        if key in _TURN_FIELDS and isinstance(value, str) and not value.strip():
            return "empty"
        if isinstance(value, (Array, TemporalArray, Recording, Image)):
            return "data field"
        return None


def to_json_value(value: Any) -> Any:
    """``value`` with numpy scalars/paths turned into JSON types (``TypeError`` if impossible).

    Example::

        >>> to_json_value({"wer": np.float32(0.25)})
        {'wer': 0.25}
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return to_json_value(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: to_json_value(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def export_shar(
    cuts: Iterable[Cut],
    output_dir: Pathlike,
    *,
    shard_size: int | None = 1000,
    shard_hours: float | None = None,
    audio_format: str = "flac",
    question: str | None = None,
    include_rejected: bool = False,
    sampling_rate: int | None = None,
    overwrite: bool = False,
    on_failure: Callable[[Failure], None] | None = None,
) -> dict[str, list[str]]:
    """Write the kept cuts to a Lhotse Shar directory that NeMo reads as ``sqa_as_conversation``.

    Streams: cuts are read, prepared (:class:`PrepareForShar`) and written one at a time, so
    memory stays flat for any corpus size. The export is written next to ``output_dir`` and moved
    into place when complete, so a killed export never looks finished.

    :param cuts: triplet cuts (a lazy CutSet is fine; it is iterated once).
    :param output_dir: the Shar directory (created; must not contain ``( [ <``).
    :param shard_size: cuts per shard (``None``: no count limit; with no ``shard_hours`` either,
        a single unnumbered shard).
    :param shard_hours: audio hours per shard (``None``: no duration limit); a new shard starts
        when either limit would be passed.
    :param audio_format: audio codec in ``recording.*.tar`` (``flac``: lossless 16-bit).
    :param question: text turn before the audio; ``None`` keeps each cut's own ``question`` or
        uses :data:`DEFAULT_QUESTION`; ``""`` makes the audio the whole user turn.
    :param include_rejected: also export cuts with a ``reject_reason`` (and keep that field).
    :param sampling_rate: resample the audio to this rate (``None``: keep it).
    :param overwrite: replace an existing Shar in ``output_dir``.
    :param on_failure: called with a :class:`~lhotse_triplets.errors.Failure` for each cut that
        cannot be exported (default: log a warning); the export goes on.
    :return: field name (``cuts``, ``recording``, ``image``) -> list of shard paths.
    :raises ValueError: for an unsafe path or an unknown audio format.
    :raises FileExistsError: when ``output_dir`` holds files and ``overwrite`` is false.

    Example::

        >>> paths = export_shar(cuts, "data/en/shar", shard_size=500)
        >>> paths["cuts"][:1]
        ['data/en/shar/cuts.000000.jsonl.gz']
    """
    output_dir = check_export_path(output_dir)
    if audio_format not in AUDIO_FORMATS:
        raise ValueError(f"Unknown audio_format {audio_format!r}; use one of {AUDIO_FORMATS}")
    _check_replaceable(output_dir, overwrite)
    on_failure = on_failure or _log_failure

    resolved = output_dir.resolve()
    partial_dir = resolved.parent / f".{resolved.name}.partial"
    if partial_dir.exists():
        shutil.rmtree(partial_dir)
    partial_dir.mkdir(parents=True)

    prepare = PrepareForShar(question, sampling_rate, keep_reject_reason=include_rejected)
    written = rejected = failed = 0
    writer = _RollingSharWriter(
        partial_dir,
        {"recording": audio_format, fields.IMAGE: "numpy"},
        shard_size=shard_size,
        shard_hours=shard_hours,
    )
    with writer:
        for cut in cuts:
            if not include_rejected and is_rejected(cut):
                rejected += 1
                continue
            try:
                # SharWriter loads the audio before writing anything for the cut, so a failure
                # here leaves the shards aligned.
                writer.write(prepare(cut))
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as e:
                failed += 1
                reason = e.reason if isinstance(e, ItemError) else f"{type(e).__name__}: {e}"
                on_failure(Failure(cut_id=cut.id, stage="export_shar", reason=reason))
                continue
            written += 1

    paths = {
        field: [str(output_dir / Path(p).name) for p in shard_paths]
        for field, shard_paths in writer.output_paths.items()
    }
    _replace_dir(partial_dir, resolved)
    if prepare.dropped:
        logger.info("Fields left out of the Shar: %s", prepare.dropped)
    logger.info(
        "Shar export to %s: %d cuts written in %d shards, %d rejected skipped, %d failed",
        output_dir,
        written,
        len(paths.get("cuts", [])),
        rejected,
        failed,
    )
    if written == 0:
        logger.warning("Shar export to %s wrote no cuts: NeMo cannot read it", output_dir)
    return paths


def read_shar(shar_dir: Pathlike, **kwargs: Any) -> CutSet:
    """Lazily open a Shar directory written by :func:`export_shar` (audio and image included).

    ``kwargs`` go to :meth:`lhotse.CutSet.from_shar` (e.g. ``shuffle_shards=True``).

    Example::

        >>> cut = next(iter(read_shar("data/en/shar")))
        >>> cut.custom["answer"]
    """
    shar_dir = Path(shar_dir)
    if not any(shar_dir.glob("cuts.*")):
        raise FileNotFoundError(f"No Shar cuts shards (cuts.*.jsonl.gz) in {shar_dir}")
    return CutSet.from_shar(in_dir=shar_dir, **kwargs)


class Triplet(NamedTuple):
    """One training example as a trainer uses it."""

    #: The image (PIL), or ``None`` for a cut exported without one.
    image: Any
    #: Audio samples, ``float32``: 1-D for mono, ``(channels, samples)`` otherwise.
    audio: np.ndarray
    sampling_rate: int
    #: The assistant's answer, verbatim.
    target_text: str
    #: Id, spoken prompt text, language, voice, question, scores, provenance.
    metadata: dict[str, Any]


def iter_triplets(source: Pathlike | Iterable[Cut]) -> Iterator[Triplet]:
    """Iterate ``(image, audio, sampling_rate, target_text, metadata)`` from a Shar export.

    :param source: a Shar directory written by :func:`export_shar`, or cuts read from one.

    Example::

        >>> for image, audio, sr, answer, meta in iter_triplets("data/en/shar"):
        ...     print(meta["id"], image.size, audio.shape, sr, answer[:40])
    """
    from lhotse_triplets.export.triplets import cut_metadata

    cuts = read_shar(source) if isinstance(source, (str, Path)) else source
    for cut in cuts:
        audio = cut.load_audio()
        if audio.ndim == 2 and audio.shape[0] == 1:
            audio = audio[0]
        yield Triplet(
            image=load_image(cut) if has_image(cut) else None,
            audio=audio,
            sampling_rate=cut.sampling_rate,
            target_text=cut.custom[fields.ANSWER],
            metadata=cut_metadata(cut),
        )


def _log_failure(failure: Failure) -> None:
    logger.warning("%s failed in %s: %s", failure.cut_id, failure.stage, failure.reason)


def _check_replaceable(output_dir: Path, overwrite: bool) -> None:
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise FileExistsError(f"{output_dir} exists and is not a directory")
    entries = list(output_dir.iterdir())
    if not entries:
        return
    if not overwrite:
        raise FileExistsError(
            f"{output_dir} is not empty; pass overwrite=True to replace the Shar export there"
        )
    foreign = [p.name for p in entries if not (p.is_file() and _SHARD_FILE.match(p.name))]
    if foreign:
        raise FileExistsError(
            f"Refusing to overwrite {output_dir}: it holds files that are not Shar shards "
            f"({', '.join(sorted(foreign)[:5])})"
        )


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        for p in dst.iterdir():  # only shard files (checked by _check_replaceable)
            p.unlink()
        dst.rmdir()
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


class _RollingSharWriter:
    """Lhotse's :class:`~lhotse.shar.SharWriter`, one per shard, rolled by count and/or hours
    (Lhotse's own writer shards by count only). Shards are numbered like Lhotse's
    (``cuts.000000.jsonl.gz``); with no limit at all, one unnumbered shard."""

    def __init__(
        self,
        output_dir: Path,
        fields: dict[str, str],
        shard_size: int | None,
        shard_hours: float | None,
    ) -> None:
        from lhotse_triplets.export.common import ShardRoller

        self.output_dir = output_dir
        self.fields = fields
        self.numbered = shard_size is not None or shard_hours is not None
        self.roller = ShardRoller(shard_size, shard_hours)
        self.writer: SharWriter | None = None
        self.index = -1
        self.written: list[SharWriter] = []

    def write(self, cut: Cut) -> None:
        index = self.roller.next_index(cut.duration)
        if index != self.index:
            self.close()
            suffix = f".{index:06d}" if self.numbered else ""
            self.writer = SharWriter(
                self.output_dir, fields=self.fields, shard_size=None, shard_suffix=suffix
            ).__enter__()
            self.written.append(self.writer)
            self.index = index
        try:
            self.writer.write(cut)
        except BaseException:
            self.roller.undo(cut.duration)
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> "_RollingSharWriter":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    @property
    def output_paths(self) -> dict[str, list[str]]:
        """field -> shard paths that exist (a shard whose every cut failed has none)."""
        out: dict[str, list[str]] = {}
        for writer in self.written:
            for name, paths in writer.output_paths.items():
                out.setdefault(name, []).extend(p for p in paths if Path(p).is_file())
        return out
