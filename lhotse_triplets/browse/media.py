"""Media locators: short strings that say where a record's audio or image lies inside the
browsed input, and :func:`open_media`, which reads one back (never outside the input).

Contract::

    def open_media(root: Path, locator: str) -> tuple[bytes, str]   # (data, content type e.g.
        "audio/flac", "image/png"); raises FileNotFoundError for anything not resolvable INSIDE
        root (paths.inside), never reads outside root

=====================================  ==========================================================
locator                                what is served
=====================================  ==========================================================
``file:<rel path>``                    a whole file (WAV/FLAC clip, PNG/JPEG image)
``seg:<rel path>:<offset>:<duration>``  seconds of a file, encoded to WAV
``tar:<rel tar>:<offset>:<size>``      ``size`` bytes at ``offset`` of a tar (the member's data,
                                       found once with ``tarfile`` while indexing): Shar
                                       recording / target_audio / image tars, NeMo audio tars
``nemo-image:<rel manifest>:<line>``   the base64 image in a NeMo conversation's ``custom``
``arrow:<rel dir>:<row>:<column>``     a ``save_to_disk`` dataset cell (HF ``audio``/``image``
                                       bytes; TTT ``speech`` floats, encoded to WAV)
``cut:<rel manifest>:<line>:<what>``   audio / target / image of the cut on that line of a
                                       manifest or stage shard, loaded with Lhotse (a resampled
                                       or cut-out recording, an in-memory image): WAV or PNG;
                                       every file it reads must lie inside root
=====================================  ==========================================================

Paths are relative to ``root`` (POSIX separators); the last ``:``-separated fields are numbers,
so a path may itself contain ``:``.

Example::

    >>> data, ctype = open_media(Path("out/export"), "tar:shar/recording.000000.tar:512:24317")
    >>> ctype
    'audio/flac'
"""

import base64
import functools
import gzip
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from lhotse_triplets import fields
from lhotse_triplets.errors import ItemError
from lhotse_triplets.paths import inside

#: Content types by file extension (audio and images a browser plays / shows).
CONTENT_TYPES = {
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
_MAGIC = (
    (b"fLaC", "audio/flac"),
    (b"RIFF", "audio/wav"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8", "image/jpeg"),
    (b"GIF8", "image/gif"),
)


# --- making locators -----------------------------------------------------------------------------


def relative(path: str | Path, root: Path) -> str | None:
    """``path`` relative to ``root`` (POSIX), or ``None`` when it lies outside ``root``."""
    try:
        return inside(path, root).relative_to(Path(root).resolve()).as_posix()
    except ItemError:
        return None


def file_locator(path: str | Path, root: Path) -> str | None:
    """``file:<rel>`` for a file inside ``root`` (``None`` outside it)."""
    rel = relative(path, root)
    return None if rel is None else f"file:{rel}"


def segment_locator(path: str | Path, root: Path, offset: float, duration: float) -> str | None:
    """``seg:<rel>:<offset>:<duration>`` (a whole file when ``offset`` is 0 and no duration)."""
    rel = relative(path, root)
    if rel is None:
        return None
    if not offset:
        return f"file:{rel}"
    return f"seg:{rel}:{offset:g}:{duration:g}"


def tar_locator(rel_tar: str, offset: int, size: int) -> str:
    return f"tar:{rel_tar}:{offset}:{size}"


def line_locator(scheme: str, rel: str, line: int, *what: str) -> str:
    """``<scheme>:<rel>:<line>[:<what>]`` (``nemo-image``, ``cut``)."""
    return ":".join([scheme, rel, str(line), *what])


def arrow_locator(rel_dir: str, row: int, column: str) -> str:
    return f"arrow:{rel_dir}:{row}:{column}"


# --- reading them back ---------------------------------------------------------------------------


def open_media(root: Path, locator: str) -> tuple[bytes, str]:
    """The bytes and content type behind ``locator`` (see the module docstring), read only from
    inside ``root``.

    :raises FileNotFoundError: for an unknown scheme, a malformed locator, a path leading outside
        ``root`` (``..``, absolute, symlink), a tar range past the end of its file, or anything
        that cannot be read.

    Example::

        >>> open_media(index.root, record.audio)
        (b'fLaC...', 'audio/flac')
    """
    scheme, _, rest = str(locator).partition(":")
    opener = _OPENERS.get(scheme)
    if opener is None or not rest:
        raise FileNotFoundError(f"not a media locator: {locator!r}")
    try:
        return opener(Path(root), rest)
    except FileNotFoundError:
        raise
    except (
        ItemError,
        ValueError,
        OSError,
        KeyError,
        IndexError,
        TypeError,
        sf.LibsndfileError,
    ) as e:
        raise FileNotFoundError(f"{locator!r}: {e}") from None


def _file(root: Path, rel: str) -> Path:
    if not rel or Path(rel).is_absolute():
        raise FileNotFoundError(f"{rel!r}: not a path relative to the browsed folder")
    path = inside(rel, root, what="media")  # raises ItemError outside root
    if not path.is_file():
        raise FileNotFoundError(f"{rel}: no such file")
    return path


def _split(rest: str, numbers: int) -> list[str]:
    """``rel:n1:...:nk`` -> ``[rel, n1, ..., nk]`` (the path may contain ``:``)."""
    parts = rest.rsplit(":", numbers)
    if len(parts) != numbers + 1:
        raise FileNotFoundError(f"{rest!r}: expected a path and {numbers} fields")
    return parts


def content_type(data: bytes, name: str = "") -> str:
    """The content type of ``data`` (magic bytes first, then the name's extension)."""
    for magic, ctype in _MAGIC:
        if data.startswith(magic):
            return ctype
    if data[8:12] == b"WEBP":
        return "image/webp"
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def wav_bytes(samples: np.ndarray, sampling_rate: int) -> bytes:
    """``samples`` (``(n,)``, or ``(channels, n)`` as Lhotse returns them) as a 16-bit WAV."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.T
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1, 1), int(sampling_rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _open_file(root: Path, rest: str) -> tuple[bytes, str]:
    path = _file(root, rest)
    data = path.read_bytes()
    return data, content_type(data, path.name)


def _open_segment(root: Path, rest: str) -> tuple[bytes, str]:
    rel, offset, duration = _split(rest, 2)
    path = _file(root, rel)
    rate = sf.info(path).samplerate
    frames = int(round(float(duration) * rate)) or -1
    samples, rate = sf.read(path, start=int(round(float(offset) * rate)), frames=frames)
    return wav_bytes(samples, rate), "audio/wav"


def _open_tar(root: Path, rest: str) -> tuple[bytes, str]:
    rel, offset, size = _split(rest, 2)
    path = _file(root, rel)
    start, length = int(offset), int(size)
    if start < 0 or length < 0 or start + length > path.stat().st_size:
        raise FileNotFoundError(f"{rel}: bytes {start}+{length} lie outside the file")
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(length)
    if data.startswith(b"\x93NUMPY"):  # a Shar image: encoded image bytes saved as .npy
        data = np.load(io.BytesIO(data), allow_pickle=False).tobytes()
    return data, content_type(data)


def _line(path: Path, number: int) -> str:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == number:
                return line
    raise FileNotFoundError(f"{path.name} has no line {number}")


def _open_nemo_image(root: Path, rest: str) -> tuple[bytes, str]:
    rel, line = _split(rest, 1)
    conv = json.loads(_line(_file(root, rel), int(line)))
    value = (conv.get("custom") or {}).get(fields.IMAGE)
    if not isinstance(value, str):
        raise FileNotFoundError(f"{rel}:{line} has no embedded image")
    data = base64.b64decode(value)
    return data, content_type(data)


@functools.lru_cache(maxsize=8)
def _dataset(path: Path) -> Any:
    from datasets import load_from_disk

    return load_from_disk(str(path))


def _open_arrow(root: Path, rest: str) -> tuple[bytes, str]:
    rel, row, column = _split(rest, 2)
    folder = inside(rel, root, what="dataset")
    if not (folder / "state.json").is_file():
        raise FileNotFoundError(f"{rel}: not a saved dataset")
    ds = _dataset(folder)
    value = ds.with_format("arrow").select_columns([column])[int(row)].column(0)[0].as_py()
    if isinstance(value, dict):  # datasets Audio / Image cell: {"bytes", "path"}
        data = value.get("bytes")
        if not data:
            raise FileNotFoundError(f"{rel}:{row}:{column} holds no bytes")
        return data, content_type(data, value.get("path") or "")
    if isinstance(value, list):  # TTT speech floats at the rate ttt.json declares
        declared = json.loads((folder / "ttt.json").read_text(encoding="utf-8"))
        return wav_bytes(
            np.asarray(value, dtype=np.float32), declared["sampling_rate"]
        ), "audio/wav"
    raise FileNotFoundError(f"{rel}:{row}:{column} is not audio or an image")


def _open_cut(root: Path, rest: str) -> tuple[bytes, str]:
    from lhotse.serialization import deserialize_item

    rel, line, what = _split(rest, 2)
    cut = deserialize_item(json.loads(_line(_file(root, rel), int(line))))
    if what == "image":
        return _cut_image(cut, root)
    recording = cut.recording if what == "audio" else (cut.custom or {}).get(fields.TARGET_AUDIO)
    if recording is None:
        raise FileNotFoundError(f"{rel}:{line} has no {what}")
    _check_sources(recording, root)
    if what == "audio":
        return wav_bytes(cut.load_audio(), cut.sampling_rate), "audio/wav"
    return wav_bytes(recording.load_audio(), recording.sampling_rate), "audio/wav"


def _check_sources(recording: Any, root: Path) -> None:
    for source in recording.sources:
        if source.type == "file":
            inside(source.source, root, what="audio")
        elif source.type != "memory":
            raise FileNotFoundError(f"audio source of type {source.type!r} is not served")


def _cut_image(cut: Any, root: Path) -> tuple[bytes, str]:
    from lhotse_triplets.images import load_image_bytes

    image = (cut.custom or {}).get(fields.IMAGE)
    if image is None or not hasattr(image, "storage_type"):
        raise FileNotFoundError(f"{cut.id} has no image")
    if image.storage_path:
        inside(Path(image.storage_path) / image.storage_key, root, what="image")
    elif image.storage_type not in ("memory_npy", "memory_raw", "memory_lilcom", "memory"):
        raise FileNotFoundError(f"image storage {image.storage_type!r} is not served")
    data = load_image_bytes(cut)
    return data, content_type(data)


_OPENERS = {
    "file": _open_file,
    "seg": _open_segment,
    "tar": _open_tar,
    "nemo-image": _open_nemo_image,
    "arrow": _open_arrow,
    "cut": _open_cut,
}
