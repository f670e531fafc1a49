"""A flat index of triplets (image, spoken prompt, target text) as JSONL or CSV.

One row per exported cut: where its image and audio are, the target text (the answer, verbatim),
the spoken prompt text, language, voice, TTS model, scores and duration. Media are referenced by
file path when they are files, or as ``<shard tar>#<cut id>`` when the cuts were read from a Shar
export (:func:`~lhotse_triplets.export.shar.read_shar`); in-memory media have no reference.

Example::

    >>> export_triplets(CutSet.from_jsonl_lazy("gated.jsonl.gz"), "triplets.csv")
    120
"""

import csv
import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from lhotse.array import Array, TemporalArray
from lhotse.audio import Recording
from lhotse.cut import Cut
from lhotse.image import Image
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.export.shar import is_rejected, to_json_value

#: Column names of the index that are not custom fields.
ID = "id"
LANGUAGE = "language"
VOICE = "voice"
PROMPT_TEXT = "prompt_text"
AUDIO = "audio"
OFFSET = "offset"
DURATION = "duration"
SAMPLING_RATE = "sampling_rate"
SHARD = "shard"

#: The columns of a triplet row, in order (JSONL keys and CSV header alike).
COLUMNS = (
    ID,
    fields.CONVERSATION_ID,
    fields.TURN,
    LANGUAGE,
    VOICE,
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
    fields.SIMILARITY,
    fields.WER,
    fields.CER,
    fields.ERROR_RATE,
    fields.MOS,
    fields.GATE_SCORE,
    fields.REJECT_REASON,
    SHARD,
)

#: Custom fields copied into a row as they are (JSON-converted).
_CUSTOM_COLUMNS = tuple(c for c in COLUMNS if c in fields.ALL and c != fields.IMAGE)


def cut_metadata(cut: Cut) -> dict[str, Any]:
    """Everything about ``cut`` except its media and answer, as JSON-able values.

    Id, duration, spoken prompt text, language and voice, then every JSON-able custom field
    (question, conversation id, turn, scores, provenance, ...).

    Example::

        >>> cut_metadata(cut)["language"]
        'fr'
    """
    sup = cut.supervisions[0] if cut.supervisions else None
    meta: dict[str, Any] = {
        ID: cut.id,
        DURATION: cut.duration,
        PROMPT_TEXT: sup.text if sup else None,
        LANGUAGE: sup.language if sup else None,
        VOICE: sup.speaker if sup else None,
    }
    for key, value in (cut.custom or {}).items():
        if key in (fields.IMAGE, fields.ANSWER) or _is_data(value):
            continue
        try:
            meta[key] = to_json_value(value)
        except TypeError:
            continue
    return meta


def triplet_row(cut: Cut) -> dict[str, Any]:
    """The index row of ``cut``: one value per :data:`COLUMNS` entry (``None`` when unknown).

    Example::

        >>> triplet_row(cut)["answer"]
        'There are three cubes.'
    """
    custom = cut.custom or {}
    sup = cut.supervisions[0] if cut.supervisions else None
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        {
            ID: cut.id,
            LANGUAGE: sup.language if sup else None,
            VOICE: sup.speaker if sup else None,
            fields.IMAGE: _image_reference(cut),
            AUDIO: _audio_reference(cut),
            OFFSET: cut.start,
            DURATION: cut.duration,
            SAMPLING_RATE: cut.sampling_rate if cut.has_recording else None,
            PROMPT_TEXT: sup.text if sup else None,
            SHARD: str(custom["shard_origin"]) if custom.get("shard_origin") else None,
        }
    )
    for key in _CUSTOM_COLUMNS:
        if key in custom:
            try:
                row[key] = to_json_value(custom[key])
            except TypeError:
                pass
    return row


def export_triplets(
    cuts: Iterable[Cut],
    output_path: Pathlike,
    *,
    include_rejected: bool = False,
) -> int:
    """Write the triplet index of ``cuts`` to ``output_path``; return the number of rows.

    The format follows the name: ``.csv`` (header + one row per cut, RFC 4180 quoting, so
    multi-line answers survive), ``.jsonl`` or ``.jsonl.gz`` (one JSON object per line, UTF-8).
    Streams (one cut at a time) and replaces the file only when complete.

    :param include_rejected: also list cuts the gate rejected (their ``reject_reason`` is set).
    :raises ValueError: for an unknown extension, or a path inside a Shar directory (the Shar
        reader would take the file for a data field).

    Example::

        >>> export_triplets(cuts, "export/triplets.jsonl")
        120
    """
    path = Path(output_path)
    name = path.name.lower()
    if name.endswith(".csv"):
        kind = "csv"
    elif name.endswith((".jsonl", ".jsonl.gz")):
        kind = "jsonl"
    else:
        raise ValueError(
            f"Cannot tell the format of {str(path)!r}: use a name ending in .jsonl, .jsonl.gz "
            f"or .csv"
        )
    if any(path.parent.glob("cuts.*.jsonl*")):
        raise ValueError(
            f"{str(path)!r} is inside a Shar directory ({path.parent}); Lhotse would read it as "
            f"a Shar field. Write the triplet index next to the Shar directory instead."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    count = 0
    with _open_text(tmp) as f:
        writer: csv.DictWriter | None = None
        if kind == "csv":
            writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
            writer.writeheader()
        for cut in cuts:
            if not include_rejected and is_rejected(cut):
                continue
            row = triplet_row(cut)
            if writer is not None:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
            else:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz.partial") or path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")


def _is_data(value: Any) -> bool:
    return isinstance(value, (Array, TemporalArray, Recording, Image))


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
    return f"{tar}#{cut.id}"


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
