"""Pieces every export shares: path guards, atomic outputs, JSON values, audio encoding, shard
rolling, conversations grouped from cuts, copied images and the per-item failure handling.

Nothing here imports a format module: formats import this module, never the other way round.

A *conversation* is every cut of one source conversation spoken in one language by one voice:
``(conversation_id, language, voice)``. Its cuts are the user turns, ordered by ``turn``.
"""

import hashlib
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from lhotse.array import Array, TemporalArray
from lhotse.audio import Recording
from lhotse.cut import Cut
from lhotse.image import Image
from lhotse.shar import SharWriter
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.audio import encode
from lhotse_triplets.cuts import cut_language, cut_text, cut_voice, is_rejected
from lhotse_triplets.errors import Failure, ItemError, log_failure
from lhotse_triplets.images import image_extension, load_image_bytes
from lhotse_triplets.paths import safe_name

#: Text turn before the audio turn when neither the cut nor the caller sets ``question``.
#: NeMo accepts an empty string, but then the audio alone is the user turn, exactly like the
#: transcription data SALM is usually trained on (``lhotse_as_conversation``): a short
#: instruction tells the model to *answer* the spoken request rather than transcribe it.
DEFAULT_QUESTION = "Answer the spoken request about the image."

#: Characters NeMo rewrites in data paths (brace expansion / shard ranges).
UNSAFE_PATH_CHARS = ("(", "[", "<")

#: Keys of a triplet's metadata (and of the index rows) that are not custom fields.
ID = "id"
PROMPT_TEXT = "prompt_text"
DURATION = "duration"

#: Shard files written by Lhotse's SharWriter: ``<field>.<6 digits>.<ext>`` (or unsharded).
_SHARD_FILE = re.compile(r"^[A-Za-z0-9_\-]+(\.\d{6})?\.(tar|jsonl\.gz|jsonl)$")

#: Folder of copied images inside an export (``images/<conversation>_<hash>.<ext>``).
IMAGES_DIR = "images"

OnFailure = Callable[[Failure], None]


def check_export_path(path: Pathlike) -> Path:
    """``path`` as a :class:`~pathlib.Path`, refusing characters NeMo rewrites in data paths.

    NeMo expands ``(...)``/``[...]``/``<...>`` in shard paths, so an export under such a
    directory would be read from the wrong place (or not at all).

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


def is_shar_dir(path: Pathlike) -> bool:
    """Whether ``path`` holds Lhotse Shar cuts shards (``cuts.*.jsonl*``)."""
    path = Path(path)
    return path.is_dir() and any(path.glob("cuts.*jsonl*"))


def is_shard_file(path: Path) -> bool:
    """Whether ``path`` is a shard file Lhotse's SharWriter writes (what an export may replace)."""
    return path.is_file() and _SHARD_FILE.match(path.name) is not None


def check_outside_shar(directory: Pathlike, written: Pathlike) -> None:
    """Refuse to write ``written`` into ``directory`` when that is a Shar directory (Lhotse's
    Shar reader takes every entry there for a data field).

    :raises ValueError: naming both.
    """
    if is_shar_dir(directory):
        raise ValueError(
            f"Writing {str(written)!r} inside the Shar directory {directory}: Lhotse would read it "
            f"as a Shar field. Write it next to the Shar directory instead."
        )


def check_export_dir(path: Pathlike) -> Path:
    """An export directory: :func:`check_export_path`, and not a Shar directory.

    :raises ValueError: naming the path and the reason.

    Example::

        >>> check_export_dir("out/export")
        PosixPath('out/export')
    """
    path = check_export_path(path)
    check_outside_shar(path, path)
    return path


class AtomicOutput:
    """One export entry (a directory, or a file with ``is_file``) written under a hidden
    ``.NAME.partial`` sibling and moved into place on success, so a killed export never looks
    finished. Everything is checked when it is created, before anything is written.

    :param overwrite: replace an existing non-empty entry (else ``FileExistsError``).
    :param replaceable: which entries of an existing directory may be replaced (the library's
        own files); any other entry is refused even with ``overwrite``. ``None``: any.
    :param is_file: the entry is a file; the body writes the path ``__enter__`` returns. When it
        writes nothing, an existing entry is removed (it would describe an older export).
    :raises FileExistsError: see ``overwrite`` and ``replaceable``; a file where a directory
        goes (or the reverse) is always refused.

    Example::

        >>> with AtomicOutput("out/nemo", overwrite=True) as tmp:
        ...     (tmp / "manifest_0.jsonl").write_text("...")
    """

    def __init__(
        self,
        path: Pathlike,
        *,
        overwrite: bool = False,
        replaceable: Callable[[Path], bool] | None = None,
        is_file: bool = False,
    ) -> None:
        self.path = check_export_path(path)
        self.is_file = is_file
        self._check(overwrite, replaceable)
        resolved = self.path.resolve()
        self.partial = resolved.parent / f".{resolved.name}.partial"

    def _check(self, overwrite: bool, replaceable: Callable[[Path], bool] | None) -> None:
        if not self.path.exists():
            return
        if self.path.is_dir() == self.is_file:
            kind = "a directory" if self.is_file else "not a directory"
            raise FileExistsError(f"{self.path} exists and is {kind}")
        if self.is_file or any(self.path.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"{self.path} exists; pass overwrite=True (CLI: --overwrite) to replace it"
                )
        if self.is_file or replaceable is None:
            return
        foreign = sorted(p.name for p in self.path.iterdir() if not replaceable(p))
        if foreign:
            raise FileExistsError(
                f"Refusing to overwrite {self.path}: it holds entries this export did not write "
                f"({', '.join(foreign[:5])})"
            )

    def __enter__(self) -> Path:
        _remove(self.partial)
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        if not self.is_file:
            self.partial.mkdir()
        return self.partial

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            _remove(self.partial)
            return
        if self.path.exists():
            _remove(self.path)
        if self.partial.exists():
            os.replace(self.partial, self.path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


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


def json_fields(source: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The ``names`` of ``source`` that are set, as JSON values (values that are not JSON are
    left out).

    Example::

        >>> json_fields({"wer": np.float32(0.5), "mos": None}, ["wer", "mos"])
        {'wer': 0.5}
    """
    out = {}
    for name in names:
        if source.get(name) is None:
            continue
        try:
            out[name] = to_json_value(source[name])
        except TypeError:
            continue
    return out


def is_data_value(value: Any) -> bool:
    """Whether ``value`` is a Lhotse data manifest (array, recording, image), not metadata."""
    return isinstance(value, (Array, TemporalArray, Recording, Image))


def cut_metadata(cut: Cut) -> dict[str, Any]:
    """Everything about ``cut`` except its media and answer, as JSON-able values.

    Id, duration, spoken prompt text, language and voice, then every JSON-able custom field
    (question, conversation id, turn, scores, provenance, ...).

    Example::

        >>> cut_metadata(cut)["language"]
        'fr'
    """
    sup = cut.supervisions[0] if cut.supervisions else None
    meta: dict[str, Any] = {
        ID: cut.id,
        DURATION: cut.duration,
        PROMPT_TEXT: cut_text(cut),
        fields.LANGUAGE: sup.language if sup else None,
        fields.VOICE: sup.speaker if sup else None,
    }
    custom = cut.custom or {}
    names = [k for k, v in custom.items() if k not in (fields.IMAGE, fields.ANSWER)]
    meta.update(json_fields(custom, [k for k in names if not is_data_value(custom[k])]))
    return meta


def question_for(custom: dict[str, Any], question: str | None) -> str:
    """The text turn before the audio: ``question`` when given, else the cut's own, else
    :data:`DEFAULT_QUESTION` (``""`` is a valid choice: no text turn).

    Example::

        >>> question_for({}, None) == DEFAULT_QUESTION, question_for({"question": "Q?"}, "")
        (True, '')
    """
    chosen = question if question is not None else custom.get(fields.QUESTION)
    return DEFAULT_QUESTION if chosen is None else str(chosen)


def require_answer(cut: Cut) -> str:
    """The answer of ``cut``; :class:`~lhotse_triplets.errors.ItemError` when it has none."""
    answer = (cut.custom or {}).get(fields.ANSWER)
    if not isinstance(answer, str):
        raise ItemError(f"no '{fields.ANSWER}' text (got {type(answer).__name__})", cut.id)
    return answer


class ConversationKey(NamedTuple):
    """What one exported conversation is: a source conversation in one language and voice."""

    conversation_id: str
    language: str
    voice: str

    @property
    def name(self) -> str:
        """The exported conversation's id: ``<conversation id>-<language>-<voice>``."""
        return f"{self.conversation_id}-{self.language}-{self.voice}"


def conversation_key(cut: Cut) -> ConversationKey:
    """The conversation ``cut`` belongs to (its own id when it has no ``conversation_id``)."""
    custom = cut.custom or {}
    return ConversationKey(
        str(custom.get(fields.CONVERSATION_ID) or cut.id), cut_language(cut), cut_voice(cut)
    )


def _turn_order(cut: Cut) -> tuple[int, str]:
    return int((cut.custom or {}).get(fields.TURN) or 0), cut.id


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
        group.sort(key=_turn_order)
    return groups


def audio_samples(cut: Cut, sampling_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Mono ``float32`` samples of ``cut`` (resampled to ``sampling_rate`` when given) and rate.

    :raises ItemError: when the cut has no audio.

    Example::

        >>> audio, sr = audio_samples(cut, 16000)
    """
    if not cut.has_recording:
        raise ItemError("no audio", cut_id=cut.id)
    if sampling_rate is not None and cut.sampling_rate != sampling_rate:
        cut = cut.resample(sampling_rate)
    audio = cut.load_audio()
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    return audio.astype(np.float32), cut.sampling_rate


def encode_audio(audio: np.ndarray, sampling_rate: int, audio_format: str) -> bytes:
    """``audio`` encoded as ``flac`` or ``wav`` (16-bit PCM) bytes.

    Example::

        >>> data = encode_audio(np.zeros(16000, np.float32), 16000, "wav")
    """
    if audio_format not in ("flac", "wav"):
        raise ValueError(f"Unknown audio format {audio_format!r}; use 'flac' or 'wav'")
    return encode(audio, sampling_rate, audio_format)


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """``ValueError`` naming the option, the value and the accepted ones when not in ``choices``."""
    if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}; use one of {tuple(choices)}")


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

    @property
    def limited(self) -> bool:
        """Whether any limit is set (else everything goes to one shard)."""
        return self.max_items is not None or self.max_hours is not None

    def _full(self, seconds: float) -> bool:
        if self.index < 0:
            return True
        if self.items == 0:
            return False
        if self.max_items is not None and self.items >= self.max_items:
            return True
        return self.max_hours is not None and self.seconds + seconds > self.max_hours * 3600

    def next_index(self, seconds: float) -> int:
        """The shard index the next item (``seconds`` of audio) goes to; counts it in."""
        if self._full(seconds):
            self.index += 1
            self.items, self.seconds = 0, 0.0
        self.items += 1
        self.seconds += seconds
        return self.index

    def undo(self, seconds: float) -> None:
        """Take back the last item (it failed to write)."""
        self.items -= 1
        self.seconds -= seconds


class RollingSharWriter:
    """Lhotse's :class:`~lhotse.shar.SharWriter`, one per shard, rolled by count and/or hours
    (Lhotse's own writer shards by count only). Shards are numbered like Lhotse's
    (``cuts.000000.jsonl.gz``); with no limit at all, one unnumbered shard.

    Example::

        >>> with RollingSharWriter("out/shar", {"recording": "flac"}, ShardRoller(100)) as w:
        ...     w.write(cut)
    """

    def __init__(self, output_dir: Pathlike, fields: dict[str, str], roller: ShardRoller) -> None:
        self.output_dir = Path(output_dir)
        self.fields = fields
        self.roller = roller
        self.writer: SharWriter | None = None
        self.index = -1
        self.written: list[SharWriter] = []

    def write(self, cut: Cut) -> None:
        """Write ``cut`` (its audio is loaded before anything of it is written)."""
        index = self.roller.next_index(cut.duration)
        if index != self.index:
            self.close()
            suffix = f".{index:06d}" if self.roller.limited else ""
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

    def __enter__(self) -> "RollingSharWriter":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def output_paths(self, final_dir: Pathlike) -> dict[str, list[str]]:
        """field -> shard paths that exist (a shard whose every cut failed has none), named as
        they will be in ``final_dir``."""
        out: dict[str, list[str]] = {}
        for writer in self.written:
            for name, paths in writer.output_paths.items():
                out.setdefault(name, []).extend(
                    str(Path(final_dir) / Path(p).name) for p in paths if Path(p).is_file()
                )
        return out


@dataclass
class ExportCounts:
    """What an export wrote and skipped (printed by the CLI, kept in reports)."""

    written: int = 0
    rejected: int = 0
    failed: int = 0
    seconds: float = 0.0
    per_language: dict[str, int] = field(default_factory=dict)

    def count(self, language: str, seconds: float, n: int = 1) -> None:
        """Count ``n`` written items of ``language`` with ``seconds`` of audio."""
        self.written += n
        self.seconds += seconds
        self.per_language[language] = self.per_language.get(language, 0) + n

    def __str__(self) -> str:
        langs = " ".join(f"{k}={v}" for k, v in sorted(self.per_language.items()))
        return (
            f"written: {self.written} ({self.seconds / 3600:.4f} h; {langs or '-'})   "
            f"rejected skipped: {self.rejected}   failed: {self.failed}"
        )


def kept_cuts(cuts: Iterable[Cut], include_rejected: bool, counts: ExportCounts) -> Iterator[Cut]:
    """``cuts`` without the rejected ones (counted) unless ``include_rejected``."""
    for cut in cuts:
        if not include_rejected and is_rejected(cut):
            counts.rejected += 1
            continue
        yield cut


@dataclass
class ItemOutcome:
    """What became of the items of one :meth:`ItemGuard.item` block: written (``ok``), or the
    failures recorded for them."""

    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class ItemGuard:
    """Records the items that fail to export and lets the export go on.

    Inside ``with guard.item(*cut_ids) as outcome:``, an exception (not ``KeyboardInterrupt``
    or ``MemoryError``) counts the items as failed, calls ``on_failure`` with a
    :class:`~lhotse_triplets.errors.Failure` per item, and is swallowed; ``outcome.ok`` then is
    false and ``outcome.failures`` lists them.

    Example::

        >>> guard = ItemGuard("export_hf", counts, failures.append)
        >>> with guard.item(cut.id) as outcome:
        ...     row = make_row(cut)
        >>> outcome.ok
    """

    def __init__(self, stage: str, counts: ExportCounts, on_failure: OnFailure | None) -> None:
        self.stage = stage
        self.counts = counts
        self.on_failure = on_failure or log_failure

    def item(self, *cut_ids: str) -> "_GuardedItem":
        """A context for writing the items ``cut_ids`` (one cut, or a conversation's)."""
        return _GuardedItem(self, cut_ids)

    def fail(self, cut_ids: Sequence[str], error: BaseException | str) -> list[Failure]:
        """Record ``cut_ids`` as failed with ``error``; the failures."""
        failures = [Failure.of(cut_id, self.stage, error) for cut_id in cut_ids]
        self.counts.failed += len(failures)
        for failure in failures:
            self.on_failure(failure)
        return failures


class _GuardedItem:
    def __init__(self, guard: ItemGuard, cut_ids: Sequence[str]) -> None:
        self.guard = guard
        self.cut_ids = cut_ids
        self.outcome = ItemOutcome()

    def __enter__(self) -> ItemOutcome:
        return self.outcome

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None or not issubclass(exc_type, Exception):
            return False
        if issubclass(exc_type, MemoryError):
            return False
        self.outcome.failures = self.guard.fail(self.cut_ids, exc)
        return True


class ImageFiles:
    """Images copied into ``root/images/``, each distinct image (by content) once, named after
    the conversation and a content hash: the export can be moved as one folder.

    Example::

        >>> images = ImageFiles(tmp)
        >>> images.add(cut)
        'images/clevr_1_3f2a9c01d4.png'
    """

    def __init__(self, root: Pathlike) -> None:
        self.root = Path(root)
        self.names: dict[str, str] = {}

    def add(self, cut: Cut) -> str:
        """Copy the image of ``cut`` (once); its path relative to ``root``, POSIX style."""
        data = load_image_bytes(cut)
        digest = hashlib.sha1(data).hexdigest()[:10]
        if digest not in self.names:
            conversation = (cut.custom or {}).get(fields.CONVERSATION_ID) or cut.id
            name = f"{safe_name(str(conversation))}_{digest}.{image_extension(data)}"
            (self.root / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
            (self.root / IMAGES_DIR / name).write_bytes(data)
            self.names[digest] = f"{IMAGES_DIR}/{name}"
        return self.names[digest]
