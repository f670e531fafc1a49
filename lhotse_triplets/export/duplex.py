"""DuplexS2S layout (NeMo speechlm2 ``DuplexS2SDataset``) for dialogue data, as Lhotse Shar.

One cut per conversation (source conversation, language, voice): a two-channel dialogue laid
out in time, user turn then assistant turn, ``gap`` seconds apart::

    recording      user speech   |  silence        | user speech  | silence
    target_audio   silence       |  agent speech   | silence      | agent speech
    supervisions   speaker="user" text=prompt, speaker="agent" text=answer (verbatim), in order

``recording`` (the user channel) is the cut's audio; ``target_audio`` (custom field, a
Recording of the same length) the assistant channel, as ``DuplexS2SDataset`` reads them
(``input_roles=["user"]``, ``output_roles=["agent"]``). Our cuts carry only the user's audio, so
the assistant's comes from either

- ``target_audio`` already on the cut (a Recording of the spoken answer), or
- a TTS backend from the registry (``tts="kokoro"``, options in ``tts_options``) speaking the
  answer in the cut's language with ``agent_voice`` (default: the backend's first voice).

A cut with neither fails (recorded, the conversation is skipped). Output:
``OUT/cuts.NNNNNN.jsonl.gz``,
``recording.NNNNNN.tar``, ``target_audio.NNNNNN.tar`` (FLAC); NeMo reads it with
``type: lhotse_shar`` (``shar_path: OUT``).

Example::

    >>> export_duplex(CutSet.from_jsonl_lazy("gate.jsonl.gz"), "data/duplex", tts="espeak")
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from lhotse import MonoCut, Recording, SupervisionSegment
from lhotse.cut import Cut
from lhotse.shar import SharWriter
from lhotse.utils import Pathlike
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.export.common import (
    AtomicDir,
    ExportCounts,
    OnFailure,
    audio_samples,
    cut_text,
    encode_audio,
    failure_reason,
    group_conversations,
    kept_cuts,
    log_failure,
)

STAGE = "export_duplex"
USER_ROLE, AGENT_ROLE = "user", "agent"


def export_duplex(
    cuts: Iterable[Cut],
    output_dir: Pathlike,
    *,
    tts: str | None = None,
    tts_options: dict[str, Any] | None = None,
    agent_voice: str | None = None,
    gap: float = 0.4,
    sampling_rate: int = 16000,
    shard_size: int = 1000,
    overwrite: bool = False,
    progress: bool = True,
    on_failure: OnFailure | None = None,
) -> ExportCounts:
    """Write DuplexS2S dialogue cuts (user channel + ``target_audio`` agent channel) as Shar.

    :param tts: registry name of the TTS backend that speaks the answers of cuts with no
        ``target_audio`` (``None``: such cuts fail).
    :param gap: silence in seconds between consecutive turns.
    :return: counts (``written`` = dialogues).
    :raises ValueError: for an unsafe path. :raises FileExistsError: see ``overwrite``.
    """
    on_failure = on_failure or log_failure
    engine = None
    if tts is not None:
        from lhotse_triplets.backends.registry import build

        engine = build("tts", tts, **(tts_options or {}))
    counts = ExportCounts()
    atomic = AtomicDir(output_dir, overwrite=overwrite)
    groups = group_conversations(kept_cuts(cuts, False, counts))
    with atomic as tmp:
        with SharWriter(
            tmp, fields={"recording": "flac", fields.TARGET_AUDIO: "flac"}, shard_size=shard_size
        ) as writer:
            for key, group in tqdm(groups.items(), desc="duplex", disable=not progress):
                try:
                    dialogue = _dialogue(key, group, engine, agent_voice, gap, sampling_rate)
                    writer.write(dialogue)
                except (KeyboardInterrupt, MemoryError):
                    raise
                except Exception as e:
                    counts.failed += len(group)
                    for cut in group:
                        on_failure(Failure(cut.id, STAGE, failure_reason(e)))
                    continue
                counts.count(key.language, dialogue.duration)
    counts.extra["shar_dir"] = str(Path(atomic.output_dir))
    return counts


def _dialogue(key, group: list[Cut], engine, agent_voice, gap: float, sr: int) -> MonoCut:
    user_parts, agent_parts, sups = [], [], []
    t = 0
    dialogue_id = f"{key.conversation_id}-{key.language}-{key.voice}"
    for cut in group:
        user, _ = audio_samples(cut, sr)
        agent = _agent_audio(cut, engine, agent_voice, key.language, sr)
        answer = (cut.custom or {})[fields.ANSWER]
        for role, audio, text in ((USER_ROLE, user, cut_text(cut)), (AGENT_ROLE, agent, answer)):
            n_gap = int(round(gap * sr))
            silence = np.zeros(len(audio) + n_gap, np.float32)
            mine, other = (
                (user_parts, agent_parts) if role == USER_ROLE else (agent_parts, user_parts)
            )
            mine.append(np.concatenate([audio, np.zeros(n_gap, np.float32)]))
            other.append(silence)
            sups.append(
                SupervisionSegment(
                    id=f"{dialogue_id}-{len(sups)}",
                    recording_id=dialogue_id,
                    start=t / sr,
                    duration=len(audio) / sr,
                    text=text,
                    speaker=role,
                    language=key.language,
                )
            )
            t += len(audio) + n_gap
    source, target = np.concatenate(user_parts), np.concatenate(agent_parts)
    recording = Recording.from_bytes(encode_audio(source, sr, "flac"), recording_id=dialogue_id)
    target_rec = Recording.from_bytes(
        encode_audio(target, sr, "flac"), recording_id=f"{dialogue_id}-{fields.TARGET_AUDIO}"
    )
    return MonoCut(
        id=dialogue_id,
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


def _agent_audio(cut: Cut, engine, agent_voice, language: str, sr: int) -> np.ndarray:
    from lhotse_triplets.audio import resample

    existing = (cut.custom or {}).get(fields.TARGET_AUDIO)
    if isinstance(existing, Recording):
        audio = existing.resample(sr).load_audio()
        return audio.mean(axis=0).astype(np.float32)
    if engine is None:
        raise ItemError(
            f"no '{fields.TARGET_AUDIO}' recording for the answer and no TTS backend given "
            f"(pass tts=..., CLI --tts)",
            cut.id,
        )
    voice = agent_voice or engine.voices(language)[0]
    answer = (cut.custom or {}).get(fields.ANSWER)
    audio = engine.synthesize([answer], language=language, voice=voice)[0]
    return resample(np.asarray(audio, np.float32), engine.sampling_rate, sr)


__all__ = ["export_duplex"]
