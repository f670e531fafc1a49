"""Attach an image to a prompt cut and read it back, whatever form it travels in.

A prepared cut carries its image as a :class:`lhotse.image.Image` manifest in
``cut.custom[fields.IMAGE]`` (``cut.attach_image``: a file on disk, ``pillow_files``, or bytes
held in memory, ``pillow_memory``). Inside exported Shar the same field holds the *encoded* image
bytes as a 1-D ``uint8`` array (an :class:`lhotse.array.Array` manifest, read with
``cut.load_custom``), so that the image travels with the data. The helpers below accept every one
of these forms, and always hand back either the original encoded bytes or a PIL image.
"""

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from lhotse.cut import Cut
from lhotse.features.io import FileIO
from lhotse.image import Image
from lhotse.utils import Pathlike, fastcopy

from lhotse_triplets import fields
from lhotse_triplets.errors import ItemError

#: What :func:`attach_image` accepts: a path, encoded bytes, a PIL image, or a 1-D ``uint8`` array
#: of encoded bytes.
ImageLike = Pathlike | bytes | np.ndarray | Any

#: PIL format name -> file extension used when writing encoded bytes to disk.
_EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
}


def _pil():
    import PIL.Image

    return PIL.Image


def image_extension(data: bytes) -> str:
    """The file extension (``png``, ``jpg``, ...) that fits encoded image ``data``.

    :raises ItemError: ``unreadable_image: ...`` when ``data`` is not an image PIL can read.

    Example::

        >>> image_extension(open("cat.jpg", "rb").read())
        'jpg'
    """
    try:
        with _pil().open(io.BytesIO(data)) as img:
            fmt = img.format
    except Exception as e:
        raise ItemError(f"unreadable_image: undecodable bytes ({type(e).__name__}: {e})") from e
    return _EXTENSIONS.get(fmt, (fmt or "png").lower())


def verify_image(image: Pathlike | bytes) -> tuple[int, int]:
    """Decode a whole image (a file or encoded bytes), not only its header; return its size.

    A truncated or corrupt file passes ``PIL.Image.open`` (which reads the header) and fails
    later, in every reader of an export: this reads every pixel now (``Image.load()``).

    :raises ItemError: ``unreadable_image: ...`` naming the file (or the bytes) and the error.

    Example::

        >>> verify_image("images/000000.png")
        (320, 240)
    """
    what = "bytes" if isinstance(image, (bytes, bytearray)) else str(image)
    source = io.BytesIO(bytes(image)) if isinstance(image, (bytes, bytearray)) else image
    try:
        with _pil().open(source) as img:
            img.load()
            return img.size
    except Exception as e:
        raise ItemError(f"unreadable_image: {what} ({type(e).__name__}: {e})") from e


def encode_image(image: Any, image_format: str = "PNG") -> bytes:
    """Encode a PIL image (or an ``H x W [x C]`` array of pixels) as ``image_format`` bytes.

    Example::

        >>> data = encode_image(PIL.Image.new("RGB", (32, 24)))
    """
    if isinstance(image, np.ndarray):
        image = _pil().fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format=image_format)
    return buf.getvalue()


def image_manifest(image: ImageLike) -> Image:
    """A :class:`lhotse.image.Image` manifest for ``image``.

    A path is referenced where it lies (``pillow_files``); bytes, a 1-D ``uint8`` array of encoded
    bytes or a PIL image are held in memory with their encoded bytes (``pillow_memory``), so that
    :func:`load_image_bytes` returns them unchanged.

    Example::

        >>> image_manifest("images/000000.png").storage_type
        'pillow_files'
    """
    if isinstance(image, (str, Path)):
        path = Path(image)
        with _pil().open(path) as img:
            width, height = img.size
        return Image(
            storage_type="pillow_files",
            storage_path=str(path.parent),
            storage_key=path.name,
            width=width,
            height=height,
        )
    if isinstance(image, np.ndarray):
        if image.ndim != 1 or image.dtype != np.uint8:
            raise ValueError(
                f"Expected a 1-D uint8 array of encoded image bytes; got an array of shape "
                f"{image.shape} and dtype {image.dtype} (encode pixels with encode_image())"
            )
        image = image.tobytes()
    elif not isinstance(image, (bytes, bytearray)):
        if not isinstance(image, _pil().Image):
            raise TypeError(
                f"Expected an image path, bytes, a 1-D uint8 array or a PIL image; "
                f"got {type(image).__name__}"
            )
        image = encode_image(image)
    data = bytes(image)
    with _pil().open(io.BytesIO(data)) as img:
        width, height = img.size
    return Image(
        storage_type="pillow_memory",
        storage_path=None,
        storage_key=pickle.dumps(data),
        width=width,
        height=height,
    )


def attach_image(cut: Cut, image: ImageLike, key: str = fields.IMAGE) -> Cut:
    """A copy of ``cut`` with ``image`` attached under ``key`` (see :func:`image_manifest`).

    The input cut is not modified.

    Example::

        >>> cut = attach_image(cut, "images/000000.png")
        >>> cut = attach_image(cut, open("cat.jpg", "rb").read())
    """
    custom = dict(cut.custom or {})
    custom[key] = image_manifest(image)
    return fastcopy(cut, custom=custom)


def has_image(cut: Cut, key: str = fields.IMAGE) -> bool:
    """Whether ``cut`` carries an image under ``key``."""
    return (cut.custom or {}).get(key) is not None


def load_image_bytes(cut: Cut, key: str = fields.IMAGE) -> bytes:
    """The encoded bytes of the image of ``cut`` (the original file's bytes where there is one).

    Pixels held in memory without an encoding are encoded as PNG.

    :raises ItemError: when the cut has no image under ``key``.

    Example::

        >>> data = load_image_bytes(cut)                 # prepared cut (Image manifest)
        >>> data = load_image_bytes(shar_cut)            # Shar cut (uint8 array)
    """
    value = (cut.custom or {}).get(key)
    if value is None:
        raise ItemError(f"no image under custom field '{key}'", cut_id=cut.id)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, np.ndarray):
        return _array_bytes(value, cut.id)
    if isinstance(value, Image):
        return _image_manifest_bytes(value)
    if hasattr(value, "load"):
        # lhotse Array / TemporalArray manifests (e.g. read back from Shar).
        return _array_bytes(np.asarray(cut.load_custom(key)), cut.id)
    raise ItemError(f"unsupported image value of type {type(value).__name__}", cut_id=cut.id)


def load_image(cut: Cut, key: str = fields.IMAGE) -> Any:
    """The image of ``cut`` as a decoded PIL image (any form :func:`load_image_bytes` reads).

    Example::

        >>> load_image(cut).size
        (320, 240)
    """
    img = _pil().open(io.BytesIO(load_image_bytes(cut, key)))
    img.load()
    return img


def with_image_array(cut: Cut, key: str = fields.IMAGE) -> Cut:
    """A copy of ``cut`` whose image is a 1-D ``uint8`` array of its encoded bytes.

    This is the form that travels inside Shar: ``cut.load_custom(key).tobytes()`` gives the
    encoded image back on any machine.

    Example::

        >>> shar_ready = with_image_array(cut)
        >>> shar_ready.load_custom(fields.IMAGE).dtype
        dtype('uint8')
    """
    data = np.frombuffer(load_image_bytes(cut, key), dtype=np.uint8)
    return cut.attach_tensor(key, data)


def _array_bytes(array: np.ndarray, cut_id: str) -> bytes:
    if array.ndim == 1 and array.dtype == np.uint8:
        return array.tobytes()
    if array.ndim in (2, 3):  # decoded pixels
        return encode_image(array)
    raise ItemError(
        f"image array must be 1-D uint8 (encoded) or H x W [x C] pixels; got shape {array.shape}",
        cut_id=cut_id,
    )


def _image_manifest_bytes(image: Image) -> bytes:
    if image.storage_type == "pillow_files":
        with FileIO(image.storage_path).open_fileobj(image.storage_key, "r") as (f, _):
            return f.read()
    if image.storage_type == "pillow_memory":
        data = pickle.loads(image.storage_key)
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        return encode_image(data)  # numpy pixels or a PIL image
    return encode_image(image.load())
