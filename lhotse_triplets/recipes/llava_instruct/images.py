"""The image of a LLaVA-style row: embedded bytes (written out), a path, or looked up by id.

Embedded images are written to ``image_output_dir/<safe_name(id)>.<ext>`` with their original
encoding. Looking up an existing corpus image by id tries ``<id>.<ext>`` as the corpus names it
(when the id is a plain file name) and then ``<safe_name(id)>.<ext>``.
"""

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lhotse.image import Image
from lhotse.utils import Pathlike

from lhotse_triplets.errors import ItemError
from lhotse_triplets.images import encode_image, image_extension, image_manifest
from lhotse_triplets.paths import safe_name
from lhotse_triplets.recipes.llava_instruct.sources import Row

logger = logging.getLogger(__name__)

#: Extensions tried for ``image_dir/<id>.<ext>`` when a row names no image file.
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp")


def image_for_row(
    row: Row,
    conversation_id: str,
    image_dir: Pathlike | None = None,
    image_output_dir: Pathlike | None = None,
    require: bool = False,
) -> Image | None:
    """The image manifest of ``row`` (embedded bytes are written to ``image_output_dir``).

    :param row: a row with an ``image`` (bytes, a PIL image, a path, ``{"bytes", "path"}``) or an
        ``images`` list of one, or neither (then ``image_dir/<id>.<ext>`` is looked up).
    :param conversation_id: the row's id (names looked-up and written images).
    :param image_dir: folder in which path-valued images (or ``<id>.<ext>``) are looked up.
    :param image_output_dir: where embedded image bytes are written; in memory when ``None``.
    :param require: raise :class:`ItemError` when no image is found (else ``None``).
    :raises ItemError: an unusable image (several, unreadable, or missing when required).

    Example::

        >>> image = image_for_row({"image": "a.png"}, "a", image_dir="corpus/images")
    """
    ref = _image_ref(row)
    if isinstance(ref, (bytes, bytearray)):
        return _embedded(bytes(ref), conversation_id, image_output_dir)
    if ref is not None and hasattr(ref, "save"):  # a decoded PIL image
        return _embedded(encode_image(ref), conversation_id, image_output_dir)
    if isinstance(ref, str) and ref:
        path = _named_path(ref, image_dir, require)
    elif image_dir is not None:
        path = _path_by_id(conversation_id, Path(image_dir), require)
    else:
        path = _missing("missing image: the row has none", require)
    return _manifest(path) if path is not None else None


def _image_ref(row: Row) -> Any:
    """What the row gives as its image: bytes, a PIL image, a path string, or ``None``."""
    ref = row.get("image")
    if ref is None and row.get("images") is not None:
        images = [x for x in row["images"] if x is not None]
        if len(images) > 1:
            raise ItemError(
                f"conversation has {len(images)} images; one image per conversation is supported"
            )
        ref = images[0] if images else None
    if isinstance(ref, Mapping):  # datasets' undecoded Image: {"bytes", "path"}
        ref = ref.get("bytes") or ref.get("path")
    return ref


def _embedded(data: bytes, conversation_id: str, image_output_dir: Pathlike | None) -> Image:
    if image_output_dir is None:
        return image_manifest(data)
    path = Path(image_output_dir) / f"{safe_name(conversation_id)}.{image_extension(data)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return _manifest(path)


def _named_path(ref: str, image_dir: Pathlike | None, require: bool) -> Path | None:
    if image_dir is not None:
        path = Path(image_dir) / ref
    elif Path(ref).is_absolute():
        path = Path(ref)
    elif require:
        raise ItemError(f"missing image: no image_dir given to resolve {ref!r}")
    else:
        return None
    if not path.is_file():
        return _missing(f"missing image: {path} does not exist", require)
    return path


def _path_by_id(conversation_id: str, image_dir: Path, require: bool) -> Path | None:
    plain = Path(conversation_id).name == conversation_id and conversation_id != ".."
    names = [conversation_id] if plain else []
    stems = [image_dir / name for name in dict.fromkeys([*names, safe_name(conversation_id)])]
    for stem in stems:
        for ext in IMAGE_EXTENSIONS:
            path = stem.with_name(f"{stem.name}.{ext}")
            if path.is_file():
                return path
    tried = " or ".join(f"{stem}.{{{','.join(IMAGE_EXTENSIONS)}}}" for stem in stems)
    return _missing(f"missing image: tried {tried}", require)


def _manifest(path: Path) -> Image:
    try:
        return image_manifest(path.absolute())
    except Exception as e:
        raise ItemError(f"unreadable image: {path} ({type(e).__name__}: {e})") from e


def _missing(reason: str, require: bool) -> None:
    if require:
        raise ItemError(reason)
    logger.debug(reason)
