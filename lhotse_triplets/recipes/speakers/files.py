"""Writing a speaker set's files: each one whole or not at all (a temporary file renamed into
place), so a rerun or an interrupted run never leaves a torn or half-appended file.

Example::

    write_json(out / "speaker_info.json", [{"speaker": "anna", ...}])
    write_npy(out / "anna" / "distance_matrix.npy", distances)
"""

import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lhotse_triplets.backends.tts.references import SAFE_VOICE_ID
from lhotse_triplets.errors import FailureLog

_UNSAFE_VOICE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@contextmanager
def atomic_path(path: Path):
    """A temporary path next to ``path`` (same suffixes) that replaces ``path`` when the block
    ends without an error, and is removed otherwise.

    Example::

        with atomic_path(out / "speakers_cuts_all.jsonl.gz") as tmp:
            cuts.to_file(tmp)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f".tmp.{path.name[:40]}.", suffix="".join(path.suffixes[-2:]), dir=path.parent
    )
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file; return ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def write_json(path: Path, data: Any) -> Path:
    """``data`` as indented JSON (UTF-8, non-ASCII kept)."""
    return write_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """One JSON object per line."""
    return write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_npy(path: Path, array: np.ndarray) -> Path:
    """``array`` in NumPy's ``.npy`` format."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return write_atomic(path, buffer.getvalue())


def copy_file(source: Path, target: Path) -> Path:
    """A copy of ``source`` at ``target`` (replaced whole)."""
    return write_atomic(target, source.read_bytes())


def write_manifest(manifest: Any, path: Path) -> Path:
    """A Lhotse manifest (``RecordingSet``, ``SupervisionSet``, ``CutSet``) at ``path``."""
    with atomic_path(path) as tmp:
        manifest.to_file(tmp)
    return path


def write_failed_log(path: Path, records: Iterable[tuple[Any, Mapping[str, Any]]]) -> Path:
    """A failed log of ``(Failure, extra keys)`` records (see :class:`FailureLog`)."""
    with atomic_path(path) as tmp, FailureLog(tmp) as log:
        for failure, extra in records:
            log.write(failure, **extra)
    return path


def voice_id(speaker: str) -> str:
    """The voice id a speaker gets in the voice catalog: its name when that is a safe voice id
    (``[A-Za-z0-9_.-]``), else its safe characters plus 8 hex digits of its SHA-1.

    Example::

        >>> voice_id("anna"), voice_id("Zoë R.")
        ('anna', 'Zo_R-080bcf3f')
    """
    if SAFE_VOICE_ID.match(speaker):
        return speaker
    digest = hashlib.sha1(speaker.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    readable = _UNSAFE_VOICE_CHARS.sub("_", speaker).strip("_.-")[:60]
    return f"{readable}-{digest}" if readable else f"speaker-{digest}"


def write_catalog(path: Path, references: Mapping[str, Mapping[str, str]]) -> Path:
    """A voice catalog YAML (``references: {voice: {audio, text, language}}``) at ``path``."""
    data = {"references": {k: dict(v) for k, v in references.items()}}
    return write_atomic(path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
