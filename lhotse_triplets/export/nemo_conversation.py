"""Export to NeMo's tarred ``multimodal_conversation`` format: multi-turn, one conversation per
(source conversation, language, voice).

Layout (one folder per language, so the data config can blend languages)::

    OUT/en/manifest_0.jsonl  OUT/en/audio_0.tar  OUT/en/manifest_1.jsonl ...
    OUT/fr/...
    OUT/images/...           (only with image_mode="path")
    OUT/nemo_data.yaml       (written by write_conversation_config / export_formats)

A JSONL line is one conversation; the tar holds its audio turns, in the JSONL's order, each
member named like the turn's ``value``::

    {"id": "clevr_1-en-v0",
     "conversations": [
       {"type": "text",  "from": "System",    "value": "You are ..."},          # if any
       {"type": "text",  "from": "User",      "value": "Answer the spoken ..."},  # question
       {"type": "audio", "from": "User",      "value": "clevr_1-t0-en-v0.flac", "duration": 1.9},
       {"type": "text",  "from": "Assistant", "value": "<answer, verbatim>"},
       ...],
     "custom": {"conversation_id", "language", "voice", "data_source", "tts_model",
                "image" (base64 of the encoded image) + "image_format" | "image_path",
                "turn_attributes": [{"cut_id", "turn", "text", scores...}, ...]}}

User turns the gate rejected (or whose audio failed) stay in the conversation as *text* turns
(their text and answer), so later turns keep their context; a conversation with no audio turn
left is not written. Earlier turns missing from the cuts come from the ``history`` field.

The image: ``image_mode="embed"`` (default) puts the encoded bytes, base64, in ``custom["image"]``
so a conversation is self-contained like a Shar cut (costs ~1.33x the image size per language and
voice); ``image_mode="path"`` copies each image once into ``OUT/images/`` and stores the path
relative to ``OUT`` in ``custom["image_path"]``.
:func:`~lhotse_triplets.export.reading.conversation_image`
reads either.

Example::

    >>> result = export_nemo_conversations(cuts, "data/nemo", shard_size=500)
    >>> result.shards["en"][0]
    ('data/nemo/en/manifest_0.jsonl', 'data/nemo/en/audio_0.tar')
"""

import base64
import hashlib
import io
import json
import logging
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lhotse.cut import Cut
from lhotse.utils import Pathlike
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.export.common import (
    AtomicDir,
    ConversationKey,
    ExportCounts,
    OnFailure,
    ShardRoller,
    audio_samples,
    cut_text,
    encode_audio,
    failure_reason,
    group_conversations,
    log_failure,
    safe_name,
)
from lhotse_triplets.export.shar import DEFAULT_QUESTION, is_rejected, to_json_value
from lhotse_triplets.images import has_image, image_extension, load_image_bytes

logger = logging.getLogger(__name__)

STAGE = "export_nemo_conversation"
IMAGE_MODES = ("embed", "path")
IMAGES_DIR = "images"

#: Roles as NeMo's JSONL spells them (``from``); NeMo lower-cases them into turn roles.
SYSTEM, USER, ASSISTANT = "System", "User", "Assistant"

#: Per-turn attributes copied into ``custom["turn_attributes"]``.
_TURN_ATTRIBUTES = (
    fields.TURN,
    fields.TTS_MODEL,
    fields.ASR_TEXT,
    fields.SIMILARITY,
    fields.WER,
    fields.CER,
    fields.ERROR_RATE,
    fields.MOS,
    fields.GATE_SCORE,
)


@dataclass
class ConversationExport:
    """What :func:`export_nemo_conversations` wrote."""

    output_dir: Path
    #: language -> [(manifest path, tar path)] in shard order.
    shards: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: Conversations written (``written``), cuts skipped, audio hours per language.
    counts: ExportCounts = field(default_factory=ExportCounts)
    #: audio turns written.
    audio_turns: int = 0
    #: per language, one entry per conversation: (audio turn durations, text turn values).
    lengths: dict[str, list[tuple[list[float], list[str]]]] = field(default_factory=dict)


def build_conversation(
    group: list[Cut],
    audio_names: dict[str, tuple[str, float]],
    *,
    question: str | None = None,
    system_prompt: str | None = None,
    include_rejected: bool = False,
) -> list[dict[str, Any]]:
    """The ``conversations`` list of one conversation (see the module docstring).

    :param group: the conversation's cuts ordered by turn (rejected ones included).
    :param audio_names: cut id -> (tar member name, duration) of the cuts whose audio was
        written; other cuts become text turns.
    :param question: text turn before every audio turn; ``None`` uses the cut's ``question`` or
        :data:`~lhotse_triplets.export.shar.DEFAULT_QUESTION`; ``""`` none.
    """
    first = group[0].custom or {}
    turns: list[dict[str, Any]] = []
    system = system_prompt if system_prompt is not None else first.get(fields.SYSTEM_PROMPT)
    if system:
        turns.append(_text(SYSTEM, system))
    context = first.get(fields.CONTEXT)
    if isinstance(context, str) and context.strip():
        turns.append(_text(USER, context))
    done = 0  # source user turns covered so far
    for cut in group:
        custom = cut.custom or {}
        k = int(custom.get(fields.TURN) or 0)
        history = custom.get(fields.HISTORY) or []
        for j in range(done, k):  # earlier turns absent from the cuts: text from the history
            if 2 * j + 1 < len(history):
                turns += [
                    _text(USER, history[2 * j]["text"]),
                    _text(ASSISTANT, history[2 * j + 1]["text"]),
                ]
        done = max(done, k)
        if k < done:
            continue  # a second cut of the same turn
        named = audio_names.get(cut.id)
        if named is None or (is_rejected(cut) and not include_rejected):
            turns += [_text(USER, cut_text(cut) or custom.get(fields.USER_TEXT) or "")]
        else:
            q = question if question is not None else custom.get(fields.QUESTION)
            q = DEFAULT_QUESTION if q is None else q
            if q:
                turns.append(_text(USER, q))
            name, duration = named
            turns.append({"type": "audio", "from": USER, "value": name, "duration": duration})
        turns.append(_text(ASSISTANT, custom[fields.ANSWER]))
        done = k + 1
    return turns


def export_nemo_conversations(
    cuts: Iterable[Cut],
    output_dir: Pathlike,
    *,
    shard_size: int | None = 1000,
    shard_hours: float | None = None,
    question: str | None = None,
    system_prompt: str | None = None,
    image_mode: str = "embed",
    sampling_rate: int | None = 16000,
    audio_format: str = "flac",
    include_rejected: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_failure: OnFailure | None = None,
) -> ConversationExport:
    """Write ``cuts`` as tarred NeMo ``multimodal_conversation`` shards, one folder per language.

    Cuts are grouped by (conversation id, language, voice) and ordered by turn (the cut
    manifests are held in memory, the audio is read one conversation at a time).

    :param shard_size: conversations per shard (``None``: no count limit).
    :param shard_hours: audio hours per shard (``None``: no duration limit).
    :param question: text turn before each audio turn (see :func:`build_conversation`).
    :param system_prompt: a system turn opening every conversation (default: the cuts' own).
    :param image_mode: ``embed`` (base64 bytes in ``custom``) or ``path`` (``images/`` folder).
    :param sampling_rate: resample audio to this rate (``None``: keep it).
    :param audio_format: ``flac`` (16-bit, lossless) or ``wav``.
    :param on_failure: called with a :class:`~lhotse_triplets.errors.Failure` per cut whose
        audio or image cannot be written (default: log a warning); the export goes on.
    :raises ValueError: for an unsafe path, an unknown image mode or audio format.
    :raises FileExistsError: when ``output_dir`` is not empty and ``overwrite`` is false.

    Example::

        >>> res = export_nemo_conversations(cuts, "data/nemo", shard_hours=1.0)
        >>> print(res.counts)
    """
    if image_mode not in IMAGE_MODES:
        raise ValueError(f"Unknown image_mode {image_mode!r}; use one of {IMAGE_MODES}")
    if audio_format not in ("flac", "wav"):
        raise ValueError(f"Unknown audio_format {audio_format!r}; use 'flac' or 'wav'")
    on_failure = on_failure or log_failure
    atomic = AtomicDir(output_dir, overwrite=overwrite)
    result = ConversationExport(output_dir=atomic.output_dir)
    groups = group_conversations(cuts)
    writers: dict[str, _ShardWriter] = {}
    with atomic as tmp:
        for key, group in tqdm(
            groups.items(), desc="nemo conversations", unit="conv", disable=not progress
        ):
            writer = writers.get(key.language)
            if writer is None:
                writer = writers[key.language] = _ShardWriter(
                    tmp / safe_name(key.language), ShardRoller(shard_size, shard_hours)
                )
            _write_conversation(
                key,
                group,
                writer,
                tmp,
                result,
                question=question,
                system_prompt=system_prompt,
                image_mode=image_mode,
                sampling_rate=sampling_rate,
                audio_format=audio_format,
                include_rejected=include_rejected,
                on_failure=on_failure,
            )
        for writer in writers.values():
            writer.close()
    for language, writer in writers.items():
        final = atomic.output_dir / safe_name(language)
        result.shards[language] = [
            (str(final / Path(m).name), str(final / Path(t).name)) for m, t in writer.paths
        ]
    result.counts.extra["audio_turns"] = result.audio_turns
    logger.info("NeMo conversation export to %s: %s", atomic.output_dir, result.counts)
    return result


def _write_conversation(
    key: ConversationKey,
    group: list[Cut],
    writer: "_ShardWriter",
    root: Path,
    result: ConversationExport,
    *,
    question: str | None,
    system_prompt: str | None,
    image_mode: str,
    sampling_rate: int | None,
    audio_format: str,
    include_rejected: bool,
    on_failure: OnFailure,
) -> None:
    counts = result.counts
    audio: dict[str, bytes] = {}
    names: dict[str, tuple[str, float]] = {}
    for cut in group:
        if is_rejected(cut) and not include_rejected:
            counts.rejected += 1
            continue
        try:
            samples, sr = audio_samples(cut, sampling_rate)
            audio[cut.id] = encode_audio(samples, sr, audio_format)
            names[cut.id] = (f"{safe_name(cut.id)}.{audio_format}", len(samples) / sr)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:
            counts.failed += 1
            on_failure(Failure(cut.id, STAGE, failure_reason(e)))
    if not names:
        return
    custom: dict[str, Any] = {
        fields.CONVERSATION_ID: key.conversation_id,
        fields.LANGUAGE: key.language,
        fields.VOICE: key.voice,
    }
    first = group[0].custom or {}
    for name in (fields.DATA_SOURCE, fields.TTS_MODEL):
        if first.get(name) is not None:
            custom[name] = first[name]
    try:
        custom.update(_image_fields(group, root, image_mode))
    except ItemError as e:
        counts.failed += len(names)
        for cut_id in names:
            on_failure(Failure(cut_id, STAGE, e.reason))
        return
    turns = build_conversation(
        group,
        names,
        question=question,
        system_prompt=system_prompt,
        include_rejected=include_rejected,
    )
    audio_order = [t["value"] for t in turns if t["type"] == "audio"]
    by_name = {name: cut_id for cut_id, (name, _) in names.items()}
    custom[fields.TURN_ATTRIBUTES] = [
        _turn_attributes(_find(group, by_name[n])) for n in audio_order
    ]
    durations = [t["duration"] for t in turns if t["type"] == "audio"]
    seconds = sum(durations)
    conversation = {
        "id": f"{key.conversation_id}-{key.language}-{key.voice}",
        "conversations": turns,
        "custom": custom,
    }
    writer.write(conversation, [(n, audio[by_name[n]]) for n in audio_order], seconds)
    counts.count(key.language, seconds)
    result.audio_turns += len(audio_order)
    result.lengths.setdefault(key.language, []).append(
        (durations, [t["value"] for t in turns if t["type"] == "text"])
    )


def _find(group: list[Cut], cut_id: str) -> Cut:
    return next(c for c in group if c.id == cut_id)


def _text(role: str, value: str) -> dict[str, Any]:
    return {"type": "text", "from": role, "value": value}


def _turn_attributes(cut: Cut) -> dict[str, Any]:
    custom = cut.custom or {}
    out: dict[str, Any] = {"cut_id": cut.id, "text": cut_text(cut)}
    for name in _TURN_ATTRIBUTES:
        if custom.get(name) is not None:
            try:
                out[name] = to_json_value(custom[name])
            except TypeError:
                pass
    return out


def _image_fields(group: list[Cut], root: Path, image_mode: str) -> dict[str, Any]:
    cut = next((c for c in group if has_image(c)), None)
    if cut is None:
        return {}
    data = load_image_bytes(cut)
    ext = image_extension(data)
    if image_mode == "embed":
        return {fields.IMAGE: base64.b64encode(data).decode("ascii"), fields.IMAGE_FORMAT: ext}
    conversation_id = (cut.custom or {}).get(fields.CONVERSATION_ID) or cut.id
    digest = hashlib.sha1(data).hexdigest()[:10]
    rel = Path(IMAGES_DIR) / f"{safe_name(str(conversation_id))}_{digest}.{ext}"
    if not (root / rel).exists():
        (root / IMAGES_DIR).mkdir(exist_ok=True)
        (root / rel).write_bytes(data)
    return {fields.IMAGE_PATH: rel.as_posix(), fields.IMAGE_FORMAT: ext}


class _ShardWriter:
    """``manifest_N.jsonl`` + ``audio_N.tar`` pairs in one folder, rolled by a ShardRoller."""

    def __init__(self, directory: Path, roller: ShardRoller) -> None:
        self.directory = directory
        self.roller = roller
        self.index = -1
        self.jsonl: io.TextIOWrapper | None = None
        self.tar: tarfile.TarFile | None = None
        self.paths: list[tuple[str, str]] = []

    def write(self, conversation: dict, members: list[tuple[str, bytes]], seconds: float) -> None:
        index = self.roller.next_index(seconds)
        if index != self.index:
            self.close()
            self.directory.mkdir(parents=True, exist_ok=True)
            manifest = self.directory / f"manifest_{index}.jsonl"
            tar = self.directory / f"audio_{index}.tar"
            self.jsonl = open(manifest, "w", encoding="utf-8")
            self.tar = tarfile.open(tar, "w", format=tarfile.PAX_FORMAT)
            self.paths.append((str(manifest), str(tar)))
            self.index = index
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            self.tar.addfile(info, io.BytesIO(data))
        self.jsonl.write(json.dumps(conversation, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()
            self.tar.close()
            self.jsonl = self.tar = None


#: The data config written inside the conversation export directory.
CONFIG_FILE = "nemo_data.yaml"


def write_conversation_config(
    export: ConversationExport,
    path: Pathlike | None = None,
    *,
    weights: dict[str, float] | None = None,
    num_buckets: int = 30,
    count_tokens: Any = None,
    **kwargs: Any,
) -> Path:
    """Write the NeMo data config for a conversation export (one ``input_cfg`` per language,
    bucket bins estimated from the exported conversations).

    :param path: default ``<export dir>/nemo_data.yaml``.
    :param weights: language -> blend weight (others 1.0).
    :param count_tokens: your tokenizer's token count of a text, for exact bins
        (default: an estimate, see :func:`~lhotse_triplets.export.nemo_config.approx_token_count`).
    :param kwargs: ``audio_locator_tag``, ``prompt_format``, ``token_equivalent_duration``,
        ``sample_rate`` (see :func:`~lhotse_triplets.export.nemo_config.conversation_data_config`).

    Example::

        >>> write_conversation_config(result, weights={"en": 2.0, "fr": 1.0})
        PosixPath('data/nemo/nemo_data.yaml')
    """
    from omegaconf import OmegaConf

    from lhotse_triplets.export.nemo_config import conversation_data_config

    cfg = conversation_data_config(
        export.shards,
        weights=weights,
        lengths=export.lengths,
        num_buckets=num_buckets,
        count_tokens=count_tokens,
        **kwargs,
    )
    path = Path(path) if path is not None else Path(export.output_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, path)
    return path
