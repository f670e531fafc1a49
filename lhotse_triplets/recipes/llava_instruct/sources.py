"""Opening a LLaVA-style source as rows: a JSONL dump, parquet/arrow/json files, a folder of them,
a dataset saved with ``Dataset.save_to_disk``, or a Hugging Face hub dataset id (streamed)."""

import gzip
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lhotse.utils import Pathlike

from lhotse_triplets.errors import ItemError

#: One conversation as the source gives it.
Row = Mapping[str, Any]
#: Rows in order: ``(fallback_id, row)``, or an :class:`ItemError` for a row that cannot be read.
Rows = Iterator[tuple[str, Row | ItemError]]

#: Local file suffixes read through HF ``datasets`` -> its builder name.
DATASETS_SUFFIXES = {".parquet": "parquet", ".arrow": "arrow", ".json": "json"}
_SUFFIX_LIST = ", ".join("*" + s for s in DATASETS_SUFFIXES)


def open_llava_rows(
    source: Pathlike,
    *,
    config: str | None = None,
    split: str = "train",
    streaming: bool = True,
) -> tuple[Rows, int | None]:
    """Rows of ``source`` in order as ``(fallback_id, row or ItemError)``, and their count if known.

    :param source: a JSONL dump, parquet/arrow/json files (or a folder of them), a folder written
        by ``Dataset.save_to_disk``, or a hub dataset id.
    :param config: the hub dataset's config (e.g. ``"CLEVR"``).
    :param split: the split to read.
    :param streaming: stream datasets read through HF ``datasets`` instead of caching them.

    Example::

        >>> rows, total = open_llava_rows("clevr.jsonl")
        >>> fallback_id, row = next(rows)
    """
    path = Path(source)
    if path.is_file() and path.name.lower().endswith((".jsonl", ".jsonl.gz")):
        return _iter_jsonl(path), None
    if path.is_file() and path.suffix.lower() not in DATASETS_SUFFIXES:
        raise ValueError(
            f"Unsupported source file {path}: expected *.jsonl, *.jsonl.gz, {_SUFFIX_LIST}, "
            "a folder, or a hub dataset id."
        )
    ds = _load_dataset(source, config=config, split=split, streaming=streaming)
    return _iter_dataset(ds)


def _iter_jsonl(path: Path) -> Rows:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield f"line-{number}", _json_row(line, number)


def _json_row(line: str, number: int) -> Row | ItemError:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        return ItemError(f"invalid JSON on line {number}: {e}")
    if not isinstance(row, dict):
        return ItemError(f"line {number} is not a JSON object")
    return row


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as e:
        raise ImportError(
            "Reading hub datasets or parquet/arrow files needs HF datasets: pip install datasets"
        ) from e
    return datasets


def _load_dataset(source: Pathlike, *, config: str | None, split: str, streaming: bool) -> Any:
    """``source`` opened with HF ``datasets`` (a ``Dataset`` or an ``IterableDataset``)."""
    datasets = _datasets()
    path = Path(source)
    if path.is_dir():
        return _load_folder(path, split=split, streaming=streaming)
    if path.is_file():
        builder = DATASETS_SUFFIXES[path.suffix.lower()]
        return datasets.load_dataset(
            builder, data_files={split: str(path)}, split=split, streaming=streaming
        )
    if path.suffix.lower() in DATASETS_SUFFIXES or str(source).startswith((".", "/")):
        raise FileNotFoundError(f"No such file or folder: {source}")
    return datasets.load_dataset(str(source), config, split=split, streaming=streaming)


def _load_folder(path: Path, *, split: str, streaming: bool) -> Any:
    """A folder written by ``save_to_disk``, or the data files of the first known type in it."""
    datasets = _datasets()
    if any((path / f).is_file() for f in ("dataset_dict.json", "state.json")):
        ds = datasets.load_from_disk(str(path))
        return ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    for suffix, builder in DATASETS_SUFFIXES.items():
        files = sorted(str(p) for p in path.rglob(f"*{suffix}"))
        if files:
            return datasets.load_dataset(
                builder, data_files={split: files}, split=split, streaming=streaming
            )
    raise ValueError(
        f"No dataset in {path}: expected a folder written by save_to_disk or one "
        f"with {_SUFFIX_LIST} files."
    )


def _iter_dataset(ds: Any) -> tuple[Rows, int | None]:
    total = None
    if isinstance(ds, _datasets().Dataset):
        total = len(ds)
        ds = ds.to_iterable_dataset()
    if ds.features is not None:
        ds = ds.decode(False)  # keep images as their original encoded bytes
    return ((f"row-{i}", row) for i, row in enumerate(ds)), total
