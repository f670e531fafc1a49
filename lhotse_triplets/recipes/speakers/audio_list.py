"""The audio list a speaker set starts from (index-tts-lora's input): one clip per line.

Each line is ``path<TAB>transcript`` (``path|transcript`` is accepted too), split on the first
separator only, so a transcript may contain ``|``; a tab-separated line may carry a third column,
the speaker. Blank lines are skipped; a UTF-8 BOM opening the file and ``\\r\\n`` line ends are
accepted. A relative path is read relative to the list's folder, and every path must lie inside
that folder (``outside_root`` otherwise, unless ``allow_outside``).

A line that cannot be used becomes an :class:`Excluded` record: ``invalid_utf8``,
``outside_root``, ``missing_audio`` (a path that cannot even be resolved), ``duplicate_audio``
(the same file listed again), ``no_speaker`` (no speaker for this line while others have one).

Example::

    for item in read_audio_list("clips.tsv", speaker_from_folder=True):
        print(item)  # ListedClip(line=1, raw_path='anna/001.wav', ...) or Excluded(...)
"""

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lhotse.utils import Pathlike

from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.paths import inside

#: The stage named in the failures of this recipe.
STAGE = "prepare"
_BOM = "\ufeff"


@dataclass(frozen=True)
class ListedClip:
    """One usable line of the audio list.

    :param line: its 1-based line number.
    :param raw_path: the path as written.
    :param path: the path resolved (symlinks too), inside the list's folder unless allowed out.
    :param text: the transcript (``""`` when the line has none).
    :param speaker: the speaker name.
    """

    line: int
    raw_path: str
    path: Path
    text: str
    speaker: str

    @property
    def clip_id(self) -> str:
        """A unique, stable id: speaker, file stem and a digest of the full path (two files
        with the same name in different folders never share it)."""
        digest = hashlib.sha1(str(self.path).encode("utf-8", "surrogatepass")).hexdigest()[:8]
        return f"{self.speaker}-{self.path.stem}-{digest}"


@dataclass(frozen=True)
class Excluded:
    """A line or clip left out of the set, and why (``"<code>: <detail>"``).

    :param line: the line of the audio list.
    :param audio: the path as written (``""`` when the line could not be read).
    :param speaker: its speaker, when known.
    :param reason: ``"<code>: <detail>"``.
    :param clip_id: the clip's id (``line-<n>`` before it has one).
    """

    line: int
    audio: str
    speaker: str | None
    reason: str
    clip_id: str

    @classmethod
    def of(cls, clip: ListedClip, error: ItemError | str) -> "Excluded":
        """``clip`` excluded for ``error`` (an :class:`ItemError` or a reason)."""
        reason = error.reason if isinstance(error, ItemError) else str(error)
        return cls(clip.line, clip.raw_path, clip.speaker, reason, clip.clip_id)

    @property
    def failure(self) -> Failure:
        """The failed-log record."""
        return Failure(self.clip_id, STAGE, self.reason)


@dataclass(frozen=True)
class _Row:
    line: int
    raw_path: str
    text: str
    speaker: str | None


def read_audio_list(
    audio_list: Pathlike,
    *,
    speaker: str | None = None,
    speaker_from_folder: bool = False,
    allow_outside: bool = False,
) -> Iterator[ListedClip | Excluded]:
    """The clips of an audio list, and an :class:`Excluded` per line that cannot be used.

    :param speaker: the speaker of every clip (overrides a third column).
    :param speaker_from_folder: each clip's speaker is the name of the folder it lies in.
    :param allow_outside: accept paths outside the list's folder.
    :raises ValueError: when no line names a speaker and neither option gives one (naming the
        first line), or the list has no clip at all.
    :raises FileNotFoundError: when the list does not exist.

    Example::

        >>> next(read_audio_list("list.tsv", speaker="anna"))
        ListedClip(line=1, raw_path='001.wav', path=PosixPath('/data/001.wav'), text='Hi.', ...)
    """
    audio_list = Path(audio_list)
    if not audio_list.is_file():
        raise FileNotFoundError(f"Audio list {str(audio_list)!r} does not exist")
    root = audio_list.resolve().parent
    rows = list(_rows(audio_list.read_bytes()))
    if not rows:
        raise ValueError(f"Audio list {str(audio_list)!r} lists no clip")
    if speaker is None and not speaker_from_folder:
        unnamed = [r for r in rows if isinstance(r, _Row) and not r.speaker]
        if len(unnamed) == sum(isinstance(r, _Row) for r in rows) and unnamed:
            raise ValueError(
                f"{audio_list}, line {unnamed[0].line}: no speaker; give --speaker NAME, "
                "--speaker-from-folder, or a third (tab-separated) column"
            )
    seen: dict[Path, int] = {}
    for row in rows:
        if isinstance(row, Excluded):
            yield row
            continue
        name = _speaker_of(row, root, speaker, speaker_from_folder)
        try:
            yield _clip(row, root, name, allow_outside, seen)
        except ItemError as e:
            yield Excluded(row.line, row.raw_path, name, e.reason, f"line-{row.line}")


def _speaker_of(
    row: _Row, root: Path, speaker: str | None, speaker_from_folder: bool
) -> str | None:
    """The speaker of ``row``: the option's, its folder's name, or its third column."""
    if speaker_from_folder:
        return Path(os.path.normpath(root / row.raw_path)).parent.name or None
    return speaker if speaker is not None else row.speaker


def _clip(
    row: _Row, root: Path, speaker: str | None, allow_outside: bool, seen: dict[Path, int]
) -> ListedClip:
    if not row.raw_path:
        raise ItemError(f"missing_audio: line {row.line} has no path")
    try:
        path = inside(row.raw_path, root, what="audio", allow_outside=allow_outside)
    except (OSError, ValueError, RuntimeError) as e:  # NUL byte, symlink loop, name too long
        raise ItemError(
            f"missing_audio: path {row.raw_path[:200]!r} cannot be resolved ({e})"
        ) from None
    if not speaker:
        raise ItemError(f"no_speaker: line {row.line} names no speaker (third column)")
    if path in seen:
        raise ItemError(f"duplicate_audio: {row.raw_path[:200]!r} is listed on line {seen[path]}")
    seen[path] = row.line
    return ListedClip(row.line, row.raw_path, path, row.text, speaker)


def _rows(data: bytes) -> Iterator[_Row | Excluded]:
    """The non-blank lines of the list, parsed (a line that is not UTF-8 fails)."""
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            reason = f"invalid_utf8: line {number}: {e.reason}"
            yield Excluded(number, "", None, reason, f"line-{number}")
            continue
        if number == 1:
            line = line.removeprefix(_BOM)
        if line.strip():
            yield _parse_line(number, line)


def _parse_line(number: int, line: str) -> _Row:
    """``path<TAB>text[<TAB>speaker]`` or ``path|text``, split on the first separator."""
    if "\t" in line:
        parts = line.split("\t", 2)
        speaker = parts[2].strip() if len(parts) > 2 else ""
        return _Row(number, parts[0].strip(), parts[1].strip(), speaker or None)
    path, _, text = line.partition("|")
    return _Row(number, path.strip(), text.strip(), None)
