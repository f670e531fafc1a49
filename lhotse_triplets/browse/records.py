"""Every input of this library read as a stream of :class:`Record`: one clip / turn / row,
normalised, with media locators (:mod:`~lhotse_triplets.browse.media`) instead of data.

Contract::

    @dataclass
    class Record:            # one clip / turn / row of any input, normalised
        id: str              # the cut / row / turn id as the input has it
        kind: str            # input kind: manifest, stage, shar, duplex, nemo, hf, ttt,
                             # triplet_files, triplets, bench, failed
        conversation_id: str | None
        turn: int | None
        role: str | None     # user/assistant for dialogue turns, None for triplet clips
        language: str | None
        voice: str | None
        engine: str | None   # the TTS engine (fields.TTS_MODEL)
        text: str | None         # the spoken text (supervision text)
        source_text: str | None  # the text before rephrasing (custom user_text), None when
                                 # the same/absent
        asr_text: str | None     # what the ASR heard
        answer: str | None       # the target answer / assistant text
        scores: dict[str, float] # of fields.SCORES present
        status: str              # "kept" | "rejected" | "failed" | "unscored" (no gate yet)
        reasons: list[str]       # reject reasons, or the failure reason
        duration: float | None
        audio: str | None        # opaque MEDIA LOCATOR (see media.py) or None
        target_audio: str | None # duplex agent channel locator
        image: str | None        # image locator
    def iter_records(path) -> Iterator[Record]   # any input: manifest, stage dir, run dir (its
        # gate/ stage if present else the last stage, plus failed.jsonl records with status
        # "failed"), an export folder (each export), every export kind, a bench run dir; streaming
    def input_kinds(path) -> list[tuple[str, Path]]  # what iter_records will read

Locators are relative to :func:`media_root` (the input folder; a file's folder; the run folder
for a stage or manifest inside a run, whose audio lies in the run's ``audio/``). Media outside
that root get no locator. A failed record's ``reasons`` is ``["<stage>: <reason>"]``, as the run
summary counts failures.

Example::

    >>> for record in iter_records("out"):          # a run folder: gate/ + failed.jsonl
    ...     print(record.id, record.status, record.reasons, record.audio)
    sample-000000-t0-en-v4 kept [] file:audio/en/v4/sample-000000-t0-en-v4.flac
"""

import csv
import gzip
import json
import math
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lhotse.cut import Cut
from lhotse.serialization import deserialize_item
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.browse import media
from lhotse_triplets.cuts import cut_language, cut_text, cut_voice, is_rejected, reject_reasons
from lhotse_triplets.dialogues import is_turn_cut, turn_role
from lhotse_triplets.engine.base import list_shards
from lhotse_triplets.errors import FAILED_GLOB, read_failures
from lhotse_triplets.export.common import ORIGINAL_ID, PROMPT_TEXT, audio_turn_attributes
from lhotse_triplets.export.hf import TARGET_TEXT
from lhotse_triplets.transforms.registry import STAGES
from lhotse_triplets.validate.kinds import TTT_FILE, find_targets

#: Statuses of a record.
STATUSES = ("kept", "rejected", "failed", "unscored")
#: The stage folders of a run, in order (``prompts`` before the stages).
RUN_STAGES = ("prompts", *STAGES)
#: Files that make a folder a run folder / a bench folder.
RUN_MARKERS = ("summary.json", "config.yaml")
BENCH_CLIPS = "clips.jsonl"
#: Column names of exported rows (triplets index, WAV-tree metadata, HF, bench clips).


@dataclass
class Record:
    """One clip / turn / row of any input, normalised (see the module docstring)."""

    id: str
    kind: str
    conversation_id: str | None = None
    turn: int | None = None
    role: str | None = None
    language: str | None = None
    voice: str | None = None
    engine: str | None = None
    text: str | None = None
    source_text: str | None = None
    asr_text: str | None = None
    answer: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    status: str = "kept"
    reasons: list[str] = field(default_factory=list)
    duration: float | None = None
    audio: str | None = None
    target_audio: str | None = None
    image: str | None = None


# --- what a path is --------------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a ``run`` output folder (``summary.json`` / ``config.yaml`` and at
    least one stage folder)."""
    return (
        path.is_dir()
        and any((path / m).is_file() for m in RUN_MARKERS)
        and any((path / s).is_dir() for s in RUN_STAGES)
    )


def is_bench_dir(path: Path) -> bool:
    return path.is_dir() and (path / BENCH_CLIPS).is_file()


def media_root(path: Pathlike) -> Path:
    """The folder media locators of ``path``'s records are relative to (and confined to)."""
    path = Path(path).resolve()
    folder = path if path.is_dir() else path.parent
    return folder.parent if not is_run_dir(folder) and is_run_dir(folder.parent) else folder


def input_kinds(path: Pathlike) -> list[tuple[str, Path]]:
    """What :func:`iter_records` reads under ``path``: ``(kind, path)`` pairs.

    :raises FileNotFoundError: when ``path`` does not exist.
    :raises ValueError: when nothing under it is a known input.

    Example::

        >>> input_kinds("out")
        [('stage', PosixPath('out/gate')), ('failed', PosixPath('out/failed.jsonl'))]
    """
    path = Path(path)
    if is_bench_dir(path):
        return [("bench", path / BENCH_CLIPS)] + _failed(path)
    if is_run_dir(path):
        stages = [path / s for s in RUN_STAGES if list_shards(path / s)]
        if (path / "gate").is_dir() and list_shards(path / "gate"):
            stages = [path / "gate"]
        return [("stage", p) for p in stages[-1:]] + _failed(path)
    return [(t.kind, t.path) for t in find_targets(path)]


def _failed(folder: Path) -> list[tuple[str, Path]]:
    logs = [folder / "failed.jsonl"] if (folder / "failed.jsonl").is_file() else []
    if not logs:
        logs = sorted(p for p in folder.glob(FAILED_GLOB) if not p.name.startswith("."))
    return [("failed", p) for p in logs]


def iter_records(path: Pathlike, root: Pathlike | None = None) -> Iterator[Record]:
    """The records of every input under ``path`` (:func:`input_kinds`), streamed.

    :param root: the folder locators are relative to (default :func:`media_root`).

    Example::

        >>> next(iter_records("out/export/nemo")).audio
        'tar:en/audio_0.tar:512:24317'
    """
    root = Path(root).resolve() if root is not None else media_root(path)
    for kind, source in input_kinds(path):
        yield from READERS[kind](source, root)


# --- cuts ---------------------------------------------------------------------------------------


def _number(value: Any, kind: type = float) -> Any:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if kind is int else number


def scores_of(values: dict[str, Any]) -> dict[str, float]:
    """The :data:`~lhotse_triplets.fields.SCORES` in ``values`` that are finite numbers."""
    out = {name: _number(values.get(name)) for name in fields.SCORES}
    return {k: v for k, v in out.items() if v is not None}


def _source_text(text: str | None, source: Any) -> str | None:
    return source if isinstance(source, str) and source != text else None


def _status(custom: dict, reasons: list[str], gated: bool) -> str:
    if reasons:
        return "rejected"
    return "kept" if gated or fields.REJECT_REASON in custom else "unscored"


def cut_record(cut: Cut, kind: str, gated: bool = False) -> Record:
    """The record of a cut (triplet clip, dialogue turn or duplex dialogue), without media."""
    custom = cut.custom or {}
    text = cut_text(cut)
    turn_cut = is_turn_cut(cut)
    reasons = reject_reasons(cut) if is_rejected(cut) else []
    conversation = custom.get(fields.CONVERSATION_ID)
    return Record(
        id=str(custom.get(ORIGINAL_ID) or cut.id),
        kind=kind,
        conversation_id=None if conversation is None else str(conversation),
        turn=_number(custom.get(fields.TURN), int),
        role=turn_role(cut) if turn_cut else None,
        language=cut_language(cut),
        voice=cut_voice(cut) if kind != "duplex" else None,
        engine=custom.get(fields.TTS_MODEL),
        text=text if kind != "duplex" else " / ".join(s.text or "" for s in cut.supervisions),
        source_text=_source_text(text, custom.get(fields.USER_TEXT)),
        asr_text=custom.get(fields.ASR_TEXT),
        answer=custom.get(fields.ANSWER),
        scores=scores_of(custom),
        status=_status(custom, reasons, gated),
        reasons=reasons,
        duration=float(cut.duration) if cut.has_recording else None,
    )


def _cut_lines(path: Path) -> Iterator[tuple[int, Cut]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                yield i, deserialize_item(json.loads(line))


def _whole_file(cut: Cut) -> str | None:
    """The file of ``cut``'s audio when the cut is that whole file, untransformed."""
    rec = cut.recording
    if rec is None or len(rec.sources) != 1 or rec.sources[0].type != "file" or rec.transforms:
        return None
    if cut.start or abs(cut.duration - rec.duration) > 1e-3:
        return None
    return rec.sources[0].source


def _image_file(cut: Cut) -> str | None:
    image = (cut.custom or {}).get(fields.IMAGE)
    if getattr(image, "storage_type", None) in ("pillow_files", "numpy_files"):
        return str(Path(image.storage_path) / image.storage_key)
    return None


def _cut_media(record: Record, cut: Cut, rel: str, line: int, root: Path) -> Record:
    file = _whole_file(cut)
    if file is not None:
        record.audio = media.file_locator(file, root)
    elif cut.has_recording:
        record.audio = media.line_locator("cut", rel, line, "audio")
    if (cut.custom or {}).get(fields.IMAGE) is not None:
        file = _image_file(cut)
        record.image = (
            media.file_locator(file, root)
            if file
            else media.line_locator("cut", rel, line, "image")
        )
    return record


def read_manifest_records(path: Path, root: Path, kind: str = "manifest") -> Iterator[Record]:
    """Records of a cut manifest (or every shard of a stage folder)."""
    files = list_shards(path) if path.is_dir() else [path]
    gated = path.is_dir() and path.name == "gate"
    for file in files:
        rel = media.relative(file, root)
        for line, cut in _cut_lines(file):
            record = cut_record(cut, kind, gated)
            yield _cut_media(record, cut, rel, line, root) if rel is not None else record


def _stage_records(path: Path, root: Path) -> Iterator[Record]:
    return read_manifest_records(path, root, "stage")


def tar_members(tar_path: Path) -> dict[str, tuple[int, int]]:
    """Data members of a tar by name without extension: ``(data offset, size)`` (metadata
    ``.json`` members left out)."""
    out = {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            if member.isfile() and not member.name.endswith(".json"):
                out[member.name.rsplit(".", 1)[0]] = (member.offset_data, member.size)
    return out


def _shar_tars(folder: Path, shard: Path, root: Path) -> dict[str, tuple[str, dict]]:
    """Per Shar field of one shard: the tar's locator path and its members."""
    suffix = shard.name[len("cuts") :].replace(".jsonl.gz", ".tar").replace(".jsonl", ".tar")
    out = {}
    for name in ("recording", fields.TARGET_AUDIO, fields.IMAGE):
        tar = folder / f"{name}{suffix}"
        rel = media.relative(tar, root) if tar.is_file() else None
        if rel is not None:
            out[name] = (rel, tar_members(tar))
    return out


def _shar_records(folder: Path, root: Path, kind: str = "shar") -> Iterator[Record]:
    shards = sorted(folder.glob("cuts.*.jsonl.gz")) + sorted(folder.glob("cuts.*.jsonl"))
    for shard in shards:
        tars = _shar_tars(folder, shard, root)
        for _, cut in _cut_lines(shard):
            record = cut_record(cut, kind, gated=True)
            located = {}
            for name, (rel, members) in tars.items():
                if cut.id in members:
                    located[name] = media.tar_locator(rel, *members[cut.id])
            record.audio = located.get("recording")
            record.target_audio = located.get(fields.TARGET_AUDIO)
            record.image = located.get(fields.IMAGE)
            yield record


def _duplex_records(folder: Path, root: Path) -> Iterator[Record]:
    return _shar_records(folder, root, "duplex")


# --- NeMo conversation shards -------------------------------------------------------------------


def _nemo_records(root_dir: Path, root: Path) -> Iterator[Record]:
    manifests = sorted(root_dir.glob("*/manifest_*.jsonl")) + sorted(
        root_dir.glob("manifest_*.jsonl")
    )
    for manifest in manifests:
        tar = manifest.parent / f"audio_{manifest.stem.rsplit('_', 1)[1]}.tar"
        rel_tar = media.relative(tar, root) if tar.is_file() else None
        members = tar_members(tar) if rel_tar else {}
        rel = media.relative(manifest, root)
        with open(manifest, encoding="utf-8") as f:
            for line, text in enumerate(f):
                if text.strip():
                    conv = json.loads(text)
                    image = _nemo_image(conv, root_dir, root, rel, line)
                    for record in _conversation_records(conv):
                        stem = record.audio.rsplit(".", 1)[0] if record.audio else None
                        where = members.get(stem) if stem else None
                        record.audio = media.tar_locator(rel_tar, *where) if where else None
                        record.image = image
                        yield record


def _nemo_image(conv: dict, root_dir: Path, root: Path, rel: str | None, line: int) -> str | None:
    custom = conv.get("custom") or {}
    if isinstance(custom.get(fields.IMAGE), str) and rel is not None:
        return media.line_locator("nemo-image", rel, line)
    if custom.get(fields.IMAGE_PATH):
        return media.file_locator(root_dir / custom[fields.IMAGE_PATH], root)
    return None


def _conversation_records(conv: dict) -> Iterator[Record]:
    """One record per audio turn (``audio`` holds the tar member name until located)."""
    custom = conv.get("custom") or {}
    turns = conv.get("conversations") or []
    attributes = audio_turn_attributes(custom)
    for i, turn in enumerate(turns):
        if turn.get("type") != "audio":
            continue
        attrs = next(attributes, {})
        answer = next((t.get("value") for t in turns[i + 1 :] if t.get("type") == "text"), None)
        dialogue = fields.TURN_TYPE in attrs
        yield Record(
            id=str(attrs.get("cut_id", turn.get("value"))),
            kind="nemo",
            conversation_id=str(custom.get(fields.CONVERSATION_ID) or conv.get("id")),
            turn=_number(attrs.get(fields.TURN), int),
            role=str(turn.get("from", "")).lower() or None if dialogue else None,
            language=custom.get(fields.LANGUAGE),
            voice=custom.get(fields.VOICE),
            engine=attrs.get(fields.TTS_MODEL) or custom.get(fields.TTS_MODEL),
            text=attrs.get("text"),
            asr_text=attrs.get(fields.ASR_TEXT),
            answer=answer,
            scores=scores_of(attrs),
            duration=_number(turn.get("duration")),
            audio=turn.get("value"),
        )


# --- datasets (HF, TTT) -------------------------------------------------------------------------


def _hf_records(path: Path, root: Path) -> Iterator[Record]:
    from datasets import Audio, Image, load_from_disk

    folder = path / "arrow" if (path / "arrow").is_dir() else path
    rel = media.relative(folder, root)
    ds = load_from_disk(str(folder))
    if "audio" in ds.column_names:
        ds = ds.cast_column("audio", Audio(decode=False))
    if "image" in ds.column_names:
        ds = ds.cast_column("image", Image(decode=False))
    for i, row in enumerate(ds):
        text = row.get(PROMPT_TEXT)
        record = _row_record(row, "hf", text, answer=row.get(TARGET_TEXT))
        if rel is not None and (row.get("audio") or {}).get("bytes"):
            record.audio = media.arrow_locator(rel, i, "audio")
        if rel is not None and (row.get("image") or {}).get("bytes"):
            record.image = media.arrow_locator(rel, i, "image")
        yield record


def _row_record(row: dict, kind: str, text: str | None, answer: str | None) -> Record:
    reasons = [r.strip() for r in str(row.get(fields.REJECT_REASON) or "").split(",") if r.strip()]
    conversation = row.get(fields.CONVERSATION_ID)
    return Record(
        id=str(row.get("id")),
        kind=kind,
        conversation_id=None if conversation is None else str(conversation),
        turn=_number(row.get(fields.TURN), int),
        language=row.get(fields.LANGUAGE) or None,
        voice=row.get(fields.VOICE) or None,
        engine=row.get(fields.TTS_MODEL) or None,
        text=text,
        source_text=_source_text(text, row.get(fields.USER_TEXT)),
        asr_text=row.get(fields.ASR_TEXT) or None,
        answer=answer,
        scores=scores_of(row),
        status="rejected" if reasons else "kept",
        reasons=reasons,
        duration=_number(row.get("duration")),
    )


_TTT_HEAVY = ("speech", "input_ids", "labels", "attention_mask")


def _ttt_records(path: Path, root: Path) -> Iterator[Record]:
    from datasets import load_from_disk

    rate = json.loads((path / TTT_FILE).read_text(encoding="utf-8")).get("sampling_rate")
    rel = media.relative(path, root)
    ds = load_from_disk(str(path))
    ds = ds.remove_columns([c for c in _TTT_HEAVY if c in ds.column_names and c != "speech"])
    light = ds.remove_columns(["speech"]) if "speech" in ds.column_names else ds
    for i, row in enumerate(light):
        conv, turn, length = (
            row.get("conversation_id"),
            row.get("turn_number"),
            row.get("speech_lengths"),
        )
        yield Record(
            id=str(row.get("id") or f"{conv}-t{turn}"),
            kind="ttt",
            conversation_id=None if conv is None else str(conv),
            turn=_number(turn, int),
            role=row.get("role"),
            language=row.get(fields.LANGUAGE),
            text=row.get("transcript"),
            status="kept",
            duration=int(length) / rate if length and rate else None,
            audio=media.arrow_locator(rel, i, "speech") if length and rel is not None else None,
        )


# --- rows with files (WAV tree, triplets index, bench) ------------------------------------------


def _rows(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        rows = (
            csv.DictReader(f) if path.suffix == ".csv" else (json.loads(x) for x in f if x.strip())
        )
        for row in rows:
            yield {k: (None if v == "" else v) for k, v in row.items()}


def _file_row_records(path: Path, root: Path, kind: str, base: Path) -> Iterator[Record]:
    for row in _rows(path):
        text = row.get(PROMPT_TEXT)
        record = _row_record(row, kind, text, answer=row.get(fields.ANSWER))
        audio, image = row.get("audio"), row.get(fields.IMAGE)
        if audio and "#" not in audio:
            offset = _number(row.get("offset")) or 0.0
            located = base / audio
            record.audio = media.segment_locator(located, root, offset, record.duration or 0.0)
        if image:
            record.image = media.file_locator(base / image.split("#")[0], root)
        yield record


def _triplet_files_records(folder: Path, root: Path) -> Iterator[Record]:
    for metadata in sorted(folder.glob("metadata_*.jsonl")):
        yield from _file_row_records(metadata, root, "triplet_files", folder)


def _triplets_records(path: Path, root: Path) -> Iterator[Record]:
    return _file_row_records(path, root, "triplets", path.parent)


def _bench_records(path: Path, root: Path) -> Iterator[Record]:
    for row in _rows(path):
        record = _row_record(row, "bench", row.get("text"), answer=None)
        record.id = str(row.get("cut_id"))
        record.conversation_id = row.get("prompt_id")
        record.engine = row.get("engine")
        record.status = "kept" if row.get("good") else "rejected"
        if row.get("audio"):
            record.audio = media.file_locator(path.parent / row["audio"], root)
        yield record


def _failed_records(path: Path, root: Path) -> Iterator[Record]:
    for failure in read_failures(path):
        reason = f"{failure.stage}: {failure.reason}"
        yield Record(id=failure.cut_id, kind="failed", status="failed", reasons=[reason])


READERS: dict[str, Callable[[Path, Path], Iterator[Record]]] = {
    "manifest": read_manifest_records,
    "stage": _stage_records,
    "shar": _shar_records,
    "duplex": _duplex_records,
    "nemo": _nemo_records,
    "hf": _hf_records,
    "ttt": _ttt_records,
    "triplet_files": _triplet_files_records,
    "triplets": _triplets_records,
    "bench": _bench_records,
    "failed": _failed_records,
}
