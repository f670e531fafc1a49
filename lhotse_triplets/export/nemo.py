"""Export to NeMo's tarred ``multimodal_conversation`` format: multi-turn, one conversation per
(source conversation, language, voice).

Layout inside the export directory (one folder per language, so the data config can blend
languages)::

    OUT/nemo/en/manifest_0.jsonl  OUT/nemo/en/audio_0.tar  OUT/nemo/en/manifest_1.jsonl ...
    OUT/nemo/fr/...
    OUT/nemo/images/...           (only with image_mode="path")
    OUT/nemo/nemo_data.yaml       (the data config: one input_cfg entry per language)

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

**Dialogue turn cuts** (:func:`~lhotse_triplets.dialogues.is_turn_cut`: one cut per turn, from
the ``deepdialogue``/``multidialog``/``instructs2s`` recipes) make one multi-turn conversation per
(conversation id, language), id ``<conversation id>-<language>``, built by
:func:`build_dialogue`: user turns with audio are audio turns, assistant turns are text turns
(their text verbatim), a user turn without audio (a text-only cut, or audio that failed to load,
recorded as a failure) is a text turn. No question turn unless ``question`` is given; ``from`` is
``User``/``Assistant`` unless ``role_names`` says otherwise. ``custom`` holds
``conversation_id``, ``language``, ``data_source``/``domain``/``generated_by``/``split`` where
set, and ``turn_attributes`` for *every* turn in order (``cut_id``, ``type`` ``audio``|``text``,
``text``, ``turn``, ``role``, ``speaker_id``, emotions, ``audio_source``); no image. A
conversation whose turns are not ``0..n-1`` is recorded as one failure (its id, the reason) and
not written. User turns after the last assistant turn are dropped (counted in
``details["trailing_user_turns"]``): NeMo's prompt formatter reads a conversation that ends on a
user turn as an inference prompt and would train on none of it::

    {"id": "dialogues_llama3-70B/music_78_8-en",
     "conversations": [
       {"type": "audio", "from": "User",      "value": "dialogues_llama3-70B_music_78_8-t0~1c2d..",
        "duration": 2.1},
       {"type": "text",  "from": "Assistant", "value": "<turn 1 text>"}, ...],
     "custom": {"conversation_id": "dialogues_llama3-70B/music_78_8", "language": "en",
                "turn_attributes": [{"cut_id": "...-t0", "type": "audio", "turn": 0, ...}, ...]}}

The image: ``image_mode="embed"`` (default) puts the encoded bytes, base64, in ``custom["image"]``
so a conversation is self-contained like a Shar cut (costs ~1.33x the image size per language and
voice); ``image_mode="path"`` copies each image once into ``OUT/nemo/images/`` and stores the
path relative to ``OUT/nemo`` in ``custom["image_path"]``.
:func:`~lhotse_triplets.export.reading.conversation_image` reads either (confined to the export
folder).

Names: language folders and tar members are :func:`~lhotse_triplets.paths.safe_name` of the
language and cut id (``<safe id>.<ext>``); ids inside the JSONL (``id``, ``cut_id``) stay as
they are.

**Zero conversations** (every clip rejected or failed): ``OUT/nemo`` is an empty folder, no
``nemo_data.yaml`` is written (an input list with no entry is no data config), and the result
says so (``details["empty"]``, ``details["note"]``, a warning). A language with no kept clip has
no folder and no ``input_cfg`` entry; a blend weight given for it is dropped with a warning
(``details["unused_weights"]``).

Example::

    >>> result = export_nemo(cuts, "data", shard_size=500, weights={"en": 2.0})
    >>> result.details["shards"]["en"][0]
    ('data/nemo/en/manifest_0.jsonl', 'data/nemo/en/audio_0.tar')
"""

import base64
import io
import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from lhotse.cut import Cut
from lhotse.shar.writers import TarWriter
from tqdm.auto import tqdm

from lhotse_triplets import dialogues, fields
from lhotse_triplets.cuts import cut_text, is_rejected
from lhotse_triplets.errors import ItemError
from lhotse_triplets.export import common
from lhotse_triplets.export.base import ExportOptions, ExportResult, exporter
from lhotse_triplets.export.common import (
    IMAGES_DIR,
    AtomicOutput,
    ConversationKey,
    ImageFiles,
    ItemGuard,
    ShardRoller,
    audio_samples,
    check_choice,
    encode_audio,
    export_file,
    group_conversations,
    json_fields,
    layout,
    question_for,
)
from lhotse_triplets.export.nemo_config import NEMO_CONFIG_FILE, write_conversation_config
from lhotse_triplets.images import has_image, image_extension, load_image_bytes
from lhotse_triplets.paths import safe_name

logger = logging.getLogger(__name__)

FORMAT = "nemo"
STAGE = f"export_{FORMAT}"
#: The conversation shards' directory inside the export directory.
NEMO_DIR = "nemo"
IMAGE_MODES = common.IMAGE_MODES
AUDIO_FORMATS = common.NEMO_AUDIO_FORMATS

#: Roles as NeMo's JSONL spells them (``from``); NeMo lower-cases them into turn roles.
SYSTEM, USER, ASSISTANT = "System", "User", "Assistant"

#: A TarWriter shard size never reached (each tar is one roller shard).
_NEVER = sys.maxsize

#: How a ``nemo`` folder written before export records existed is recognised (``--overwrite``).
LAYOUT = layout(NEMO_CONFIG_FILE, IMAGES_DIR, folders=(r"manifest_\d+\.jsonl", r"audio_\d+\.tar"))

#: Per-turn attributes copied into ``custom["turn_attributes"]``.
_TURN_ATTRIBUTES = (fields.TURN, fields.TTS_MODEL, fields.ASR_TEXT, *fields.SCORES)

#: Our dialogue role -> ``from`` of its turns by default (``role_names`` overrides).
DIALOGUE_ROLE_NAMES = {dialogues.USER: USER, dialogues.ASSISTANT: ASSISTANT}
#: Conversation-level fields of dialogue turn cuts copied into ``custom`` (from turn 0).
_DIALOGUE_FIELDS = (fields.DATA_SOURCE, fields.DOMAIN, fields.GENERATED_BY, fields.SPLIT)
#: Per-turn attributes of dialogue turn cuts copied into ``custom["turn_attributes"]``.
_DIALOGUE_TURN_ATTRIBUTES = (
    fields.TURN,
    fields.ROLE,
    fields.SPEAKER_ID,
    fields.EMOTION,
    fields.AUDIO_EMOTION,
    fields.AUDIO_SOURCE,
    fields.TTS_MODEL,
)
#: ``turn_attributes`` key of a dialogue turn: ``audio`` or ``text``, the type of its turn in
#: ``conversations`` (a dialogue lists every turn; a triplet conversation its audio turns only).
TURN_TYPE = fields.TURN_TYPE


def build_conversation(
    group: list[Cut],
    audio_names: dict[str, tuple[str, float]],
    *,
    question: str | None = None,
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """The ``conversations`` list of one conversation (see the module docstring).

    :param group: the conversation's cuts ordered by turn (rejected ones included).
    :param audio_names: cut id -> (tar member name, duration) of the cuts whose audio was
        written; other cuts become text turns.
    :param question: text turn before every audio turn
        (:func:`~lhotse_triplets.export.common.question_for`; ``""``: none).
    :param system_prompt: a system turn opening the conversation (default: the cuts' own).

    Example::

        >>> build_conversation(group, {group[0].id: ("clevr_1-t0-en-v0.flac", 1.9)})[0]
        {'type': 'text', 'from': 'User', 'value': 'Answer the spoken request about the image.'}
    """
    first = group[0].custom or {}
    turns = _system_turns(first, system_prompt)
    context = first.get(fields.CONTEXT)
    if isinstance(context, str) and context.strip():
        turns.append(_text(USER, context))
    done = 0  # source user turns covered so far
    for cut in group:
        custom = cut.custom or {}
        k = int(custom.get(fields.TURN) or 0)
        turns += _history_turns(custom.get(fields.HISTORY) or [], done, k)
        done = max(done, k)
        if k < done:
            continue  # a second cut of the same turn
        turns += _user_turns(cut, audio_names.get(cut.id), question)
        turns.append(_text(ASSISTANT, custom[fields.ANSWER]))
        done = k + 1
    return turns


def build_dialogue(
    group: list[Cut],
    audio_names: dict[str, tuple[str, float]],
    *,
    role_names: dict[str, str] | None = None,
    question: str | None = None,
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """The ``conversations`` list of one dialogue from its turn cuts (see the module docstring).

    :param group: the conversation's turn cuts ordered by turn.
    :param audio_names: cut id -> (tar member name, duration) of the turns written as audio;
        every other turn is a text turn with its text.
    :param role_names: our role -> ``from`` (default :data:`DIALOGUE_ROLE_NAMES`).
    :param question: text turn before every audio turn (``None`` or ``""``: none).
    :param system_prompt: a system turn opening the conversation (default: the cuts' own).
    :raises ItemError: for a turn whose role has no name.

    Example::

        >>> build_dialogue(group, {group[0].id: ("c1-t0.flac", 0.4)})[:2]
        [{'type': 'audio', 'from': 'User', 'value': 'c1-t0.flac', 'duration': 0.4},
         {'type': 'text', 'from': 'Assistant', 'value': 'the assistant says turn 1 of c1'}]
    """
    names = role_names or DIALOGUE_ROLE_NAMES
    turns = _system_turns(group[0].custom or {}, system_prompt)
    for cut in group:
        speaker = names.get(dialogues.turn_role(cut) or "")
        if speaker is None:
            raise ItemError(
                f"unknown_role: turn {cut.id} has role {dialogues.turn_role(cut)!r} "
                f"(known: {', '.join(names)})",
                cut.id,
            )
        named = audio_names.get(cut.id)
        if named is None:
            turns.append(_text(speaker, cut_text(cut) or ""))
            continue
        if question:
            turns.append(_text(speaker, question))
        turns.append(_audio(speaker, *named))
    return turns


def _system_turns(first: dict[str, Any], system_prompt: str | None) -> list[dict[str, Any]]:
    """The system turn (``system_prompt``, else the first cut's own), if any."""
    system = system_prompt if system_prompt is not None else first.get(fields.SYSTEM_PROMPT)
    return [_text(SYSTEM, system)] if system else []


def _history_turns(history: list[dict], start: int, stop: int) -> list[dict[str, Any]]:
    """Text turns of source turns ``start..stop-1`` absent from the cuts, from the history."""
    turns = []
    for j in range(start, stop):
        if 2 * j + 1 < len(history):
            turns += [
                _text(USER, history[2 * j]["text"]),
                _text(ASSISTANT, history[2 * j + 1]["text"]),
            ]
    return turns


def _user_turns(
    cut: Cut, named: tuple[str, float] | None, question: str | None
) -> list[dict[str, Any]]:
    custom = cut.custom or {}
    if named is None:
        return [_text(USER, cut_text(cut) or custom.get(fields.USER_TEXT) or "")]
    turns = []
    q = question_for(custom, question)
    if q:
        turns.append(_text(USER, q))
    turns.append(_audio(USER, *named))
    return turns


def _text(role: str, value: str) -> dict[str, Any]:
    return {"type": "text", "from": role, "value": value}


def _audio(role: str, name: str, duration: float) -> dict[str, Any]:
    return {"type": "audio", "from": role, "value": name, "duration": duration}


@exporter(FORMAT)
def export_nemo(cuts: Iterable[Cut], output_dir: Path, options: ExportOptions) -> ExportResult:
    """NeMo multimodal_conversation, tarred (multi-turn; one folder per language) + its YAML.

    Cuts are grouped by (conversation id, language, voice) and ordered by turn (the cut
    manifests are held in memory, the audio is read one conversation at a time). Writes
    ``OUT/nemo/`` (see the module docstring), atomically. Dialogue turn cuts make multi-turn
    dialogues (user audio, assistant text; :func:`build_dialogue`).

    Options used: ``shard_size`` (conversations per shard) and ``shard_hours``, ``question``,
    ``system_prompt``, ``role_names`` (dialogues' ``from``, over ``User``/``Assistant``),
    ``image_mode`` (``embed`` or ``path``), ``sampling_rate`` (``None``:
    keep), ``audio_format`` (``flac`` or ``wav``), ``include_rejected``, ``weights`` and
    ``num_buckets`` (the YAML), ``overwrite``, ``progress``, ``on_failure`` (called per cut whose
    audio or image cannot be written; its turn becomes a text turn).

    :return: paths ``nemo`` and ``nemo_conversation_config`` (when shards were written);
        details ``shards`` (language -> [(manifest, tar)]), ``lengths`` (language -> per
        conversation: audio durations, text turns), ``audio_turns`` and
        ``trailing_user_turns`` (dialogue turns after the last assistant turn, not written).
    :raises ValueError: for an unsafe path, an unknown image mode or audio format, malformed
        ``role_names``, or a weight for a language no cut has (one whose clips were all
        rejected is dropped, warned).
    :raises FileExistsError: when ``OUT/nemo`` is not empty and ``overwrite`` is false.

    Example::

        >>> result = export_nemo(cuts, "data", shard_hours=1.0)
        >>> print(result.counts)
    """
    check_choice("image_mode", options.image_mode, IMAGE_MODES)
    check_choice("audio_format", options.audio_format, AUDIO_FORMATS)
    speakers = dialogues.role_names(options.role_names or None, default=DIALOGUE_ROLE_NAMES)
    target = AtomicOutput(
        output_dir / NEMO_DIR, overwrite=options.overwrite, replaceable=LAYOUT, format=FORMAT
    )
    result = ExportResult(FORMAT, paths={FORMAT: str(target.path)})
    groups = group_conversations(cuts)
    _check_weights(options.weights, {key.language for key in groups})
    with target as tmp:
        writer = _ConversationWriter(tmp, target.path, options, result, speakers)
        for key, group in tqdm(
            groups.items(), desc="nemo conversations", unit="conv", disable=not options.progress
        ):
            writer.write(key, group)
        writer.close()
        if result.details["shards"]:
            config = write_conversation_config(
                result,
                tmp / NEMO_CONFIG_FILE,
                weights=_used_weights(options.weights, result),
                num_buckets=options.num_buckets,
                sample_rate=options.sampling_rate or max(writer.rates),
            )
            result.paths["nemo_conversation_config"] = str(target.path / config.name)
        else:
            result.say_empty("conversations", "no NeMo config written")
    return result


def _check_weights(weights: dict[str, float], languages: set[str]) -> None:
    """``ValueError`` for a weight given for a language no cut has (a typo, not a language whose
    clips were all rejected), before anything is written."""
    unknown = sorted(set(weights) - languages)
    if unknown:
        raise ValueError(
            f"export.weights: no cut has the language(s) {', '.join(unknown)} "
            f"(the cuts have: {', '.join(sorted(languages)) or 'none'})"
        )


def _used_weights(weights: dict[str, float], result: ExportResult) -> dict[str, float]:
    """The blend weights of the languages that have shards (the others dropped, warned)."""
    unused = sorted(set(weights) - set(result.details["shards"]))
    if unused:
        result.details["unused_weights"] = unused
        logger.warning(
            "nemo export: no conversation kept for %s: weights for them are not used",
            ", ".join(unused),
        )
    return {k: v for k, v in weights.items() if k not in unused}


class _ConversationWriter:
    """Writes conversations into per-language shard folders under ``root`` (named as they will
    be under ``final``) and fills ``result``."""

    def __init__(
        self,
        root: Path,
        final: Path,
        options: ExportOptions,
        result: ExportResult,
        role_names: dict[str, str] | None = None,
    ):
        self.root = root
        self.role_names = role_names or DIALOGUE_ROLE_NAMES
        self.final = final
        self.options = options
        self.result = result
        self.guard = ItemGuard(STAGE, result.counts, options.on_failure)
        self.images = ImageFiles(root)
        self.shards: dict[str, _ShardWriter] = {}
        self.rates: set[int] = set()
        result.details.update(shards={}, lengths={}, audio_turns=0, trailing_user_turns=0)

    def write(self, key: ConversationKey, group: list[Cut]) -> None:
        """Write one conversation (nothing when none of its turns has audio)."""
        if dialogues.is_turn_cut(group[0]):
            built = self._dialogue(key, group)
        else:
            built = self._triplets(key, group)
        if built is not None:
            self._emit(key, *built)

    def _triplets(self, key: ConversationKey, group: list[Cut]) -> "_Built | None":
        """Turns, custom and audio members of a conversation of triplet cuts."""
        audio, names = self._audio_turns(group)
        if not names:
            return None
        with self.guard.item(*names) as outcome:
            custom = self._custom(key, group)
        if not outcome.ok:
            return None
        turns = build_conversation(
            group, names, question=self.options.question, system_prompt=self.options.system_prompt
        )
        by_name = {name: cut_id for cut_id, (name, _) in names.items()}
        by_id = {c.id: c for c in group}
        custom[fields.TURN_ATTRIBUTES] = [
            _turn_attributes(by_id[by_name[t["value"]]]) for t in turns if t["type"] == "audio"
        ]
        return turns, custom, _members(audio, names)

    def _dialogue(self, key: ConversationKey, group: list[Cut]) -> "_Built | None":
        """Turns, custom and audio members of a dialogue (turn cuts); ``None`` when it has a
        turn gap (recorded as one failure) or no user turn with audio."""
        gap = dialogues.turn_gaps(dialogues.turn_number(c) for c in group)
        if gap:
            reason = f"turn_gap: {gap} in conversation {key.conversation_id!r} ({key.language})"
            self.guard.fail([key.name], ItemError(reason, key.name))
            return None
        group = self._through_last_assistant(group)
        spoken = [c for c in group if dialogues.turn_role(c) == dialogues.USER and c.has_recording]
        audio, names = self._audio_turns(spoken)
        if not names:
            return None
        with self.guard.item(*names) as outcome:
            turns = build_dialogue(
                group,
                names,
                role_names=self.role_names,
                question=self.options.question,
                system_prompt=self.options.system_prompt,
            )
        if not outcome.ok:
            return None
        custom = {
            fields.CONVERSATION_ID: key.conversation_id,
            fields.LANGUAGE: key.language,
            **json_fields(group[0].custom or {}, _DIALOGUE_FIELDS),
            fields.TURN_ATTRIBUTES: [_dialogue_turn_attributes(c, c.id in names) for c in group],
        }
        return turns, custom, _members(audio, names)

    def _through_last_assistant(self, group: list[Cut]) -> list[Cut]:
        """The turns up to the last assistant turn: NeMo's prompt formatter reads a conversation
        ending on a user turn as an inference prompt and trains on none of it (no loss mask)."""
        roles = [dialogues.turn_role(c) for c in group]
        last = max((i for i, role in enumerate(roles) if role == dialogues.ASSISTANT), default=-1)
        self.result.details["trailing_user_turns"] += len(group) - last - 1
        return group[: last + 1]

    def _emit(
        self, key: ConversationKey, turns: list[dict], custom: dict, members: dict[str, bytes]
    ) -> None:
        """Write one built conversation into its language's shard and count it."""
        audio_order = [t["value"] for t in turns if t["type"] == "audio"]
        durations = [t["duration"] for t in turns if t["type"] == "audio"]
        conversation = {"id": key.name, "conversations": turns, "custom": custom}
        self._shard(key.language).write(
            conversation, [(n, members[n]) for n in audio_order], sum(durations)
        )
        self.result.counts.count(key.language, sum(durations))
        self.result.details["audio_turns"] += len(audio_order)
        texts = [t["value"] for t in turns if t["type"] == "text"]
        self.result.details["lengths"].setdefault(key.language, []).append((durations, texts))

    def _audio_turns(self, group: list[Cut]) -> tuple[dict[str, bytes], dict[str, tuple]]:
        """Encoded audio and (member name, duration) of the cuts whose audio goes in the tar."""
        audio: dict[str, bytes] = {}
        names: dict[str, tuple[str, float]] = {}
        for cut in group:
            if is_rejected(cut) and not self.options.include_rejected:
                self.result.counts.rejected += 1
                continue
            with self.guard.item(cut.id):
                samples, sr = audio_samples(cut, self.options.sampling_rate)
                audio[cut.id] = encode_audio(samples, sr, self.options.audio_format)
                names[cut.id] = (
                    f"{safe_name(cut.id)}.{self.options.audio_format}",
                    len(samples) / sr,
                )
                self.rates.add(sr)
        return audio, names

    def _custom(self, key: ConversationKey, group: list[Cut]) -> dict[str, Any]:
        custom: dict[str, Any] = {
            fields.CONVERSATION_ID: key.conversation_id,
            fields.LANGUAGE: key.language,
            fields.VOICE: key.voice,
        }
        first = group[0].custom or {}
        custom.update(
            {
                k: first[k]
                for k in (fields.DATA_SOURCE, fields.TTS_MODEL)
                if first.get(k) is not None
            }
        )
        cut = next((c for c in group if has_image(c)), None)
        if cut is None:
            return custom
        if self.options.image_mode == "path":
            path = self.images.add(cut)
            return {**custom, fields.IMAGE_PATH: path, fields.IMAGE_FORMAT: Path(path).suffix[1:]}
        data = load_image_bytes(cut)
        image = base64.b64encode(data).decode("ascii")
        return {**custom, fields.IMAGE: image, fields.IMAGE_FORMAT: image_extension(data)}

    def _shard(self, language: str) -> "_ShardWriter":
        if language not in self.shards:
            roller = ShardRoller(self.options.shard_size, self.options.shard_hours)
            directory = export_file(self.root, safe_name(language))
            self.shards[language] = _ShardWriter(directory, roller)
        return self.shards[language]

    def close(self) -> None:
        """Close the shards; list them (final paths) in ``details["shards"]``."""
        for language, shard in self.shards.items():
            shard.close()
            final = self.final / safe_name(language)
            self.result.details["shards"][language] = [
                (str(final / Path(m).name), str(final / Path(t).name)) for m, t in shard.paths
            ]


#: What a conversation builder returns: turns, custom, tar member name -> encoded audio.
_Built = tuple[list[dict[str, Any]], dict[str, Any], dict[str, bytes]]


def _members(audio: dict[str, bytes], names: dict[str, tuple[str, float]]) -> dict[str, bytes]:
    """Encoded audio by tar member name (from cut id -> audio and cut id -> (name, duration))."""
    return {names[cut_id][0]: data for cut_id, data in audio.items()}


def _turn_attributes(cut: Cut) -> dict[str, Any]:
    attributes = {"cut_id": cut.id, "text": cut_text(cut)}
    return {**attributes, **json_fields(cut.custom or {}, _TURN_ATTRIBUTES)}


def _dialogue_turn_attributes(cut: Cut, spoken: bool) -> dict[str, Any]:
    attributes = {"cut_id": cut.id, TURN_TYPE: "audio" if spoken else "text"}
    attributes["text"] = cut_text(cut)
    return {**attributes, **json_fields(cut.custom or {}, _DIALOGUE_TURN_ATTRIBUTES)}


class _ShardWriter:
    """``manifest_N.jsonl`` + ``audio_N.tar`` pairs in one folder, rolled by a ShardRoller; the
    tars are written by Lhotse's :class:`~lhotse.shar.writers.TarWriter`."""

    def __init__(self, directory: Path, roller: ShardRoller) -> None:
        self.directory = directory
        self.roller = roller
        self.index = -1
        self.jsonl: IO[str] | None = None
        self.tar: TarWriter | None = None
        self.paths: list[tuple[str, str]] = []

    def write(self, conversation: dict, members: list[tuple[str, bytes]], seconds: float) -> None:
        index = self.roller.next_index(seconds)
        if index != self.index:
            self.close()
            self.directory.mkdir(parents=True, exist_ok=True)
            manifest = self.directory / f"manifest_{index}.jsonl"
            tar = self.directory / f"audio_{index}.tar"
            self.jsonl = open(manifest, "w", encoding="utf-8")
            # Lhotse's pattern numbers the tar (``%`` in the folder escaped); the roller, not
            # the writer's own count, decides when the next shard starts.
            pattern = str(self.directory).replace("%", "%%") + "/audio_%d.tar"
            self.tar = TarWriter(pattern, shard_size=_NEVER, shard_offset=index).__enter__()
            self.paths.append((str(manifest), str(tar)))
            self.index = index
        for name, data in members:
            self.tar.write(name, io.BytesIO(data))
        self.jsonl.write(json.dumps(conversation, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()
            self.tar.close()
            self.jsonl = self.tar = None
