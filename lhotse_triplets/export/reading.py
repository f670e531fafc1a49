"""Reading any export back, the way training code does.

:func:`open_export` detects the layout and iterates
:class:`~lhotse_triplets.export.shar.Triplet` ``(image, audio, sampling_rate, target_text,
metadata)`` tuples:

- Lhotse Shar (``cuts.*.jsonl.gz``);
- NeMo ``multimodal_conversation`` shards (``<lang>/manifest_N.jsonl`` + ``audio_N.tar``): one
  triplet per audio turn, the target being the assistant turn that follows it;
- triplet files (``metadata_<lang>.jsonl`` + WAVs + ``images/``);
- a Hugging Face dataset (``save_to_disk`` folder, or an export folder with ``arrow/``).

Example::

    >>> for image, audio, sr, target, meta in open_export("out/export/nemo"):
    ...     print(meta["id"], image.size, audio.shape, sr, target[:30])
"""

import base64
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.export.shar import Triplet, iter_triplets

KINDS = ("shar", "nemo_conversation", "triplet_files", "hf")


def detect_export(path: Pathlike) -> str:
    """Which kind of export ``path`` is (one of :data:`KINDS`).

    :raises ValueError: naming the path and what was looked for.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory (an export is a folder)")
    if any(path.glob("cuts.*.jsonl*")) or any(path.glob("cuts.jsonl*")):
        return "shar"
    if any(path.glob("*/manifest_*.jsonl")) or any(path.glob("manifest_*.jsonl")):
        return "nemo_conversation"
    if any(path.glob("metadata_*.jsonl")):
        return "triplet_files"
    if (path / "state.json").is_file() or (path / "arrow" / "state.json").is_file():
        return "hf"
    raise ValueError(
        f"{path} is not an export this library knows: expected Shar cuts.*.jsonl.gz, NeMo "
        f"<lang>/manifest_N.jsonl, triplet metadata_<lang>.jsonl or a datasets save_to_disk folder"
    )


def open_export(path: Pathlike) -> Iterator[Triplet]:
    """Iterate ``(image, audio, sampling_rate, target_text, metadata)`` from any export.

    ``image`` is a PIL image (``None`` without one), ``audio`` mono ``float32``, ``metadata``
    a dict with at least ``id``, ``language`` and ``voice``.

    Example::

        >>> image, audio, sr, target, meta = next(open_export("data/hf"))
    """
    kind = detect_export(path)
    path = Path(path)
    if kind == "shar":
        return iter_triplets(path)
    if kind == "nemo_conversation":
        return _iter_conversations(path)
    if kind == "triplet_files":
        return _iter_triplet_files(path)
    return _iter_hf(path / "arrow" if (path / "arrow").is_dir() else path)


def conversation_image(custom: dict[str, Any] | None, root: Pathlike | None = None) -> Any:
    """The image of a NeMo conversation from its ``custom`` dict, as a PIL image (or ``None``).

    Reads base64 bytes (``image_mode="embed"``), a Lhotse array (Shar read by NeMo) or
    ``image_path`` relative to ``root``, the conversation export directory (``image_mode="path"``).

    Example::

        >>> conversation_image(batch["conversations"][0].custom)
        <PIL.PngImagePlugin.PngImageFile image mode=RGB size=480x320>
    """
    import PIL.Image

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
        data = (Path(root) / custom[fields.IMAGE_PATH]).read_bytes()
    else:
        return None
    img = PIL.Image.open(io.BytesIO(data))
    img.load()
    return img


def _iter_conversations(root: Path) -> Iterator[Triplet]:
    manifests = sorted(root.glob("*/manifest_*.jsonl")) + sorted(root.glob("manifest_*.jsonl"))
    for manifest in manifests:
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
    attributes = iter(custom.get(fields.TURN_ATTRIBUTES) or [])
    for i, turn in enumerate(turns):
        if turn["type"] != "audio":
            continue
        attrs = next(attributes, {})
        target = next((t["value"] for t in turns[i + 1 :] if t["from"] == "Assistant"), None)
        audio, sr = sf.read(
            io.BytesIO(tar.extractfile(members[turn["value"]]).read()), dtype="float32"
        )
        meta = {
            "id": attrs.get("cut_id", turn["value"]),
            "conversation": conv["id"],
            "language": custom.get(fields.LANGUAGE),
            "voice": custom.get(fields.VOICE),
            "prompt_text": attrs.get("text"),
            **{k: v for k, v in attrs.items() if k not in ("cut_id", "text")},
        }
        yield Triplet(image, audio, sr, target, meta)


def _iter_triplet_files(root: Path) -> Iterator[Triplet]:
    import PIL.Image

    for metadata in sorted(root.glob("metadata_*.jsonl")):
        with open(metadata, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                audio, sr = sf.read(root / row["audio"], dtype="float32")
                image = None
                if row.get(fields.IMAGE):
                    image = PIL.Image.open(root / row[fields.IMAGE])
                    image.load()
                meta = {k: v for k, v in row.items() if k not in (fields.ANSWER, "audio", "image")}
                yield Triplet(image, audio, sr, row[fields.ANSWER], meta)


def _iter_hf(path: Path) -> Iterator[Triplet]:
    from datasets import Audio, load_from_disk

    from lhotse_triplets.export.hf import TARGET_TEXT

    ds = load_from_disk(str(path)).cast_column("audio", Audio(decode=False))
    for row in ds:
        audio, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        meta = {k: v for k, v in row.items() if k not in ("audio", "image", TARGET_TEXT)}
        yield Triplet(row["image"], audio, sr, row[TARGET_TEXT], meta)
