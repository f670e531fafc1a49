"""DuplexS2S layout (NeMo speechlm2 ``DuplexS2SDataset``) for dialogue data, as Lhotse Shar.

One cut per conversation (source conversation, language, voice): a two-channel dialogue laid
out in time, user turn then assistant turn, ``duplex_gap`` seconds apart::

    recording      user speech   |  silence        | user speech  | silence
    target_audio   silence       |  agent speech   | silence      | agent speech
    supervisions   speaker="user" text=prompt, speaker="agent" text=answer (verbatim), in order

``recording`` (the user channel) is the cut's audio; ``target_audio`` (custom field, a
Recording of the same length) the assistant channel, as ``DuplexS2SDataset`` reads them
(``input_roles=["user"]``, ``output_roles=["agent"]``). Our cuts carry only the user's audio, so
the assistant's comes from either

- ``target_audio`` already on the cut (a Recording of the spoken answer), or
- a TTS backend from the registry (``duplex_tts="kokoro"``, options in ``duplex_tts_options``)
  speaking the answer in the cut's language with ``duplex_agent_voice`` (default: the backend's
  first voice).

A cut with neither fails (recorded, the conversation is skipped).

**Dialogue turn cuts** (the ``deepdialogue``, ``multidialog``, ``instructs2s`` recipes: one cut
per turn, :func:`~lhotse_triplets.dialogues.is_turn_cut`) are assembled per conversation
(:func:`~lhotse_triplets.export.assemble.assemble_dialogue`): every turn placed in turn order
on the user or agent channel, at ``sampling_rate`` (default 16 kHz), id
``<conversation id>-<language>``. A conversation whose turns are not ``0..n-1`` fails (``turns:
no turn 0 in <conversation>``), and so does one with a text-only turn unless ``duplex_tts``
speaks it (recorded in ``turn_attributes`` as ``audio_source: synthesized: <tts>``).

Supervision speakers are ``user``/``agent`` (the dataset's defaults), or ``role_names``
(``{"user": "User", "assistant": "Assistant"}`` for NeMo's example YAML). Output:
``OUT/duplex/cuts.NNNNNN.jsonl.gz``, ``recording.NNNNNN.tar``, ``target_audio.NNNNNN.tar``
(FLAC); NeMo reads it with ``type: lhotse_shar`` (``shar_path: OUT/duplex``).

A dialogue whose id (``<conversation id>-<language>-<voice>``; turn cuts: no voice) is not a
safe file name (DeepDialogue ids hold a ``/``) is stored under its
:func:`~lhotse_triplets.paths.safe_name`, the id kept in ``custom["original_id"]`` (as in the
``shar`` format: Lhotse names tar members after cut ids). **Zero dialogues**: one
empty shard (Lhotse opens it as zero cuts), and the result says so (``details["empty"]``).

Example::

    >>> export_duplex(CutSet.from_jsonl_lazy("gate.jsonl.gz"), "data", duplex_tts="espeak")
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lhotse import MonoCut, Recording
from lhotse.cut import Cut
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.audio import resample
from lhotse_triplets.cuts import cut_text
from lhotse_triplets.dialogues import ASSISTANT, USER, is_turn_cut, role_names
from lhotse_triplets.errors import ItemError
from lhotse_triplets.export.assemble import (
    DEFAULT_ROLE_NAMES,
    DIALOGUE_RATE,
    SOURCE_CUT_IDS,
    Segment,
    TurnSpeaker,
    assemble_dialogue,
    lay_out,
)
from lhotse_triplets.export.base import ExportOptions, ExportResult, exporter
from lhotse_triplets.export.common import (
    AtomicOutput,
    ConversationKey,
    ItemGuard,
    RollingSharWriter,
    ShardRoller,
    audio_samples,
    group_conversations,
    is_shard_file,
    kept_cuts,
    shard_paths,
    with_safe_id,
    write_empty_shard,
)

FORMAT = "duplex"
STAGE = f"export_{FORMAT}"
#: The Shar directory inside the export directory.
DUPLEX_DIR = "duplex"
#: The default speaker names of the supervisions (NeMo ``DuplexS2SDataset``'s own).
USER_ROLE, AGENT_ROLE = DEFAULT_ROLE_NAMES[USER], DEFAULT_ROLE_NAMES[ASSISTANT]


@dataclass
class _Assembly:
    """What every conversation of one export is built with."""

    options: ExportOptions
    names: Mapping[str, str]
    engine: Any = None

    def build(self, key: ConversationKey, group: list[Cut]) -> MonoCut:
        """The duplex cut of one conversation (turn cuts or triplets), its id made safe."""
        if is_turn_cut(group[0]):
            speak = None
            if self.engine is not None:
                speak = TurnSpeaker(
                    self.engine, str(self.options.duplex_tts), self.options.duplex_agent_voice
                )
            dialogue = assemble_dialogue(
                key,
                group,
                sampling_rate=self.options.sampling_rate or DIALOGUE_RATE,
                gap=self.options.duplex_gap,
                names=self.names,
                speak=speak,
            )
        else:
            dialogue = _dialogue(key, group, self.engine, self.names, self.options)
        return with_safe_id(dialogue)


@exporter(FORMAT)
def export_duplex(cuts: Iterable[Cut], output_dir: Path, options: ExportOptions) -> ExportResult:
    """DuplexS2S Shar: user audio + target_audio (agent), supervisions with user/agent roles.

    Writes ``OUT/duplex/`` atomically. Triplet cuts are laid out question/answer per cut;
    dialogue turn cuts are assembled per conversation (module docstring). Options used:
    ``duplex_tts`` (registry name of the TTS backend speaking the answers of cuts with no
    ``target_audio``, and text-only dialogue turns; ``None``: such items fail),
    ``duplex_tts_options``, ``duplex_agent_voice``, ``duplex_gap`` (seconds of silence after
    each turn), ``role_names`` (our role -> supervision speaker, over ``user``/``agent``),
    ``sampling_rate`` (``None``: each triplet dialogue's first turn's rate, 16 kHz for turn
    cuts), ``shard_size`` (dialogues) and ``shard_hours``, ``overwrite``, ``progress``,
    ``on_failure``. Rejected cuts are left out.

    :return: paths ``duplex``; details ``shards`` (field -> shard paths); ``counts.written``
        counts dialogues.
    :raises ValueError: for an unsafe path or a bad ``role_names`` key.
    :raises FileExistsError: see ``overwrite``.

    Example::

        >>> export_duplex(cuts, "data", duplex_tts="espeak").counts.written
        3
    """
    assembly = _Assembly(options, role_names(options.role_names or None, DEFAULT_ROLE_NAMES))
    if options.duplex_tts is not None:
        from lhotse_triplets.backends.registry import build

        assembly.engine = build("tts", options.duplex_tts, **dict(options.duplex_tts_options))
    target = AtomicOutput(
        output_dir / DUPLEX_DIR,
        overwrite=options.overwrite,
        replaceable=is_shard_file,
        keep_unrelated=False,
        format=FORMAT,
    )
    result = ExportResult(FORMAT, paths={FORMAT: str(target.path)})
    guard = ItemGuard(STAGE, result.counts, options.on_failure)
    groups = group_conversations(kept_cuts(cuts, False, result.counts))
    roller = ShardRoller(options.shard_size, options.shard_hours)
    shar_fields = {"recording": "flac", fields.TARGET_AUDIO: "flac"}
    with target as tmp:
        with RollingSharWriter(tmp, shar_fields, roller) as writer:
            for key, group in tqdm(groups.items(), desc="duplex", disable=not options.progress):
                with guard.item(*(c.id for c in group)) as outcome:
                    dialogue = assembly.build(key, group)
                    writer.write(dialogue)
                if outcome.ok:
                    result.counts.count(key.language, dialogue.duration)
        if not result.counts.written:
            write_empty_shard(tmp, shar_fields, numbered=roller.limited)
        result.details["shards"] = shard_paths(tmp, target.path)
    if not result.counts.written:
        result.say_empty("dialogues", f"{target.path} holds one empty shard")
    return result


def _dialogue(
    key: ConversationKey,
    group: list[Cut],
    engine: Any,
    names: Mapping[str, str],
    options: ExportOptions,
) -> MonoCut:
    """The duplex cut of triplet cuts: per cut, the user's audio then the spoken answer."""
    sr = options.sampling_rate or group[0].sampling_rate
    segments = []
    for cut in group:
        user, _ = audio_samples(cut, sr)
        agent = _agent_audio(cut, engine, options.duplex_agent_voice, key.language, sr)
        answer = (cut.custom or {})[fields.ANSWER]
        segments += [Segment(USER, user, cut_text(cut)), Segment(ASSISTANT, agent, answer)]
    return lay_out(
        key.name,
        segments,
        sampling_rate=sr,
        gap=options.duplex_gap,
        names=names,
        language=key.language,
        custom={
            fields.CONVERSATION_ID: key.conversation_id,
            SOURCE_CUT_IDS: [c.id for c in group],
        },
    )


def _agent_audio(
    cut: Cut, engine: Any, agent_voice: str | None, language: str, sr: int
) -> np.ndarray:
    existing = (cut.custom or {}).get(fields.TARGET_AUDIO)
    if isinstance(existing, Recording):
        audio = existing.resample(sr).load_audio()
        return audio.mean(axis=0).astype(np.float32)
    if engine is None:
        raise ItemError(
            f"no '{fields.TARGET_AUDIO}' recording for the answer and no TTS backend given "
            f"(set duplex_tts=...)",
            cut.id,
        )
    voice = agent_voice or engine.voices(language)[0]
    answer = (cut.custom or {}).get(fields.ANSWER)
    audio = engine.synthesize([answer], language=language, voice=voice)[0]
    return resample(np.asarray(audio, np.float32), engine.sampling_rate, sr)
