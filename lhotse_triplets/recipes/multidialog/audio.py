"""MultiDialog's turn audio: read member by member from the ``tar.gz`` chunks, kept by stem.

Each chunk ``data/<split>/<split>_chunks_NNNN.tar.gz`` holds ``t_<uuid>/t_<uuid>_<utt><actor>.wav``
members. A chunk is read as a stream (``tarfile`` mode ``r|gz``, never extracted as a whole):
each ``.wav`` member is checked (a name that is absolute or holds ``..`` fails as
``unsafe_member``; audio soundfile cannot read fails as ``unreadable_audio``) and stored, in
``audio_root`` when given (``<audio_root>/<conv>/<stem>.wav``, checked to lie inside it), else
kept in memory. :class:`AudioStore` maps each stem to its audio, for the metadata rows to find.

Example::

    store = AudioStore(Path("out/audio/train"))
    failures = list(store.add_archive(Path("MultiDialog/data/train/train_chunks_0000.tar.gz")))
    recording = store.recording("t_0a1b-0", "t_0a1b_0A")
"""

import io
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import soundfile as sf
from lhotse import Recording

from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.paths import inside, safe_name
from lhotse_triplets.recipes.utils import turn_recording

STAGE = "prepare"
#: A turn's audio stem: ``<conv_id>_<utterance id><actor letters>``.
STEM_PATTERN = re.compile(r"(?P<conv>.+)_(?P<utt>\d+)(?P<actor>[A-Za-z]+)")


def parse_stem(stem: str) -> tuple[str, int, str] | None:
    """``(conv_id, utterance_id, actor)`` of an audio stem, ``None`` when it has another shape.

    Example::

        >>> parse_stem("t_0a1b_12B")
        ('t_0a1b', 12, 'B')
    """
    match = STEM_PATTERN.fullmatch(stem)
    if match is None:
        return None
    return match["conv"], int(match["utt"]), match["actor"]


def member_stem(name: str) -> str:
    """The stem of a ``.wav`` member (or ``file_name``), refusing names that escape.

    :raises ItemError: ``unsafe_member`` for an absolute name or one holding ``..``.
    """
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.name:
        raise ItemError(f"unsafe_member: {name[:200]!r} escapes the output")
    return path.stem


class AudioStore:
    """Turn audio by stem: files under ``audio_root`` (``None``: bytes kept in memory)."""

    def __init__(self, audio_root: Path | None = None) -> None:
        self.audio_root = Path(audio_root) if audio_root is not None else None
        self._audio: dict[str, Path | bytes] = {}

    def __len__(self) -> int:
        return len(self._audio)

    def __contains__(self, stem: str) -> bool:
        return stem in self._audio

    def add(self, name: str, data: bytes) -> None:
        """Store one member's audio (``name``: its path in the archive or dataset).

        :raises ItemError: ``unsafe_member``, ``unreadable_audio``, ``outside_root``.
        """
        stem = member_stem(name)
        try:
            sf.info(io.BytesIO(data))
        except (sf.LibsndfileError, RuntimeError, TypeError) as e:
            raise ItemError(f"unreadable_audio: {name[:200]!r}: {e}") from None
        if self.audio_root is None:
            self._audio[stem] = data
            return
        parsed = parse_stem(stem)
        folder = safe_name(parsed[0]) if parsed else "_"
        path = inside(Path(folder) / f"{safe_name(stem)}.wav", self.audio_root, what="audio")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp.{path.name}")
        tmp.write_bytes(data)
        tmp.replace(path)
        self._audio[stem] = path

    def add_archive(self, archive: Path) -> Iterator[Failure]:
        """Read every ``.wav`` member of a ``tar.gz`` chunk (streamed); yield what failed."""
        try:
            with tarfile.open(archive, mode="r|gz") as tar:
                for member in tar:
                    if not member.isfile() or not member.name.lower().endswith(".wav"):
                        continue
                    yield from self._add_member(tar, member)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            reason = f"unreadable_archive: {archive.name}: {type(e).__name__}: {e}"
            yield Failure(archive.name, STAGE, reason)

    def _add_member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[Failure]:
        handle = tar.extractfile(member)
        try:
            self.add(member.name, handle.read() if handle is not None else b"")
        except ItemError as e:
            yield Failure.of(member.name, STAGE, e)

    def recording(self, recording_id: str, stem: str) -> Recording | None:
        """The recording of ``stem`` named ``recording_id``, resampled to 16 kHz on load;
        ``None`` when there is no audio.

        :raises ItemError: ``unreadable_audio`` (a stored file that no longer reads).
        """
        audio = self._audio.get(stem)
        if audio is None:
            return None
        return turn_recording(audio, recording_id, name=f"{stem}.wav")
