"""Opening a LLaVA-style source as rows: a JSONL dump, parquet/arrow/json files, a folder of them,
a dataset saved with ``Dataset.save_to_disk``, or a Hugging Face hub dataset id (streamed)."""

import codecs
import gzip
import json
import zlib
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
#: Suffixes that make a missing ``source`` a local path (never a hub dataset id).
LOCAL_SUFFIXES = (".jsonl", ".gz", ".json", ".parquet", ".arrow")


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
    :raises FileNotFoundError: for a local path that does not exist (see :func:`looks_local`;
        it is never taken for a hub id).

    Example::

        >>> rows, total = open_llava_rows("clevr.jsonl")
        >>> fallback_id, row = next(rows)
    """
    path = Path(source)
    if not path.exists() and looks_local(source):
        raise FileNotFoundError(f"No such corpus file or folder: {source}")
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
    """The rows of a JSONL dump (plain or gzip), read as bytes and decoded line by line: a line
    that is not UTF-8 or not a JSON object fails alone; a UTF-8 BOM opening the file is dropped."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rb") as f:
            for number, data in enumerate(f, start=1):
                if number == 1 and data.startswith(codecs.BOM_UTF8):
                    data = data[len(codecs.BOM_UTF8) :]
                if data.strip():
                    yield f"line-{number}", _json_row(data, number)
    except (EOFError, OSError, zlib.error) as e:
        if number == 0:
            raise ValueError(f"Cannot read corpus {path}: {type(e).__name__}: {e}") from e
        yield (
            f"line-{number + 1}",
            ItemError(f"unreadable_source: {path} breaks off after line {number} ({e})"),
        )


def _json_row(data: bytes, number: int) -> Row | ItemError:
    try:
        line = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return ItemError(f"invalid_utf8: line {number}: {e}")
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        return ItemError(f"invalid_json: line {number}: {e}")
    if not isinstance(row, dict):
        return ItemError(f"not_an_object: line {number} is a JSON {type(row).__name__}")
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
    return datasets.load_dataset(str(source), config, split=split, streaming=streaming)


def looks_local(source: Pathlike) -> bool:
    """Whether a ``source`` that does not exist names a local path rather than a hub dataset
    (``owner/name``): it has a file suffix of a corpus, more than one ``/``, starts with ``.``,
    ``/`` or ``~``, or its parent folder exists.

    Example::

        >>> looks_local("data/clevr.jsonl"), looks_local("mvp-lab/LLaVA-OneVision")
        (True, False)
    """
    text = str(source)
    path = Path(text)
    name = path.name.lower()
    return (
        name.endswith(LOCAL_SUFFIXES)
        or text.count("/") > 1
        or text.startswith((".", "/", "~"))
        or "\\" in text
        or (path.parent != Path(".") and path.parent.is_dir())
    )


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
