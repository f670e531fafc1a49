"""Where MultiDialog's rows and audio come from: the Hub snapshot's files, or a local HF dataset.

- A snapshot of ``IVLLab/MultiDialog`` (its Hub loader is a dataset script, which ``datasets`` >= 4
  refuses to run): ``metadata/<split>/<split>_metadata_NNNN.jsonl`` and
  ``data/<split>/<split>_chunks_NNNN.tar.gz``.
- The same rows with an ``audio`` column (``{"bytes", "path"}``): a folder written by
  ``save_to_disk`` (a ``Dataset`` is the split ``split``; a ``DatasetDict`` gives its splits) or
  ``*.parquet`` files (a file, or a folder of them; the split is ``split``).

Rows are yielded as ``(fallback id, row)``; a line that cannot be read is an :class:`ItemError`
in place of the row, named ``<file>:<line>``.

Example::

    for split in snapshot_splits(Path("MultiDialog")):
        rows = snapshot_rows(Path("MultiDialog"), split)
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.recipes.multidialog.audio import STAGE, AudioStore

#: The corpus's splits, in the order they are prepared.
SPLITS = ("train", "valid_freq", "valid_rare", "test_freq", "test_rare")
Rows = Iterator[tuple[str, Any]]


def is_snapshot(source: Path) -> bool:
    """Whether ``source`` is a snapshot of the Hub repository (it has ``metadata/``)."""
    return (source / "metadata").is_dir()


def snapshot_splits(source: Path) -> list[str]:
    """The splits a snapshot has metadata for: the known ones in order, then any other."""
    found = sorted(p.name for p in (source / "metadata").iterdir() if p.is_dir())
    return [s for s in SPLITS if s in found] + [s for s in found if s not in SPLITS]


def snapshot_files(source: Path, split: str) -> tuple[list[Path], list[Path]]:
    """``(metadata files, audio chunks)`` of one split, sorted by name."""
    metadata = sorted((source / "metadata" / split).glob(f"{split}_metadata_*.jsonl"))
    chunks = sorted((source / "data" / split).glob(f"{split}_chunks_*.tar.gz"))
    return metadata, chunks


def snapshot_rows(metadata: list[Path]) -> Rows:
    """The rows of the metadata files; a bad line is an :class:`ItemError`."""
    for path in metadata:
        with path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                if raw.strip():
                    yield f"{path.name}:{number}", _json_line(raw)


def _json_line(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        return ItemError(f"invalid_utf8: {e}")
    except json.JSONDecodeError as e:
        return ItemError(f"invalid_json: {e}")


def load_dataset_splits(source: Path, split: str) -> dict[str, Any]:
    """A local HF dataset as ``{split: Dataset}``, its ``audio`` column left undecoded."""
    import datasets

    if source.is_dir() and not any(source.glob("*.parquet")):
        loaded = datasets.load_from_disk(str(source))
    else:
        files = sorted(source.glob("*.parquet")) if source.is_dir() else [source]
        loaded = datasets.load_dataset(
            "parquet", data_files={split: [str(f) for f in files]}, split=split
        )
    parts = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {split: loaded}
    return {
        name: part.cast_column("audio", datasets.Audio(decode=False))
        if "audio" in part.column_names
        else part
        for name, part in parts.items()
    }


def dataset_rows(dataset: Any, store: AudioStore, failures: list[Failure]) -> Rows:
    """The rows of a dataset; each row's audio goes to ``store`` (failures to ``failures``)."""
    for index, row in enumerate(dataset):
        audio = row.pop("audio", None) or {}
        data = audio.get("bytes") if isinstance(audio, dict) else None
        if data is None and isinstance(audio, dict) and audio.get("path"):
            data = _read(Path(audio["path"]))
        name = row.get("file_name") or (audio.get("path") if isinstance(audio, dict) else None)
        if data is not None and isinstance(name, str):
            try:
                store.add(name, data)
            except ItemError as e:
                failures.append(Failure.of(name, STAGE, e))
        yield f"row {index}", row


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
