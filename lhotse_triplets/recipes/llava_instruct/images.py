"""The image of a LLaVA-style row: embedded bytes (written out), a path, or looked up by id.

Embedded images are written to ``image_output_dir/<safe_name(id)>.<ext>`` with their original
encoding. Looking up an existing corpus image by id tries ``<id>.<ext>`` as the corpus names it
(when the id is a plain file name) and then ``<safe_name(id)>.<ext>``.

Every image path is confined to ``image_dir``: a path that resolves outside it (``../x.png``,
an absolute path, a symlink pointing out) fails with ``outside_root`` unless ``allow_outside``
is set; without ``image_dir`` only ``allow_outside`` lets an absolute path be read. Every image
is decoded in full before it is accepted (``unreadable_image`` for a truncated or corrupt one),
so no export ever carries an image its readers cannot open.

Failure reasons: ``missing_image``, ``unreadable_image``, ``outside_root``, ``invalid_image``
(an image field that is neither bytes nor a path), ``too_many_images``.
"""

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lhotse.image import Image
from lhotse.utils import Pathlike

from lhotse_triplets.errors import ItemError
from lhotse_triplets.images import encode_image, image_extension, image_manifest, verify_image
from lhotse_triplets.paths import inside, safe_name
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
    allow_outside: bool = False,
) -> Image | None:
    """The image manifest of ``row`` (embedded bytes are written to ``image_output_dir``).

    :param row: a row with an ``image`` (bytes, a PIL image, a path, ``{"bytes", "path"}``, or a
        list of one) or an ``images`` list of one, or neither (then ``image_dir/<id>.<ext>`` is
        looked up).
    :param conversation_id: the row's id (names looked-up and written images).
    :param image_dir: folder in which path-valued images (or ``<id>.<ext>``) are looked up, and
        which they must not leave.
    :param image_output_dir: where embedded image bytes are written; in memory when ``None``.
    :param require: raise :class:`ItemError` when no image is found (else ``None``).
    :param allow_outside: read image paths that resolve outside ``image_dir`` (or absolute paths
        without ``image_dir``) too.
    :raises ItemError: an unusable image (several, unreadable, outside ``image_dir``, or missing
        when required).

    Example::

        >>> image = image_for_row({"image": "a.png"}, "a", image_dir="corpus/images")
    """
    ref = _image_ref(row)
    if isinstance(ref, (bytes, bytearray)):
        return _embedded(bytes(ref), conversation_id, image_output_dir)
    if ref is not None and hasattr(ref, "save"):  # a decoded PIL image
        return _embedded(encode_image(ref), conversation_id, image_output_dir)
    if isinstance(ref, str) and ref:
        path = _named_path(ref, image_dir, require, allow_outside)
    elif ref is not None and ref != "":
        raise ItemError(f"invalid_image: the image field is a {type(ref).__name__}, not a path")
    elif image_dir is not None:
        path = _path_by_id(conversation_id, Path(image_dir), require, allow_outside)
    else:
        path = _missing("missing_image: the row has none", require)
    return _manifest(path) if path is not None else None


def _image_ref(row: Row) -> Any:
    """What the row gives as its image: bytes, a PIL image, a path string, or ``None``."""
    ref = row.get("image")
    if ref is None:
        ref = row.get("images")
    if isinstance(ref, (list, tuple)):  # ``images`` (or ``image``) as a list of one
        images = [x for x in ref if x is not None]
        if len(images) > 1:
            raise ItemError(
                f"too_many_images: the conversation has {len(images)} images; "
                "one image per conversation is supported"
            )
        ref = images[0] if images else None
    if isinstance(ref, Mapping):  # datasets' undecoded Image: {"bytes", "path"}
        ref = ref.get("bytes") or ref.get("path")
    return ref


def _embedded(data: bytes, conversation_id: str, image_output_dir: Pathlike | None) -> Image:
    verify_image(data)
    if image_output_dir is None:
        return image_manifest(data)
    root = Path(image_output_dir)
    name = f"{safe_name(conversation_id)}.{image_extension(data)}"
    path = inside(root / name, root, what="written image")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return image_manifest(path)


def _named_path(
    ref: str, image_dir: Pathlike | None, require: bool, allow_outside: bool
) -> Path | None:
    if image_dir is not None:
        path = _confined(ref, image_dir, allow_outside)
    elif Path(ref).is_absolute():
        if not allow_outside:
            raise ItemError(
                f"outside_root: image {ref[:200]!r} is an absolute path and no image_dir is given "
                "to confine it to (allow_outside / --allow-outside to permit)"
            )
        path = _confined(ref, "/", True)
    elif require:
        raise ItemError(f"missing_image: no image_dir given to resolve {ref[:200]!r}")
    else:
        return None
    if not _exists(path):
        return _missing(f"missing_image: {path} does not exist", require)
    if not _is_file(path):
        raise ItemError(f"missing_image: {path} is not a file")
    return path


def _confined(ref: str | Path, root: Pathlike, allow_outside: bool) -> Path:
    """``ref`` resolved under ``root`` and checked to stay there; odd paths fail by name."""
    try:
        return inside(ref, root, what="image", allow_outside=allow_outside)
    except RuntimeError as e:  # a symlink loop (Python < 3.13; later ones: "does not exist")
        raise ItemError(f"missing_image: {str(ref)[:200]!r} cannot be resolved ({e})") from e
    except (OSError, ValueError) as e:  # a NUL byte
        raise ItemError(
            f"invalid_image: path {str(ref)[:200]!r} cannot be resolved ({type(e).__name__}: {e})"
        ) from e


def _path_by_id(
    conversation_id: str, image_dir: Path, require: bool, allow_outside: bool
) -> Path | None:
    plain = Path(conversation_id).name == conversation_id and conversation_id not in (".", "..")
    names = [conversation_id] if plain else []
    stems = [image_dir / name for name in dict.fromkeys([*names, safe_name(conversation_id)])]
    for stem in stems:
        for ext in IMAGE_EXTENSIONS:
            candidate = stem.with_name(f"{stem.name}.{ext}")
            if _is_file(candidate):
                return _confined(candidate, image_dir, allow_outside)
    tried = " or ".join(f"{str(stem)[:300]}.{{{','.join(IMAGE_EXTENSIONS)}}}" for stem in stems)
    return _missing(f"missing_image: tried {tried}", require)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _manifest(path: Path) -> Image:
    verify_image(path)
    try:
        return image_manifest(path.absolute())
    except Exception as e:
        raise ItemError(f"unreadable_image: {path} ({type(e).__name__}: {e})") from e


def _missing(reason: str, require: bool) -> None:
    if require:
        raise ItemError(reason)
    logger.debug(reason)
