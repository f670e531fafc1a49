"""Every kind read as a stream of :class:`Item`: what one cut, row or conversation declares, and
how to load what it points at (audio, target audio, image, tokens), each with the kind's own
reader (Lhotse for manifests and Shar, ``tarfile`` + ``soundfile`` for NeMo shards, ``datasets``
for HF and TTT, ``soundfile`` for the WAV tree and the index).

Loading is deferred to callables, run by :class:`~lhotse_triplets.validate.checks.Checker` while
the reader is paused on the item (a NeMo tar stays open meanwhile): one item's audio in memory
at a time.

Example::

    >>> item = next(read_items(Target("manifest", Path("out/gate/cuts.000000.jsonl.gz"))))
    >>> item.id, item.audio().sampling_rate
    ('sample-000000-t0-en-v4', 16000)
"""

import csv
import functools
import gzip
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf
from lhotse import Recording
from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.cuts import cut_text
from lhotse_triplets.dialogues import MISSING_AUDIO, is_turn_cut
from lhotse_triplets.engine.base import read_cuts
from lhotse_triplets.export.common import (
    DURATION,
    ID,
    PROMPT_TEXT,
    audio_turn_attributes,
    conversation_key,
)
from lhotse_triplets.export.reading import conversation_image, read_shar
from lhotse_triplets.images import has_image, load_image
from lhotse_triplets.paths import inside
from lhotse_triplets.validate.kinds import TTT_FILE, Target

#: The rate dialogue data is expected at when neither the caller nor the export says.
DIALOGUE_RATE = 16000
#: TTT rows: the columns every row has (``input_ids``/``labels``/``attention_mask`` optional).
TTT_COLUMNS = ("conversation_id", "turn_number", "role", "speech", "speech_lengths", "transcript")
TTT_TOKENS = ("input_ids", "labels", "attention_mask")
#: Columns of the index rows and WAV-tree metadata every row must have.
INDEX_COLUMNS = (ID, "audio", fields.ANSWER, DURATION, "sampling_rate")
#: HF rows.
HF_COLUMNS = (ID, "audio", "target_text")


class Audio(NamedTuple):
    """Decoded samples (as the reader returns them: ``(channels, n)`` or ``(n,)``) and rate."""

    samples: np.ndarray
    sampling_rate: int


@dataclass
class Item:
    """One thing to check; ``None`` (or empty) attributes are checks that do not apply."""

    id: str
    #: ``"turn"``, ``"conversation"``, ``"row"``...: ids are unique within a namespace.
    namespace: str = "item"
    missing: tuple[str, ...] = ()
    #: Texts that must be non-empty strings.
    texts: tuple[Any, ...] | None = None
    audio: Callable[[], Audio] | None = None
    #: Duration the manifest / row declares for the audio (seconds).
    duration: float | None = None
    #: Rate the manifest / row declares for the decoded audio.
    declared_rate: int | None = None
    #: Why the stored file's own rate differs from what the manifest says (``None``: it does not).
    stored_rate: Callable[[], str | None] | None = None
    #: Rate the export declares for everything in it (TTT's ``ttt.json``).
    expected_rate: int | None = None
    #: Dialogue data (expected at :data:`DIALOGUE_RATE` by default).
    dialogue: bool = False
    target: Callable[[], Audio] | None = None
    image: Callable[[], Any] | None = None
    conversation: str | None = None
    turn: int | None = None
    #: Turns must start at 0 and be contiguous (dialogues); else only "turn N twice" fails.
    strict_turns: bool = True
    #: Why the token columns are wrong (``None``: they are fine).
    tokens: Callable[[], str | None] | None = None


def read_items(target: Target) -> Iterator[Item]:
    """The items of ``target``, lazily, with the reader of its kind."""
    path = target.path
    if target.kind in ("manifest", "stage"):
        return cut_items(read_cuts(path), duplex=False, exported=False)
    if target.kind in ("shar", "duplex"):
        return cut_items(read_shar(path), duplex=target.kind == "duplex", exported=True)
    return _READERS[target.kind](path)


# --- cuts (manifest, stage directory, Shar, duplex Shar) ----------------------------------------


def cut_items(cuts: Iterable[Cut], duplex: bool, exported: bool) -> Iterator[Item]:
    """Items of Lhotse cuts: dialogue turns, triplets or DuplexS2S dialogues.

    :param exported: triplet cuts must have audio (in a manifest, e.g. ``prompts``, they may
        not yet).
    """
    for cut in cuts:
        yield duplex_item(cut) if duplex else cut_item(cut, exported)


def cut_audio(cut: Cut) -> Audio:
    return Audio(cut.load_audio(), cut.sampling_rate)


def recording_audio(recording: Recording) -> Audio:
    return Audio(recording.load_audio(), recording.sampling_rate)


def stored_rate(recording: Recording) -> str | None:
    """Why the file behind ``recording`` is not at the rate the manifest says it is."""
    declared = next(
        (
            t.source_sampling_rate
            for t in recording.transforms or []
            if hasattr(t, "source_sampling_rate")
        ),
        recording.sampling_rate,
    )
    source = recording.sources[0]
    if source.type == "file":
        actual = sf.info(source.source).samplerate
    elif source.type == "memory":
        actual = sf.info(io.BytesIO(source.source)).samplerate
    else:
        return None
    return None if actual == declared else f"stored at {actual} Hz, the manifest says {declared}"


def cut_item(cut: Cut, exported: bool = False) -> Item:
    """A dialogue turn cut (audio required unless text-only) or a triplet cut (audio required
    when ``exported``)."""
    custom = cut.custom or {}
    turn_cut = is_turn_cut(cut)
    text_only = custom.get(fields.AUDIO_SOURCE) == MISSING_AUDIO if turn_cut else not exported
    if turn_cut:
        required = (fields.CONVERSATION_ID, fields.TURN, fields.ROLE)
        texts: tuple = (cut_text(cut),)
    else:
        required = (fields.ANSWER,)
        texts = (cut_text(cut), custom.get(fields.ANSWER))
    missing = tuple(k for k in required if custom.get(k) is None)
    if not cut.supervisions:
        missing += ("supervision",)
    if not cut.has_recording and not text_only:
        missing += ("recording",)
    item = Item(
        id=cut.id,
        namespace="cut",
        missing=missing,
        texts=texts,
        duration=cut.duration,
        declared_rate=cut.sampling_rate if cut.has_recording else None,
        dialogue=turn_cut,
        conversation=conversation_key(cut).name,
        turn=int(custom[fields.TURN]) if custom.get(fields.TURN) is not None else None,
        strict_turns=turn_cut,
    )
    if cut.has_recording:
        item.audio = lambda: cut_audio(cut)
        item.stored_rate = lambda: stored_rate(cut.recording)
    if has_image(cut):
        item.image = lambda: load_image(cut)
    return item


def duplex_item(cut: Cut) -> Item:
    """A DuplexS2S dialogue: user channel + ``target_audio`` on the same timeline."""
    target = (cut.custom or {}).get(fields.TARGET_AUDIO)
    missing = () if cut.has_recording else ("recording",)
    missing += () if isinstance(target, Recording) else (fields.TARGET_AUDIO,)
    missing += () if cut.supervisions else ("supervisions",)
    item = Item(
        id=cut.id,
        namespace="dialogue",
        missing=missing,
        texts=tuple(s.text for s in cut.supervisions),
        duration=cut.duration,
        declared_rate=cut.sampling_rate if cut.has_recording else None,
        dialogue=True,
    )
    if cut.has_recording:
        item.audio = lambda: cut_audio(cut)
        item.stored_rate = lambda: stored_rate(cut.recording)
    if isinstance(target, Recording):
        item.target = lambda: recording_audio(target)
    return item


# --- NeMo conversation shards ------------------------------------------------------------------


def nemo_items(root: Path) -> Iterator[Item]:
    """Per conversation (fields, texts, image) then per audio turn (audio, duration)."""
    manifests = sorted(root.glob("*/manifest_*.jsonl")) + sorted(root.glob("manifest_*.jsonl"))
    for manifest in manifests:
        index = manifest.stem.rsplit("_", 1)[1]
        with tarfile.open(manifest.parent / f"audio_{index}.tar") as tar:
            with open(manifest, encoding="utf-8") as f:
                for line in f:
                    yield from _conversation_items(json.loads(line), tar, root)


def _conversation_items(conv: dict, tar: tarfile.TarFile, root: Path) -> Iterator[Item]:
    custom = conv.get("custom") or {}
    turns = conv.get("conversations") or []
    conv_id = str(conv.get("id"))
    item = Item(
        id=conv_id,
        namespace="conversation",
        missing=tuple(k for k in ("id", "conversations") if not conv.get(k)),
        texts=tuple(t.get("value") for t in turns if t.get("type") == "text"),
    )
    if custom.get(fields.IMAGE) or custom.get(fields.IMAGE_PATH):
        item.image = lambda: conversation_image(custom, root)
    yield item
    attributes = audio_turn_attributes(custom)
    for turn in turns:
        if turn.get("type") == "audio":
            attrs = next(attributes, {})
            yield Item(
                id=str(attrs.get("cut_id", turn.get("value"))),
                namespace="audio turn",
                missing=tuple(k for k in ("value", "duration") if turn.get(k) is None),
                audio=functools.partial(_tar_audio, tar, turn.get("value")),
                duration=turn.get("duration"),
                conversation=conv_id,
                turn=attrs.get(fields.TURN),
                strict_turns=False,
            )


def _tar_audio(tar: tarfile.TarFile, name: str) -> Audio:
    member = tar.extractfile(name)
    if member is None:
        raise ValueError(f"{name} is not a file in {tar.name}")
    return _decoded(io.BytesIO(member.read()))


def _decoded(source: Any, start: int = 0, frames: int = -1) -> Audio:
    samples, sr = sf.read(source, dtype="float32", always_2d=True, start=start, frames=frames)
    return Audio(samples.T, sr)


# --- Hugging Face dataset -----------------------------------------------------------------------


def _dataset(path: Path) -> Any:
    from datasets import load_from_disk

    return load_from_disk(str(path / "arrow" if (path / "arrow").is_dir() else path))


def hf_items(path: Path) -> Iterator[Item]:
    """Rows of the ``hf`` export (audio and image read from their bytes)."""
    from datasets import Audio as AudioFeature
    from datasets import Image as ImageFeature

    ds = _dataset(path)
    if "audio" in ds.column_names:
        ds = ds.cast_column("audio", AudioFeature(decode=False))
    if "image" in ds.column_names:
        ds = ds.cast_column("image", ImageFeature(decode=False))
    for row in ds:
        audio = row.get("audio") or {}
        item = Item(
            id=str(row.get(ID)),
            namespace="row",
            missing=tuple(k for k in HF_COLUMNS if row.get(k) is None),
            texts=(row.get("target_text"), row.get(PROMPT_TEXT)),
            duration=row.get(DURATION),
            conversation=_key(row, fields.CONVERSATION_ID, fields.LANGUAGE, fields.VOICE),
            turn=row.get(fields.TURN),
            strict_turns=False,
        )
        if audio.get("bytes"):
            item.audio = lambda data=audio["bytes"]: _decoded(io.BytesIO(data))
        image = row.get("image") or {}
        if image.get("bytes") or image.get("path"):
            item.image = lambda image=image: _open_image(image.get("bytes"), image.get("path"))
        yield item


def _open_image(data: bytes | None, path: str | None) -> Any:
    import PIL.Image

    image = PIL.Image.open(io.BytesIO(data) if data else path)
    image.load()
    return image


def _key(row: dict, *names: str) -> str | None:
    if row.get(names[0]) is None:
        return None
    return "-".join(str(row.get(n) or "") for n in names)


# --- TTT rows ------------------------------------------------------------------------------------


def ttt_items(path: Path) -> Iterator[Item]:
    """Rows of the ``ttt`` export, checked against what ``ttt.json`` declares."""
    declared = json.loads((path / TTT_FILE).read_text(encoding="utf-8"))
    ds = _dataset(path).with_format("numpy")
    rate = declared.get("sampling_rate") or DIALOGUE_RATE
    for row in ds:
        conv, turn = row.get("conversation_id"), row.get("turn_number")
        length = row.get("speech_lengths")
        speech = row.get("speech")
        item = Item(
            id=f"{conv}-t{turn}",
            namespace="row",
            missing=tuple(k for k in TTT_COLUMNS if row.get(k) is None),
            texts=(row.get("transcript"),),
            expected_rate=rate,
            dialogue=True,
            conversation=None if conv is None else str(conv),
            turn=None if turn is None else int(turn),
            tokens=lambda row=row: token_problem(row, declared),
        )
        if speech is not None and length:
            item.audio = lambda speech=speech: Audio(np.asarray(speech)[None, :], rate)
            item.duration = int(length) / rate
        yield item


def token_problem(row: dict[str, Any], declared: dict[str, Any]) -> str | None:
    """Why ``input_ids``/``labels``/``attention_mask`` of a TTT row are not aligned and padded
    as ``ttt.json`` declares (``None`` when they are, or when the row has no tokens).

    Example::

        >>> token_problem({"input_ids": [5, 3], "labels": [-100, 4]}, {"pad_multiple": 2})
        'labels[1] = 4: neither -100 nor input_ids[1] = 3'
    """
    ids, labels, mask = (row.get(k) for k in TTT_TOKENS)
    if ids is None and labels is None:
        return None
    if ids is None or labels is None:
        return "input_ids and labels come together (one is missing)"
    ids, labels = np.asarray(ids), np.asarray(labels)
    if len(ids) != len(labels):
        return f"input_ids has {len(ids)} tokens, labels {len(labels)}"
    multiple = int(declared.get("pad_multiple") or 1)
    if len(ids) % multiple:
        return f"{len(ids)} tokens: not a multiple of pad_multiple {multiple}"
    ignore = int(declared.get("label_ignore", -100))
    bad = np.flatnonzero((labels != ignore) & (labels != ids))
    if bad.size:
        i = int(bad[0])
        return f"labels[{i}] = {labels[i]}: neither {ignore} nor input_ids[{i}] = {ids[i]}"
    return _padding_problem(ids, mask, declared)


def _padding_problem(ids: np.ndarray, mask: Any, declared: dict[str, Any]) -> str | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if len(mask) != len(ids):
        return f"attention_mask has {len(mask)} entries, input_ids {len(ids)}"
    pad_id = declared.get("pad_id")
    bad = np.flatnonzero((mask == 0) & (ids != pad_id)) if pad_id is not None else []
    if len(bad):
        i = int(bad[0])
        return f"pad position {i} holds {ids[i]}, not pad_id {pad_id}"
    return None


# --- the WAV tree and the triplets index -------------------------------------------------------


def triplet_files_items(root: Path) -> Iterator[Item]:
    """Rows of ``metadata_<lang>.jsonl``; audio and image confined to the tree."""
    for metadata in sorted(root.glob("metadata_*.jsonl")):
        with open(metadata, encoding="utf-8") as f:
            for line in f:
                yield _row_item(json.loads(line), root)


def index_items(path: Path) -> Iterator[Item]:
    """Rows of the triplets index (``.jsonl``, ``.jsonl.gz`` or ``.csv``); paths as written."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f) if path.suffix == ".csv" else map(json.loads, f)
        for row in rows:
            yield _row_item({k: (None if v == "" else v) for k, v in row.items()}, None)


def _row_item(row: dict[str, Any], root: Path | None) -> Item:
    item = Item(
        id=str(row.get(ID)),
        namespace="row",
        missing=tuple(k for k in INDEX_COLUMNS if row.get(k) is None),
        texts=(row.get(fields.ANSWER), row.get(PROMPT_TEXT)),
        duration=_number(row.get(DURATION), float),
        declared_rate=_number(row.get("sampling_rate"), int),
        conversation=_key(row, fields.CONVERSATION_ID, fields.LANGUAGE, fields.VOICE),
        turn=_number(row.get(fields.TURN), int),
        strict_turns=False,
    )
    audio, image = row.get("audio"), row.get(fields.IMAGE)
    if audio and "#" not in audio:
        offset = _number(row.get("offset"), float) or 0.0
        item.audio = lambda: _file_audio(_resolve(audio, root, "audio"), offset, item)
    if image:
        item.image = lambda: _open_image(None, _resolve(image.split("#")[0], root, "image"))
    return item


def _resolve(path: str, root: Path | None, what: str) -> Path:
    resolved = inside(path, root, what=what) if root is not None else Path(path)
    if not resolved.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return resolved


def _file_audio(path: Path, offset: float, item: Item) -> Audio:
    rate = sf.info(path).samplerate
    if not offset:
        return _decoded(path)
    frames = int(round((item.duration or 0) * rate)) or -1
    return _decoded(path, start=int(round(offset * rate)), frames=frames)


def _number(value: Any, kind: type) -> Any:
    if value is None:
        return None
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        return None


_READERS: dict[str, Callable[[Path], Iterator[Item]]] = {
    "nemo": nemo_items,
    "hf": hf_items,
    "ttt": ttt_items,
    "triplet_files": triplet_files_items,
    "triplets": index_items,
}
