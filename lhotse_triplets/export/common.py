"""Pieces every export shares: path guards, atomic outputs, JSON values, audio encoding, shard
rolling, conversations grouped from cuts, copied images and the per-item failure handling.

Nothing here imports a format module: formats import this module, never the other way round.

**What an export may write, and replace.** Every format writes its *entries* (``shar/``,
``nemo_data.yaml``, ``nemo/``, ``hf/``, ...) inside the export directory through
:class:`AtomicOutput`, the one place that replaces an output: an entry is built under a hidden
``.NAME.partial`` sibling and moved into place when complete, and the files it holds are listed
in a hidden record next to it (``.NAME.written.json``). ``overwrite`` replaces *only* those
files: anything else in the entry (a note, a folder of your own) is kept, or, inside a Shar
directory (where Lhotse would read it as a data field), the export is refused and nothing is
touched. Entries written before records existed are recognised by their format's layout. Files
are named after ids only through :func:`~lhotse_triplets.paths.safe_name`, and every path an
exporter writes is checked (:func:`export_file`) to lie inside its export directory.

**Secrets and references.** Custom fields named like secrets or cloning references
(:func:`~lhotse_triplets.redact.is_secret_key`, :func:`~lhotse_triplets.redact.is_reference_key`)
are never exported (:func:`is_private_key`).

A *conversation* is every cut of one source conversation spoken in one language by one voice:
``(conversation_id, language, voice)``. Its cuts are the user turns, ordered by ``turn``.
"""

import contextlib
import gzip
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tarfile
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
from lhotse.utils import Pathlike, fastcopy

from lhotse_triplets import fields
from lhotse_triplets.audio import encode
from lhotse_triplets.cuts import cut_language, cut_text, cut_voice, is_rejected
from lhotse_triplets.dialogues import conversation_id, is_turn_cut, turn_number
from lhotse_triplets.errors import Failure, ItemError, log_failure
from lhotse_triplets.images import image_extension, load_image_bytes
from lhotse_triplets.paths import inside, is_safe_name, safe_name
from lhotse_triplets.redact import is_reference_key, is_secret_key

logger = logging.getLogger(__name__)

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

#: Custom field holding the own id of a cut stored under its safe name (see ``fields``).
ORIGINAL_ID = fields.ORIGINAL_ID

#: Accepted values of the export options that are choices (the format modules use these, and
#: :func:`~lhotse_triplets.export.base.check_export_options` checks them before any work).
IMAGE_MODES = ("embed", "path")
NEMO_AUDIO_FORMATS = ("flac", "wav")
SHAR_AUDIO_FORMATS = ("flac", "wav", "opus", "mp3", "original")
TRIPLETS_FORMATS = ("jsonl", "jsonl.gz", "csv")
FILES_INDEX_FORMATS = ("csv", "jsonl")

#: Suffix of the hidden record, next to an export entry, of the files the library wrote in it.
RECORD_SUFFIX = ".written.json"

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


def export_file(root: Pathlike, *parts: str) -> Path:
    """``root/parts...``, checked to lie inside ``root`` (symlinks resolved): every file an
    exporter writes goes through here (or :class:`AtomicOutput`).

    :raises ItemError: ``outside_root: ...`` (an item that would write outside is recorded as
        failed, never written).

    Example::

        >>> export_file(tmp, "en", "v0", safe_name(cut.id) + ".wav")
        PosixPath('/data/out/files/en/v0/clevr_1-t0-en-v0.wav')
    """
    path = Path(root, *parts)
    inside(path.absolute(), Path(root).absolute(), what="export file")
    return path


def record_path(entry: Pathlike) -> Path:
    """The hidden record, next to the export entry ``entry``, of the files written in it."""
    entry = Path(entry)
    return entry.parent / f".{entry.name}{RECORD_SUFFIX}"


def read_record(entry: Pathlike) -> dict[str, Any] | None:
    """The record of ``entry`` (``{"format", "files", "dirs"}``), or ``None`` when there is none
    or it cannot be read (then the entry is judged by its format's layout)."""
    path = record_path(entry)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        logger.warning("Ignoring the unreadable export record %s: %s", path, e)
        return None
    lists = [record.get(k) if isinstance(record, dict) else None for k in ("files", "dirs")]
    if not all(isinstance(x, list) and all(isinstance(v, str) for v in x) for x in lists):
        logger.warning("Ignoring the export record %s: not a record of files", path)
        return None
    return record


def _write_record(entry: Path, fmt: str | None, files: Iterable[str], dirs: Iterable[str]) -> None:
    path = record_path(entry)
    tmp = path.with_name(path.name + ".tmp")
    record = {"written_by": "lhotse-triplets", "format": fmt}
    record.update(files=sorted(set(files)), dirs=sorted(set(dirs)))
    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _tree(root: Path) -> tuple[set[str], set[str]]:
    """Files (symlinks included, never followed) and folders below ``root``, relative, POSIX."""
    files: set[str] = set()
    dirs: set[str] = set()
    for here, subdirs, names in os.walk(root, followlinks=False):
        rel = Path(here).relative_to(root)
        for name in subdirs:
            (files if (Path(here) / name).is_symlink() else dirs).add((rel / name).as_posix())
        files.update((rel / name).as_posix() for name in names)
    return files, dirs


def layout(*names: str, patterns: Sequence[str] = (), folders: Sequence[str] = ()) -> Callable:
    """A ``replaceable`` predicate of :class:`AtomicOutput`: the top-level entries of a format's
    folder (exact ``names``, regex ``patterns`` of names, and folders whose every file matches
    one of ``folders``' regexes): how entries written before records existed are recognised.

    Example::

        >>> layout("README.md", "arrow", "data")(Path("out/hf/arrow"))
        True
    """

    def replaceable(path: Path) -> bool:
        if path.name in names or any(re.fullmatch(p, path.name) for p in patterns):
            return True
        if not folders or not path.is_dir() or path.is_symlink():
            return False
        files, _ = _tree(path)
        return all(any(re.fullmatch(p, Path(f).name) for p in folders) for f in files)

    return replaceable


class AtomicOutput:
    """One export entry (a directory, or a file with ``is_file``) written under a hidden
    ``.NAME.partial`` sibling and moved into place on success, so a killed export never looks
    finished. Everything is checked when it is created, before anything is written.

    A directory entry lists the files it wrote in a hidden record next to it
    (:func:`record_path`); ``overwrite`` replaces only the files the record (or, without one, the
    ``replaceable`` layout) names as the library's: anything else is *unrelated* and is kept
    (the new files are moved in around it), or, with ``keep_unrelated=False`` (Shar folders,
    where Lhotse reads every file), the export is refused before anything is written.

    :param overwrite: replace an existing non-empty entry (else ``FileExistsError``).
    :param replaceable: which top-level entries of an existing directory that has no record are
        the library's (e.g. :func:`layout`, :func:`is_shard_file`). ``None``: none.
    :param keep_unrelated: keep unrelated files (else refuse to overwrite when there are any).
    :param is_file: the entry is a file; the body writes the path ``__enter__`` returns. When it
        writes nothing, an existing entry is removed (it would describe an older export).
    :param format: the format name kept in the record.
    :raises FileExistsError: see ``overwrite`` and ``keep_unrelated``; a file where a directory
        goes (or the reverse) is always refused; a new file whose name an unrelated file holds.
    :raises ValueError: for an unsafe path, or an entry that resolves outside its directory.

    Example::

        >>> with AtomicOutput("out/nemo", overwrite=True, format="nemo") as tmp:
        ...     (tmp / "manifest_0.jsonl").write_text("...")
    """

    def __init__(
        self,
        path: Pathlike,
        *,
        overwrite: bool = False,
        replaceable: Callable[[Path], bool] | None = None,
        keep_unrelated: bool = True,
        is_file: bool = False,
        format: str | None = None,
    ) -> None:
        self.path = check_export_path(path)
        self.is_file = is_file
        self.format = format
        try:
            resolved = inside(self.path.absolute(), self.path.parent.absolute(), what="export")
        except ItemError as e:
            raise ValueError(e.reason) from None
        self.owned: tuple[set[str], set[str]] = (set(), set())
        self.unrelated: set[str] = set()
        self._check(overwrite, replaceable, keep_unrelated)
        self.partial = resolved.parent / f".{resolved.name}.partial"

    def _check(
        self, overwrite: bool, replaceable: Callable[[Path], bool] | None, keep_unrelated: bool
    ) -> None:
        if not self.path.exists() and not self.path.is_symlink():
            return
        if self.path.is_dir() == self.is_file:
            kind = "a directory" if self.is_file else "not a directory"
            raise FileExistsError(f"{self.path} exists and is {kind}")
        if not self.is_file and not any(self.path.iterdir()):
            return
        if not overwrite:
            raise FileExistsError(
                f"{self.path} exists; pass overwrite=True (CLI: --overwrite) to replace it"
            )
        if self.is_file:
            return
        self.owned = self._owned(replaceable)
        files, dirs = _tree(self.path)
        self.unrelated = (files - self.owned[0]) | (dirs - self.owned[1])
        if self.unrelated and not keep_unrelated:
            raise FileExistsError(
                f"Refusing to overwrite {self.path}: it holds entries this export did not write "
                f"({', '.join(sorted(self.unrelated)[:5])}), which Lhotse would read as data: "
                "move them elsewhere first"
            )

    def _owned(self, replaceable: Callable[[Path], bool] | None) -> tuple[set[str], set[str]]:
        """Files and folders of the existing entry that the library wrote."""
        files, dirs = _tree(self.path)
        record = read_record(self.path)
        if record is not None:
            return files & set(record["files"]), dirs & set(record["dirs"])
        if replaceable is None:
            return set(), set()
        tops = {p.name for p in self.path.iterdir() if replaceable(p)}
        below = [lambda x, t=t: x == t or x.startswith(t + "/") for t in tops]
        return (
            {f for f in files if any(match(f) for match in below)},
            {d for d in dirs if any(match(d) for match in below)},
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
        if self.is_file:
            if self.path.exists() or self.path.is_symlink():
                _remove(self.path)
            if self.partial.exists():
                os.replace(self.partial, self.path)
            return
        new_files, new_dirs = _tree(self.partial)
        if self.unrelated:
            self._merge(new_files, new_dirs)
        else:
            if self.path.exists() or self.path.is_symlink():
                _remove(self.path)
            os.replace(self.partial, self.path)
        _write_record(self.path, self.format, new_files, new_dirs)

    def _merge(self, new_files: set[str], new_dirs: set[str]) -> None:
        """Replace the library's files of the entry by the new ones, keeping unrelated ones."""
        clash = sorted(
            x for x in self.unrelated if x in new_files or (x in new_dirs and not self._is_dir(x))
        )
        clash += sorted(f for f in self.unrelated if any(n.startswith(f + "/") for n in new_files))
        if clash:
            _remove(self.partial)
            raise FileExistsError(
                f"Not overwriting {self.path}: this export would replace {', '.join(clash[:5])}, "
                "which it did not write; move it elsewhere first"
            )
        old_files, old_dirs = self.owned
        # Listed first, so that a kill from here on leaves no file of ours unrecorded.
        _write_record(self.path, self.format, old_files | new_files, old_dirs | new_dirs)
        for name in old_files:
            (self.path / name).unlink()
        for name in sorted(old_dirs, key=lambda d: d.count("/"), reverse=True):
            with contextlib.suppress(OSError):  # still holds unrelated files
                (self.path / name).rmdir()
        for name in sorted(new_dirs, key=lambda d: d.count("/")):
            (self.path / name).mkdir(exist_ok=True)
        for name in new_files:
            os.replace(self.partial / name, self.path / name)
        _remove(self.partial)

    def _is_dir(self, name: str) -> bool:
        path = self.path / name
        return path.is_dir() and not path.is_symlink()


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


def is_private_key(key: object) -> bool:
    """Whether a field named ``key`` is never exported: a secret (``api_key``, ``token``...) or
    a voice-cloning reference (``ref_audio``, ``references``...)."""
    return is_secret_key(key) or is_reference_key(key)


def public_fields(mapping: dict[str, Any] | None) -> dict[str, Any]:
    """``mapping`` without its :func:`is_private_key` entries."""
    return {k: v for k, v in (mapping or {}).items() if not is_private_key(k)}


def with_safe_id(cut: Cut) -> Cut:
    """``cut`` ready for Lhotse's Shar writer, which names every tar member ``<cut id>.<ext>``:
    itself when its id is a safe file name, else a copy stored under
    :func:`~lhotse_triplets.paths.safe_name` of its id with the id in ``custom[ORIGINAL_ID]``
    (Lhotse's reader requires the member name and the cut id to be equal, so the two cannot
    differ inside a Shar; :func:`~lhotse_triplets.export.reading.read_shar` restores the id).

    Example::

        >>> with_safe_id(cut.with_id("../../x/ESCAPED")).id
        'x_ESCAPED~56ca515935c7'
    """
    if is_safe_name(cut.id):
        return cut
    return fastcopy(cut, id=safe_name(cut.id), custom={**(cut.custom or {}), ORIGINAL_ID: cut.id})


def original_id(cut: Cut) -> Cut:
    """``cut`` with the id :func:`with_safe_id` replaced given back (``ORIGINAL_ID`` removed)."""
    custom = cut.custom or {}
    if not isinstance(custom.get(ORIGINAL_ID), str):
        return cut
    rest = {k: v for k, v in custom.items() if k != ORIGINAL_ID}
    return fastcopy(cut, id=custom[ORIGINAL_ID], custom=rest)


def write_empty_shard(directory: Path, data_fields: Iterable[str], numbered: bool) -> None:
    """An empty Shar shard (``cuts`` with no line and empty tars of ``data_fields``): a Shar of
    zero cuts that Lhotse's reader opens (a folder with no shard is not a Shar at all)."""
    suffix = ".000000" if numbered else ""
    with gzip.open(export_file(directory, f"cuts{suffix}.jsonl.gz"), "wb"):
        pass
    for name in data_fields:
        with tarfile.open(export_file(directory, f"{name}{suffix}.tar"), "w"):
            pass


def shard_paths(directory: Path, final: Path) -> dict[str, list[str]]:
    """field -> the Shar shard files in ``directory``, in order, named as they will be in
    ``final``."""
    out: dict[str, list[str]] = {}
    for path in sorted(directory.iterdir()):
        if is_shard_file(path):
            out.setdefault(path.name.split(".")[0], []).append(str(Path(final) / path.name))
    return out


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
    custom = public_fields(cut.custom)
    names = [k for k in custom if k not in (fields.IMAGE, fields.ANSWER, ORIGINAL_ID)]
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
        """The exported conversation's id: ``<conversation id>-<language>-<voice>``
        (``<conversation id>-<language>`` for a dialogue corpus's, which has no voice)."""
        voice = f"-{self.voice}" if self.voice else ""
        return f"{self.conversation_id}-{self.language}{voice}"


def conversation_key(cut: Cut) -> ConversationKey:
    """The conversation ``cut`` belongs to (its own id when it has no ``conversation_id``).

    A dialogue turn cut (:func:`~lhotse_triplets.dialogues.is_turn_cut`) has no voice in its
    key: its turns have different speakers, and a turn re-spoken by ``synthesize`` stays in it.
    """
    voice = "" if is_turn_cut(cut) else cut_voice(cut)
    return ConversationKey(conversation_id(cut), cut_language(cut), voice)


def audio_turn_attributes(custom: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The ``turn_attributes`` entries of a NeMo conversation's audio turns, in order (a dialogue
    conversation lists its text turns too, typed; a triplet one lists audio turns only)."""
    for attributes in (custom or {}).get(fields.TURN_ATTRIBUTES) or []:
        if attributes.get(fields.TURN_TYPE, "audio") == "audio":
            yield attributes


def _turn_order(cut: Cut) -> tuple[int, str]:
    return turn_number(cut), cut.id


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
            path = export_file(self.root, IMAGES_DIR, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            self.names[digest] = f"{IMAGES_DIR}/{name}"
        return self.names[digest]
