"""A flat index of triplets (image, spoken prompt, target text) as JSONL or CSV.

One row per exported cut: where its image and audio are, the target text (the answer, verbatim),
the spoken prompt text, language, voice, TTS model, scores and duration. Media are referenced by
file path when they are files, or as ``<shard tar>#<cut id>`` when the cuts were read from a Shar
export (:func:`~lhotse_triplets.export.reading.read_shar`; the member is named after
:func:`~lhotse_triplets.paths.safe_name` of the id); in-memory media have no reference.
**Zero cuts**: the file is written with no row (a CSV header only), and the result says so.

Example::

    >>> export_triplets(CutSet.from_jsonl_lazy("gated.jsonl.gz"), "out/export").paths
    {'triplets': 'out/export/triplets.jsonl'}
"""

import csv
import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from lhotse.cut import Cut
from lhotse.image import Image
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.cuts import cut_language, cut_text
from lhotse_triplets.export import common
from lhotse_triplets.export.base import ExportOptions, ExportResult, exporter
from lhotse_triplets.export.common import (
    DURATION,
    ID,
    PROMPT_TEXT,
    AtomicOutput,
    ExportCounts,
    check_choice,
    check_outside_shar,
    json_fields,
    kept_cuts,
)
from lhotse_triplets.paths import safe_name

FORMAT = "triplets"
#: Index formats by file-name ending.
INDEX_FORMATS = common.TRIPLETS_FORMATS

#: Column names of the index that are not custom fields (besides ``id``, ``prompt_text``,
#: ``duration``).
AUDIO = "audio"
OFFSET = "offset"
SAMPLING_RATE = "sampling_rate"
SHARD = "shard"

#: The columns of a triplet row, in order (JSONL keys and CSV header alike).
COLUMNS = (
    ID,
    fields.CONVERSATION_ID,
    fields.TURN,
    fields.LANGUAGE,
    fields.VOICE,
    fields.TTS_MODEL,
    fields.DATA_SOURCE,
    fields.IMAGE,
    AUDIO,
    OFFSET,
    DURATION,
    SAMPLING_RATE,
    PROMPT_TEXT,
    fields.USER_TEXT,
    fields.ANSWER,
    fields.ASR_TEXT,
    *fields.SCORES,
    fields.REJECT_REASON,
    SHARD,
)

#: Custom fields copied into a row as they are (JSON-converted).
_CUSTOM_COLUMNS = tuple(
    c for c in COLUMNS if c in fields.ALL and c not in (fields.IMAGE, fields.LANGUAGE, fields.VOICE)
)


def triplet_row(cut: Cut) -> dict[str, Any]:
    """The index row of ``cut``: one value per :data:`COLUMNS` entry (``None`` when unknown).

    Example::

        >>> triplet_row(cut)["answer"]
        'There are three cubes.'
    """
    custom = cut.custom or {}
    sup = cut.supervisions[0] if cut.supervisions else None
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(json_fields(custom, _CUSTOM_COLUMNS))
    row.update(
        {
            ID: cut.id,
            fields.LANGUAGE: sup.language if sup else None,
            fields.VOICE: sup.speaker if sup else None,
            fields.IMAGE: _image_reference(cut),
            AUDIO: _audio_reference(cut),
            OFFSET: cut.start,
            DURATION: cut.duration,
            SAMPLING_RATE: cut.sampling_rate if cut.has_recording else None,
            PROMPT_TEXT: cut_text(cut),
            SHARD: str(custom["shard_origin"]) if custom.get("shard_origin") else None,
        }
    )
    return row


class IndexWriter:
    """Triplet rows written to an open text file as CSV (header + RFC 4180 quoting, so
    multi-line answers survive) or JSONL (one JSON object per line, UTF-8).

    Example::

        >>> with open("triplets.csv", "w", newline="") as f:
        ...     IndexWriter(f, "csv").write(triplet_row(cut))
    """

    def __init__(self, file: IO[str], index_format: str) -> None:
        self.file = file
        self.csv: csv.DictWriter | None = None
        if index_format == "csv":
            self.csv = csv.DictWriter(file, fieldnames=list(COLUMNS))
            self.csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self.csv is not None:
            self.csv.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            self.file.write(json.dumps(row, ensure_ascii=False) + "\n")


def index_format_of(path: Pathlike) -> str:
    """The index format a file name asks for (its ending, one of :data:`INDEX_FORMATS`).

    :raises ValueError: for any other ending.
    """
    name = Path(path).name.lower()
    for kind in sorted(INDEX_FORMATS, key=len, reverse=True):
        if name.endswith(f".{kind}"):
            return kind
    raise ValueError(
        f"Cannot tell the format of {str(path)!r}: use a name ending in "
        f"{', '.join('.' + k for k in INDEX_FORMATS)}"
    )


def write_triplet_index(
    cuts: Iterable[Cut], path: Pathlike, *, include_rejected: bool, overwrite: bool
) -> ExportCounts:
    """Write the triplet index of ``cuts`` to the file ``path`` (its ending decides the format).

    Streams (one cut at a time) and replaces the file only when complete.

    :param include_rejected: also list cuts the gate rejected (their ``reject_reason`` is set).
    :raises ValueError: for an unknown ending, or a path inside a Shar directory (the Shar reader
        would take the file for a data field).
    :raises FileExistsError: when the file exists and ``overwrite`` is false.

    Example::

        >>> write_triplet_index(cuts, "out/t.csv", include_rejected=False, overwrite=True).written
        120
    """
    path = Path(path)
    index_format = index_format_of(path)
    check_outside_shar(path.parent, path)
    counts = ExportCounts()
    with AtomicOutput(path, overwrite=overwrite, is_file=True) as tmp, _open_text(tmp) as f:
        writer = IndexWriter(f, "csv" if index_format == "csv" else "jsonl")
        for cut in kept_cuts(cuts, include_rejected, counts):
            writer.write(triplet_row(cut))
            counts.count(cut_language(cut), cut.duration)
    return counts


@exporter(FORMAT)
def export_triplets(cuts: Iterable[Cut], output_dir: Path, options: ExportOptions) -> ExportResult:
    """Triplet index (image, audio, target text, language, voice, scores) as JSONL or CSV.

    Writes ``OUT/triplets.<triplets_format>`` (JSONL by default): one row per kept cut
    (:func:`triplet_row`), pointing at the cuts' own media. Options used: ``include_rejected``,
    ``overwrite``, ``triplets_format``.

    :return: paths ``triplets``.

    Example::

        >>> export_triplets(cuts, "out/export").counts.written
        120
    """
    check_choice("triplets_format", options.triplets_format, INDEX_FORMATS)
    path = output_dir / f"triplets.{options.triplets_format}"
    counts = write_triplet_index(
        cuts, path, include_rejected=options.include_rejected, overwrite=options.overwrite
    )
    result = ExportResult(FORMAT, paths={FORMAT: str(path)}, counts=counts)
    if not counts.written:
        result.say_empty("rows", f"{path.name} has no row")
    return result


def _open_text(path: Path) -> IO[str]:
    if path.name.removesuffix(".partial").endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")


def _shard_member(cut: Cut, field: str) -> str | None:
    """``<field shard tar>#<cut id>`` for a cut read from Shar, else ``None``."""
    origin = (cut.custom or {}).get("shard_origin")
    if not origin:
        return None
    origin = Path(origin)
    name = origin.name
    if not name.startswith("cuts."):
        return None
    stem = name[len("cuts.") :].split(".jsonl")[0]  # "000003" (or "" when unsharded)
    tar = origin.parent / (f"{field}.{stem}.tar" if stem else f"{field}.tar")
    return f"{tar}#{safe_name(cut.id)}"


def _image_reference(cut: Cut) -> str | None:
    value = (cut.custom or {}).get(fields.IMAGE)
    if value is None:
        return None
    if isinstance(value, Image) and value.storage_type == "pillow_files":
        return str(Path(value.storage_path) / value.storage_key)
    return _shard_member(cut, fields.IMAGE)


def _audio_reference(cut: Cut) -> str | None:
    if not cut.has_recording:
        return None
    sources = cut.recording.sources
    if len(sources) == 1 and sources[0].type == "file":
        return str(sources[0].source)
    return _shard_member(cut, "recording")
