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

A cut with neither fails (recorded, the conversation is skipped). Output:
``OUT/duplex/cuts.NNNNNN.jsonl.gz``, ``recording.NNNNNN.tar``, ``target_audio.NNNNNN.tar``
(FLAC); NeMo reads it with ``type: lhotse_shar`` (``shar_path: OUT/duplex``).

A dialogue whose id (``<conversation id>-<language>-<voice>``) is not a safe file name is stored
under its :func:`~lhotse_triplets.paths.safe_name`, the id kept in ``custom["original_id"]``
(as in the ``shar`` format: Lhotse names tar members after cut ids). **Zero dialogues**: one
empty shard (Lhotse opens it as zero cuts), and the result says so (``details["empty"]``).

Example::

    >>> export_duplex(CutSet.from_jsonl_lazy("gate.jsonl.gz"), "data", duplex_tts="espeak")
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from lhotse import MonoCut, Recording, SupervisionSegment
from lhotse.cut import Cut
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.audio import resample
from lhotse_triplets.cuts import cut_text
from lhotse_triplets.errors import ItemError
from lhotse_triplets.export.base import ExportOptions, ExportResult, exporter
from lhotse_triplets.export.common import (
    AtomicOutput,
    ConversationKey,
    ItemGuard,
    RollingSharWriter,
    ShardRoller,
    audio_samples,
    encode_audio,
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
USER_ROLE, AGENT_ROLE = "user", "agent"


@exporter(FORMAT)
def export_duplex(cuts: Iterable[Cut], output_dir: Path, options: ExportOptions) -> ExportResult:
    """DuplexS2S Shar: user audio + target_audio (agent), supervisions with user/agent roles.

    Writes ``OUT/duplex/`` atomically. Options used: ``duplex_tts`` (registry name of the TTS
    backend speaking the answers of cuts with no ``target_audio``; ``None``: such cuts fail),
    ``duplex_tts_options``, ``duplex_agent_voice``, ``duplex_gap`` (seconds of silence between
    turns), ``sampling_rate`` (``None``: each dialogue's first turn's rate), ``shard_size``
    (dialogues) and ``shard_hours``, ``overwrite``, ``progress``, ``on_failure``. Rejected cuts
    are left out.

    :return: paths ``duplex``; details ``shards`` (field -> shard paths); ``counts.written``
        counts dialogues.
    :raises ValueError: for an unsafe path. :raises FileExistsError: see ``overwrite``.

    Example::

        >>> export_duplex(cuts, "data", duplex_tts="espeak").counts.written
        3
    """
    engine = None
    if options.duplex_tts is not None:
        from lhotse_triplets.backends.registry import build

        engine = build("tts", options.duplex_tts, **dict(options.duplex_tts_options))
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
                    dialogue = with_safe_id(_dialogue(key, group, engine, options))
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
    key: ConversationKey, group: list[Cut], engine: Any, options: ExportOptions
) -> MonoCut:
    sr = options.sampling_rate or group[0].sampling_rate
    n_gap = int(round(options.duplex_gap * sr))
    channels: dict[str, list[np.ndarray]] = {USER_ROLE: [], AGENT_ROLE: []}
    sups = []
    t = 0
    for cut in group:
        user, _ = audio_samples(cut, sr)
        agent = _agent_audio(cut, engine, options.duplex_agent_voice, key.language, sr)
        answer = (cut.custom or {})[fields.ANSWER]
        for role, audio, text in ((USER_ROLE, user, cut_text(cut)), (AGENT_ROLE, agent, answer)):
            other = AGENT_ROLE if role == USER_ROLE else USER_ROLE
            channels[role].append(np.concatenate([audio, np.zeros(n_gap, np.float32)]))
            channels[other].append(np.zeros(len(audio) + n_gap, np.float32))
            sups.append(
                SupervisionSegment(
                    id=f"{key.name}-{len(sups)}",
                    recording_id=key.name,
                    start=t / sr,
                    duration=len(audio) / sr,
                    text=text,
                    speaker=role,
                    language=key.language,
                )
            )
            t += len(audio) + n_gap
    source, target = (np.concatenate(channels[role]) for role in (USER_ROLE, AGENT_ROLE))
    recording = Recording.from_bytes(encode_audio(source, sr, "flac"), recording_id=key.name)
    target_rec = Recording.from_bytes(
        encode_audio(target, sr, "flac"), recording_id=f"{key.name}-{fields.TARGET_AUDIO}"
    )
    return MonoCut(
        id=key.name,
        start=0.0,
        duration=recording.duration,
        channel=0,
        recording=recording,
        supervisions=sups,
        custom={
            fields.TARGET_AUDIO: target_rec,
            fields.CONVERSATION_ID: key.conversation_id,
            "source_cut_ids": [c.id for c in group],
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
