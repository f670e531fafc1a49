"""Plain files, the layout of the project this library grew out of: WAVs per language and voice,
per-language metadata and failure logs, one triplet index, images copied once.

::

    OUT/files/en/v0/clevr_1-t0-en-v0.wav      16-bit PCM WAV (ids made file-safe)
    OUT/files/images/clevr_1_3f2a9c01d4.png   each distinct image once (conversation + hash)
    OUT/files/metadata_en.jsonl               one line per kept clip (the triplet index row)
    OUT/files/failed_en.jsonl                 rejected by the gate and failed here, with reason
    OUT/files/triplets.csv                    the index of every language (or .jsonl)

Paths inside the files are relative to ``OUT/files``, so the folder can be moved or archived as
is. Images are *copied* (not referenced) for the same reason. File and folder names made from
ids, languages and voices go through :func:`~lhotse_triplets.paths.safe_name`; the ids inside
the files stay as they are.

**Zero clips** (every clip rejected or failed): the index (a CSV header only, or an empty JSONL)
and the ``failed_<lang>.jsonl`` logs, no ``metadata_*.jsonl``;
:func:`~lhotse_triplets.export.reading.open_export` reads it as zero triplets, and the result
says so (``details["empty"]``, a warning).

Example::

    >>> result = export_triplet_files(cuts, "data")
    >>> result.details["index"]
    'data/files/triplets.csv'
"""

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from lhotse.cut import Cut
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.cuts import cut_language, cut_text, cut_voice, is_rejected
from lhotse_triplets.errors import Failure, FailureLog
from lhotse_triplets.export import common
from lhotse_triplets.export.base import ExportOptions, ExportResult, exporter
from lhotse_triplets.export.common import (
    DURATION,
    IMAGES_DIR,
    PROMPT_TEXT,
    AtomicOutput,
    ImageFiles,
    ItemGuard,
    audio_samples,
    check_choice,
    encode_audio,
    export_file,
    layout,
    require_answer,
)
from lhotse_triplets.export.triplets import (
    AUDIO,
    OFFSET,
    SAMPLING_RATE,
    SHARD,
    IndexWriter,
    triplet_row,
)
from lhotse_triplets.images import has_image
from lhotse_triplets.paths import safe_name

FORMAT = "triplet_files"
STAGE = f"export_{FORMAT}"
#: The folder inside the export directory.
FILES_DIR = "files"
INDEX_FORMATS = common.FILES_INDEX_FORMATS
#: The stage named in ``failed_<lang>.jsonl`` for cuts the gate rejected.
GATE_STAGE = "gate"
#: How a ``files`` folder written before export records existed is recognised (``--overwrite``).
LAYOUT = layout(
    IMAGES_DIR,
    patterns=(r"(metadata|failed)_.+\.jsonl", r"triplets\.(csv|jsonl)"),
    folders=(r".+\.wav",),
)


@exporter(FORMAT)
def export_triplet_files(
    cuts: Iterable[Cut], output_dir: Path, options: ExportOptions
) -> ExportResult:
    """WAVs under <lang>/<voice>/, metadata_<lang>.jsonl, failed_<lang>.jsonl, index, images/.

    Rejected cuts are not exported: they are listed in ``failed_<lang>.jsonl`` with their gate
    reason (stage ``gate``); cuts that fail here (no audio, no answer, unreadable image) too, with
    the error. Writes ``OUT/files/`` atomically.

    Options used: ``index_format`` (``csv``: ``triplets.csv``, or ``jsonl``), ``sampling_rate``
    (``None``: keep), ``overwrite``, ``progress``, ``on_failure`` (also called per failure here).

    :return: paths ``triplet_files``; details ``index``, ``metadata`` and ``failed``
        (language -> file).
    :raises ValueError: for an unsafe path or an unknown index format.
    :raises FileExistsError: when ``OUT/files`` is not empty and ``overwrite`` is false.

    Example::

        >>> export_triplet_files(cuts, "data", index_format="jsonl").details["index"]
        'data/files/triplets.jsonl'
    """
    check_choice("index_format", options.index_format, INDEX_FORMATS)
    target = AtomicOutput(
        output_dir / FILES_DIR, overwrite=options.overwrite, replaceable=LAYOUT, format=FORMAT
    )
    index_name = f"triplets.{options.index_format}"
    result = ExportResult(FORMAT, paths={FORMAT: str(target.path)})
    result.details["index"] = str(target.path / index_name)
    guard = ItemGuard(STAGE, result.counts, options.on_failure)
    with target as tmp, _Files(tmp) as files:
        index = IndexWriter(files.open(index_name), options.index_format)
        clips = _ClipWriter(tmp, options.sampling_rate)
        for cut in tqdm(cuts, desc="triplet files", unit="cut", disable=not options.progress):
            language = safe_name(cut_language(cut))
            if is_rejected(cut):
                result.counts.rejected += 1
                failure = Failure(cut.id, GATE_STAGE, str(cut.custom[fields.REJECT_REASON]))
                files.failed(language).write(failure, **_failure_details(cut))
                continue
            with guard.item(cut.id) as outcome:
                row = clips.write(cut)
            for failure in outcome.failures:
                files.failed(language).write(failure, **_failure_details(cut))
            if not outcome.ok:
                continue
            files.line(f"metadata_{language}.jsonl", row)
            index.write(row)
            result.counts.count(cut_language(cut), float(row[DURATION]))
        names = files.names()
    for kind in ("metadata", "failed"):
        result.details[kind] = {
            name.removeprefix(f"{kind}_").removesuffix(".jsonl"): str(target.path / name)
            for name in names
            if name.startswith(f"{kind}_")
        }
    if not result.counts.written:
        result.say_empty("clips", "the index is empty; failed_<lang>.jsonl lists why")
    return result


class _ClipWriter:
    """A clip's WAV (and its image, once) written under ``root``; its index row."""

    def __init__(self, root: Path, sampling_rate: int | None) -> None:
        self.root = root
        self.sampling_rate = sampling_rate
        self.images = ImageFiles(root)

    def write(self, cut: Cut) -> dict[str, Any]:
        require_answer(cut)
        audio, sr = audio_samples(cut, self.sampling_rate)
        image = self.images.add(cut) if has_image(cut) else None
        rel_audio = (
            Path(safe_name(cut_language(cut)))
            / safe_name(cut_voice(cut))
            / f"{safe_name(cut.id)}.wav"
        )
        path = export_file(self.root, *rel_audio.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_audio(audio, sr, "wav"))
        row = triplet_row(cut)
        row.update(
            {
                AUDIO: rel_audio.as_posix(),
                fields.IMAGE: image,
                SAMPLING_RATE: sr,
                DURATION: len(audio) / sr,
                OFFSET: 0.0,
                SHARD: None,
            }
        )
        return row


def _failure_details(cut: Cut) -> dict[str, Any]:
    return {
        fields.LANGUAGE: cut_language(cut),
        fields.VOICE: cut_voice(cut),
        PROMPT_TEXT: cut_text(cut),
        fields.ASR_TEXT: (cut.custom or {}).get(fields.ASR_TEXT),
    }


class _Files:
    """Text files and failed logs opened on first use inside one directory, closed together."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.handles: dict[str, IO[str]] = {}
        self.logs: dict[str, FailureLog] = {}

    def open(self, name: str) -> IO[str]:
        if name not in self.handles:
            path = export_file(self.root, name)
            self.handles[name] = open(path, "w", encoding="utf-8", newline="")
        return self.handles[name]

    def line(self, name: str, obj: dict[str, Any]) -> None:
        self.open(name).write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")

    def failed(self, language: str) -> FailureLog:
        name = f"failed_{language}.jsonl"
        if name not in self.logs:
            self.logs[name] = FailureLog(export_file(self.root, name)).__enter__()
        return self.logs[name]

    def names(self) -> list[str]:
        return sorted([*self.handles, *self.logs])

    def __enter__(self) -> "_Files":
        return self

    def __exit__(self, *args: Any) -> None:
        for f in self.handles.values():
            f.close()
        for log in self.logs.values():
            log.__exit__()
