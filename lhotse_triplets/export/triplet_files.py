"""Plain files, the layout of the project this library grew out of: WAVs per language and voice,
per-language metadata and failure logs, one triplet index, images copied once.

::

    OUT/en/v0/clevr_1-t0-en-v0.wav      16-bit PCM WAV (ids made file-safe)
    OUT/images/clevr_1_3f2a9c01d4.png   each distinct image once (conversation id + content hash)
    OUT/metadata_en.jsonl               one line per kept clip (the triplet index row)
    OUT/failed_en.jsonl                 rejected by the gate and failed here, with the reason
    OUT/triplets.csv                    the index of every language (or .jsonl)

Paths inside the files are relative to ``OUT``, so the folder can be moved or archived as is.
Images are *copied* (not referenced) for the same reason.

Example::

    >>> result = export_triplet_files(cuts, "data/triplets")
    >>> print(result.counts)
"""

import csv
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lhotse.cut import Cut
from lhotse.utils import Pathlike
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.export.common import (
    AtomicDir,
    ExportCounts,
    OnFailure,
    audio_samples,
    cut_language,
    cut_voice,
    encode_audio,
    failure_reason,
    log_failure,
    safe_name,
)
from lhotse_triplets.export.shar import is_rejected
from lhotse_triplets.export.triplets import AUDIO, COLUMNS, SAMPLING_RATE, triplet_row
from lhotse_triplets.images import has_image, image_extension, load_image_bytes

STAGE = "export_triplet_files"
IMAGES_DIR = "images"
INDEX_FORMATS = ("csv", "jsonl")


@dataclass
class TripletFilesExport:
    """What :func:`export_triplet_files` wrote."""

    output_dir: Path
    index: Path
    #: language -> metadata file.
    metadata: dict[str, Path] = field(default_factory=dict)
    #: language -> failed log.
    failed: dict[str, Path] = field(default_factory=dict)
    counts: ExportCounts = field(default_factory=ExportCounts)


def export_triplet_files(
    cuts: Iterable[Cut],
    output_dir: Pathlike,
    *,
    index_format: str = "csv",
    sampling_rate: int | None = 16000,
    overwrite: bool = False,
    progress: bool = True,
    on_failure: OnFailure | None = None,
) -> TripletFilesExport:
    """Write kept cuts as WAV files + metadata/failed logs per language + one triplet index.

    Rejected cuts are not exported: they are listed in ``failed_<lang>.jsonl`` with their gate
    reason (stage ``gate``); cuts that fail here (no audio, unreadable image) too, with the error.

    :param index_format: ``csv`` (``triplets.csv``) or ``jsonl`` (``triplets.jsonl``).
    :param sampling_rate: resample the WAVs to this rate (``None``: keep it).
    :param on_failure: also called with each export failure (default: log a warning).
    :raises ValueError: for an unsafe path or an unknown index format.
    :raises FileExistsError: when ``output_dir`` is not empty and ``overwrite`` is false.

    Example::

        >>> export_triplet_files(cuts, "data/triplets", index_format="jsonl").index
        PosixPath('data/triplets/triplets.jsonl')
    """
    if index_format not in INDEX_FORMATS:
        raise ValueError(f"Unknown index_format {index_format!r}; use one of {INDEX_FORMATS}")
    on_failure = on_failure or log_failure
    atomic = AtomicDir(output_dir, overwrite=overwrite)
    out = atomic.output_dir
    result = TripletFilesExport(output_dir=out, index=out / f"triplets.{index_format}")
    with atomic as tmp, _Files(tmp) as files:
        index_file = files.open(f"triplets.{index_format}")
        index = (
            csv.DictWriter(index_file, fieldnames=list(COLUMNS)) if index_format == "csv" else None
        )
        if index is not None:
            index.writeheader()
        images: dict[str, str] = {}
        for cut in tqdm(cuts, desc="triplet files", unit="cut", disable=not progress):
            language = cut_language(cut)
            if is_rejected(cut):
                result.counts.rejected += 1
                reason = str(cut.custom[fields.REJECT_REASON])
                files.line(f"failed_{safe_name(language)}.jsonl", _failed(cut, "gate", reason))
                continue
            try:
                row = _write_clip(cut, tmp, images, sampling_rate)
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as e:
                result.counts.failed += 1
                failure = Failure(cut.id, STAGE, failure_reason(e))
                on_failure(failure)
                files.line(
                    f"failed_{safe_name(language)}.jsonl", _failed(cut, STAGE, failure.reason)
                )
                continue
            files.line(f"metadata_{safe_name(language)}.jsonl", row)
            if index is not None:
                index.writerow({k: "" if v is None else v for k, v in row.items()})
            else:
                index_file.write(json.dumps(row, ensure_ascii=False) + "\n")
            result.counts.count(language, float(row["duration"]))
        names = list(files.handles)
    for name in names:
        kind, _, rest = name.partition("_")
        language = rest.removesuffix(".jsonl")
        if kind == "metadata":
            result.metadata[language] = out / name
        elif kind == "failed":
            result.failed[language] = out / name
    return result


def _write_clip(
    cut: Cut, root: Path, images: dict[str, str], sampling_rate: int | None
) -> dict[str, Any]:
    audio, sr = audio_samples(cut, sampling_rate)
    rel_audio = (
        Path(safe_name(cut_language(cut))) / safe_name(cut_voice(cut)) / f"{safe_name(cut.id)}.wav"
    )
    rel_image = None
    if has_image(cut):
        data = load_image_bytes(cut)
        digest = hashlib.sha1(data).hexdigest()[:10]
        rel_image = images.get(digest)
        if rel_image is None:
            conversation = (cut.custom or {}).get(fields.CONVERSATION_ID) or cut.id
            name = f"{safe_name(str(conversation))}_{digest}.{image_extension(data)}"
            (root / IMAGES_DIR).mkdir(exist_ok=True)
            (root / IMAGES_DIR / name).write_bytes(data)
            rel_image = images[digest] = f"{IMAGES_DIR}/{name}"
    if not isinstance((cut.custom or {}).get(fields.ANSWER), str):
        raise ItemError(f"no '{fields.ANSWER}' text", cut.id)
    (root / rel_audio).parent.mkdir(parents=True, exist_ok=True)
    (root / rel_audio).write_bytes(encode_audio(audio, sr, "wav"))
    row = triplet_row(cut)
    row.update({AUDIO: rel_audio.as_posix(), fields.IMAGE: rel_image, SAMPLING_RATE: sr})
    row["duration"] = len(audio) / sr
    row["offset"] = 0.0
    row["shard"] = None
    return row


def _failed(cut: Cut, stage: str, reason: str) -> dict[str, Any]:
    custom = cut.custom or {}
    return {
        "cut_id": cut.id,
        "stage": stage,
        "reason": reason,
        "language": cut_language(cut),
        "voice": cut_voice(cut),
        "prompt_text": cut.supervisions[0].text if cut.supervisions else None,
        fields.ASR_TEXT: custom.get(fields.ASR_TEXT),
    }


class _Files:
    """Text files opened on first use inside one directory, closed together."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.handles: dict[str, IO[str]] = {}

    def open(self, name: str) -> IO[str]:
        if name not in self.handles:
            self.handles[name] = open(self.root / name, "w", encoding="utf-8", newline="")
        return self.handles[name]

    def line(self, name: str, obj: dict[str, Any]) -> None:
        self.open(name).write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")

    def __enter__(self) -> "_Files":
        return self

    def __exit__(self, *args: Any) -> None:
        for f in self.handles.values():
            f.close()
