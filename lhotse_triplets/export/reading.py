"""Reading any export back, the way training code does: one reader per format name.

:func:`open_export` detects the format of a folder (or takes its name) and iterates
:class:`Triplet` ``(image, audio, sampling_rate, target_text, metadata)`` tuples:

- ``shar``: Lhotse Shar (``cuts.*.jsonl.gz``), also :func:`read_shar` / :func:`iter_triplets`;
- ``nemo``: NeMo ``multimodal_conversation`` shards (``<lang>/manifest_N.jsonl`` +
  ``audio_N.tar``): one triplet per audio turn, the target being the assistant turn after it;
- ``triplet_files``: ``metadata_<lang>.jsonl`` + WAVs + ``images/``;
- ``hf``: a Hugging Face dataset (``save_to_disk`` folder, or an export folder with ``arrow/``);
- ``ttt``: TTT rows (a ``save_to_disk`` folder with ``ttt.json``; reader in
  :mod:`~lhotse_triplets.export.ttt`): one triplet per turn, no image, the transcript as target
  text (a text-only turn has no samples).

A new format adds its reader with :func:`reader` (in its own module; the built-in format
modules are loaded before a folder is detected).

Every path a reader follows from inside an export (``image_path`` of a NeMo conversation, the
``audio`` and ``image`` of a triplet-files row) is resolved, symlinks included, and must lie
inside the export folder: one that leads outside fails with ``outside_root: ...``
(:func:`~lhotse_triplets.paths.inside`). Ids come back as they were (a Shar cut stored under
the safe name of its id gets its id back). An empty export (zero cuts, see each format) is read
as zero triplets; a folder the library left empty is recognised by its export record.

Example::

    >>> for image, audio, sr, target, meta in open_export("out/export/nemo"):
    ...     print(meta["id"], image.size, audio.shape, sr, target[:30])
"""

import base64
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf
from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.export.base import available_formats
from lhotse_triplets.export.common import (
    audio_turn_attributes,
    cut_metadata,
    is_shar_dir,
    original_id,
    read_record,
)
from lhotse_triplets.images import has_image, load_image
from lhotse_triplets.paths import inside
from lhotse_triplets.registry import Registry


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


@dataclass(frozen=True)
class Reader:
    """How to recognise a format's folder (``detect``) and iterate its triplets (``read``)."""

    detect: Callable[[Path], bool]
    read: Callable[[Path], Iterator[Triplet]]


#: Readers by format name (a format module may add its own: the built-in format modules are
#: imported before a lookup).
READERS: Registry[Reader] = Registry("readable export format")


def reader(name: str, detect: Callable[[Path], bool]) -> Callable:
    """Register ``read(path) -> Iterator[Triplet]`` as the reader of the format ``name``;
    ``detect(path)`` says whether a folder is one (readers are tried in name order).

    Example::

        >>> def is_mine(path):
        ...     return (path / "mine.jsonl").is_file()
        >>> @reader("my_format", detect=is_mine)
        ... def read_my_format(path):
        ...     yield from ...
    """

    def register(read: Callable[[Path], Iterator[Triplet]]) -> Callable:
        READERS.register(name)(Reader(detect, read))
        return read

    return register


def readable_formats() -> list[str]:
    """The format names that have a reader, sorted."""
    available_formats()  # loads the built-in format modules (a format may add its reader)
    return READERS.names()


def detect_export(path: Pathlike) -> str:
    """The format name of the export folder ``path`` (one of :func:`readable_formats`).

    :raises ValueError: naming the path and what was looked for.

    Example::

        >>> detect_export("out/export/nemo")
        'nemo'
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory (an export is a folder)")
    for name in readable_formats():
        if READERS.get(name).detect(path):
            return name
    record = read_record(path)
    if record is not None and record.get("format") in readable_formats():
        return record["format"]  # an export with nothing in it (zero cuts)
    raise ValueError(
        f"{path} is not an export this library knows ({', '.join(readable_formats())}): "
        f"expected Shar cuts.*.jsonl.gz, NeMo <lang>/manifest_N.jsonl, triplet "
        f"metadata_<lang>.jsonl, a datasets save_to_disk folder or TTT rows (ttt.json)"
    )


def open_export(path: Pathlike, format: str | None = None) -> Iterator[Triplet]:
    """Iterate ``(image, audio, sampling_rate, target_text, metadata)`` from any export.

    ``image`` is a PIL image (``None`` without one), ``audio`` mono ``float32``, ``metadata``
    a dict with at least ``id``, ``language`` and ``voice``.

    :param format: the format's name (default: detected, :func:`detect_export`).
    :raises ValueError: for an unknown format or a folder of no known format.

    Example::

        >>> image, audio, sr, target, meta = next(open_export("data/hf"))
    """
    name = format or detect_export(path)
    readable_formats()
    return READERS.get(name).read(Path(path))


def read_shar(shar_dir: Pathlike, **kwargs: Any) -> CutSet:
    """Lazily open a Shar directory written by the ``shar`` export (audio and image included).

    ``kwargs`` go to :meth:`lhotse.CutSet.from_shar` (e.g. ``shuffle_shards=True``).

    :raises FileNotFoundError: when the folder holds no Shar cuts shards.

    A cut stored under the safe name of its id (an id that is not a safe file name, see
    :mod:`~lhotse_triplets.export.shar`) is given its own id back.

    Example::

        >>> cut = next(iter(read_shar("out/export/shar")))
        >>> cut.custom["answer"]
    """
    shar_dir = Path(shar_dir)
    if not is_shar_dir(shar_dir):
        raise FileNotFoundError(f"No Shar cuts shards (cuts.*.jsonl.gz) in {shar_dir}")
    return CutSet.from_shar(in_dir=shar_dir, **kwargs).map(original_id)


def iter_triplets(source: Pathlike | Iterable[Cut]) -> Iterator[Triplet]:
    """Iterate ``(image, audio, sampling_rate, target_text, metadata)`` from a Shar export.

    :param source: a Shar directory written by the ``shar`` export, or cuts read from one.
    :raises ValueError: for a cut with no answer (e.g. a ``duplex`` export, which holds
        dialogues: read it with :func:`read_shar`).

    Example::

        >>> for image, audio, sr, answer, meta in iter_triplets("out/export/shar"):
        ...     print(meta["id"], image.size, audio.shape, sr, answer[:40])
    """
    cuts = read_shar(source) if isinstance(source, (str, Path)) else source
    for cut in cuts:
        cut = original_id(cut)
        if not isinstance((cut.custom or {}).get(fields.ANSWER), str):
            raise ValueError(
                f"Cut {cut.id!r} has no '{fields.ANSWER}': not a triplet export (a duplex "
                f"export holds dialogues: read it with read_shar)"
            )
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


reader("shar", detect=is_shar_dir)(iter_triplets)


def conversation_image(custom: dict[str, Any] | None, root: Pathlike | None = None) -> Any:
    """The image of a NeMo conversation from its ``custom`` dict, as a PIL image (or ``None``).

    Reads base64 bytes (``image_mode="embed"``), a Lhotse array (Shar read by NeMo) or
    ``image_path`` relative to ``root``, the conversation export directory (``image_mode="path"``).

    :raises ItemError: ``outside_root: ...`` when ``image_path`` leads outside ``root``
        (``../``, an absolute path, a symlink pointing outside).

    Example::

        >>> conversation_image(batch["conversations"][0].custom)
        <PIL.PngImagePlugin.PngImageFile image mode=RGB size=480x320>
    """
    custom = custom or {}
    value = custom.get(fields.IMAGE)
    if isinstance(value, str):
        data = base64.b64decode(value)
    elif value is not None and hasattr(value, "load"):
        data = np.asarray(value.load()).tobytes()
    elif custom.get(fields.IMAGE_PATH):
        if root is None:
            raise ValueError(
                f"The image is stored as a path ({custom[fields.IMAGE_PATH]}): pass root= the "
                f"conversation export directory"
            )
        data = inside(custom[fields.IMAGE_PATH], root, what="image_path").read_bytes()
    else:
        return None
    return _open_image(io.BytesIO(data))


def _open_image(source: Any) -> Any:
    import PIL.Image

    image = PIL.Image.open(source)
    image.load()
    return image


def _nemo_manifests(root: Path) -> list[Path]:
    return sorted(root.glob("*/manifest_*.jsonl")) + sorted(root.glob("manifest_*.jsonl"))


def _has_nemo_manifests(path: Path) -> bool:
    return bool(_nemo_manifests(path))


@reader("nemo", detect=_has_nemo_manifests)
def _read_nemo(root: Path) -> Iterator[Triplet]:
    for manifest in _nemo_manifests(root):
        index = manifest.stem.rsplit("_", 1)[1]
        with tarfile.open(manifest.parent / f"audio_{index}.tar") as tar:
            members = {m.name: m for m in tar.getmembers()}
            with open(manifest, encoding="utf-8") as f:
                for line in f:
                    conv = json.loads(line)
                    yield from _conversation_triplets(conv, tar, members, root)


def _conversation_triplets(conv: dict, tar, members, root: Path) -> Iterator[Triplet]:
    custom = conv.get("custom") or {}
    image = conversation_image(custom, root)
    turns = conv["conversations"]
    attributes = audio_turn_attributes(custom)
    for i, turn in enumerate(turns):
        if turn["type"] != "audio":
            continue
        attrs = next(attributes, {})
        target = next(
            (
                t["value"]
                for t in turns[i + 1 :]
                if t["type"] == "text" and t["from"] != turn["from"]
            ),
            None,
        )
        audio, sr = sf.read(
            io.BytesIO(tar.extractfile(members[turn["value"]]).read()), dtype="float32"
        )
        meta = {
            "id": attrs.get("cut_id", turn["value"]),
            "conversation": conv["id"],
            fields.LANGUAGE: custom.get(fields.LANGUAGE),
            fields.VOICE: custom.get(fields.VOICE),
            "prompt_text": attrs.get("text"),
            **{k: v for k, v in attrs.items() if k not in ("cut_id", "text")},
        }
        yield Triplet(image, audio, sr, target, meta)


def _has_metadata(path: Path) -> bool:
    return any(path.glob("metadata_*.jsonl"))


@reader("triplet_files", detect=_has_metadata)
def _read_triplet_files(root: Path) -> Iterator[Triplet]:
    for metadata in sorted(root.glob("metadata_*.jsonl")):
        with open(metadata, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                audio, sr = sf.read(inside(row["audio"], root, what="audio"), dtype="float32")
                image = row.get(fields.IMAGE)
                image = _open_image(inside(image, root, what="image")) if image else None
                meta = {k: v for k, v in row.items() if k not in (fields.ANSWER, "audio", "image")}
                yield Triplet(image, audio, sr, row[fields.ANSWER], meta)


def _is_hf(path: Path) -> bool:
    if is_ttt(path):
        return False
    return (path / "state.json").is_file() or (path / "arrow" / "state.json").is_file()


@reader("hf", detect=_is_hf)
def _read_hf(path: Path) -> Iterator[Triplet]:
    from datasets import Audio, load_from_disk

    from lhotse_triplets.export.hf import TARGET_TEXT

    path = path / "arrow" if (path / "arrow").is_dir() else path
    ds = load_from_disk(str(path)).cast_column("audio", Audio(decode=False))
    for row in ds:
        audio, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        meta = {k: v for k, v in row.items() if k not in ("audio", "image", TARGET_TEXT)}
        yield Triplet(row["image"], audio, sr, row[TARGET_TEXT], meta)


#: The layout file of a ``ttt`` export (:mod:`~lhotse_triplets.export.ttt`, which holds its
#: reader), next to its rows: a ``save_to_disk`` folder with it is not an ``hf`` export.
TTT_METADATA = "ttt.json"


def is_ttt(path: Path) -> bool:
    """Whether ``path`` is the folder of a ``ttt`` export (a ``save_to_disk`` folder with
    ``ttt.json``)."""
    return (path / TTT_METADATA).is_file() and (path / "state.json").is_file()
