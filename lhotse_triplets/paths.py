"""Ids made into file names, and paths kept inside their roots: the one place for both.

**Ids -> file names.** Every file or tar member this library names after an id (images of a
recipe, audio of a stage, members of an export, bench clips) goes through :func:`safe_name`:

- an id that is already a safe name (letters, digits, ``_``, ``.``, ``-``; not starting with ``.``
  or ``-``; at most :data:`MAX_NAME_BYTES` bytes in UTF-8) is used **as it is**, so the usual
  corpus ids (``clevr_1-t0-en-v0``) map to themselves and the name reads back as the id;
- any other id (``/``, ``..``, spaces, 300 characters, a JSON object turned into text) becomes its
  safe characters, cut short, plus ``~`` and 12 hex digits of the SHA-1 of the whole id: still
  readable, never a path, never too long, and two different ids never share a name.

Ids are never changed inside manifests; only the names of files made from them are.

**Paths -> inside their root.** :func:`inside` resolves a path (symlinks first) and refuses it
unless it lies under its declared root: every input path (images, audio, references) is confined
to the folder it was declared in, and every output path to the output directory. Opting out is
explicit (``allow_outside=True``, ``--allow-outside`` on the commands that read input paths).
"""

import hashlib
import os
import re
from pathlib import Path

from lhotse_triplets.errors import ItemError

#: Longest name (UTF-8 bytes) made from an id, leaving room for suffixes within 255 bytes.
MAX_NAME_BYTES = 150
#: Characters of a safe name (an id made only of these is used unchanged).
_SAFE = re.compile(r"[\w.\-]+", re.UNICODE)
_UNSAFE_RUN = re.compile(r"[^\w.\-]+", re.UNICODE)
#: Separator before the digest of an id that had to be changed (never in an unchanged name).
HASH_MARK = "~"
_DIGEST_CHARS = 12


def is_safe_name(text: str) -> bool:
    """Whether ``text`` is used unchanged as a file name by :func:`safe_name`."""
    return (
        bool(_SAFE.fullmatch(text))
        and not text.startswith((".", "-"))
        and len(text.encode("utf-8")) <= MAX_NAME_BYTES
    )


def safe_name(text: object) -> str:
    """``text`` as a file or tar member name: itself when safe, else readable + a digest.

    Example::

        >>> safe_name("clevr_1-t0-en-v0")
        'clevr_1-t0-en-v0'
        >>> safe_name("../../x/ESCAPED")
        'x_ESCAPED~56ca515935c7'
    """
    text = str(text)
    if is_safe_name(text):
        return text
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]
    readable = _UNSAFE_RUN.sub("_", text).strip("._-")
    while len(readable.encode("utf-8")) > MAX_NAME_BYTES - _DIGEST_CHARS - 1:
        readable = readable[: len(readable) // 2 if len(readable) > 8 else len(readable) - 1]
    return f"{readable}{HASH_MARK}{digest}" if readable else digest


def inside(
    path: str | os.PathLike,
    root: str | os.PathLike,
    *,
    what: str = "path",
    allow_outside: bool = False,
) -> Path:
    """``path`` (relative paths are taken under ``root``) resolved, symlinks included, and checked
    to lie under ``root`` (also resolved).

    :param what: what the path is, for the error (``image``, ``audio``, ``export file``...).
    :param allow_outside: return the resolved path wherever it lies (an explicit opt-out).
    :raises ItemError: ``outside_root: ...`` naming the path, where it leads and the root.

    Example::

        >>> inside("a/b.png", "corpus/images", what="image")
        PosixPath('/data/corpus/images/a/b.png')
        >>> inside("../secret.png", "corpus/images", what="image")
        Traceback (most recent call last):
        ItemError: outside_root: image ../secret.png resolves to /data/corpus/secret.png, ...
    """
    base = Path(root).resolve()
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if allow_outside or resolved == base or resolved.is_relative_to(base):
        return resolved
    raise ItemError(
        f"outside_root: {what} {str(path)!r} resolves to {resolved}, outside {base} "
        "(allow_outside / --allow-outside to permit)"
    )
