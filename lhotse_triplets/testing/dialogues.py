"""Dialogue turn cuts for tests, shaped exactly like the dialogue recipes' output.

One cut per turn: a 24 kHz mono wav (a tone whose pitch encodes the turn, so a test can tell
turns apart) read lazily and resampled to 16 kHz like the recipes do; supervision ``speaker`` =
role; custom ``conversation_id``, ``turn``, ``role``, ``speaker_id``; a turn listed in
``missing`` is text-only (no recording, ``audio_source: missing``) as when the corpus has no wav.

Example::

    >>> cuts = dialogue_turn_cuts(tmp_path, {"c1": 4, "c2": 2}, missing={("c1", 3)})
    >>> [(c.custom["turn"], c.custom["role"]) for c in cuts if c.custom["conversation_id"] == "c2"]
    [(0, 'user'), (1, 'assistant')]
"""

from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import soundfile
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

from lhotse_triplets import fields
from lhotse_triplets.cuts import make_prompt_cut
from lhotse_triplets.dialogues import ASSISTANT, MISSING_AUDIO, USER

#: Rate of the fixture wavs (DeepDialogue's); the cuts resample to :data:`TARGET_RATE`.
SOURCE_RATE = 24000
TARGET_RATE = 16000


def turn_text(conversation_id: str, turn: int) -> str:
    """The text of a fixture turn."""
    who = "user" if turn % 2 == 0 else "assistant"
    return f"the {who} says turn {turn} of {conversation_id}"


def turn_seconds(turn: int) -> float:
    """The fixture turn's duration: 0.4 s + 0.1 s per turn number (turns differ in length)."""
    return 0.4 + 0.1 * turn


def turn_frequency(turn: int) -> float:
    """The fixture turn's tone frequency in Hz (turn k: 200 + 100 k)."""
    return 200.0 + 100.0 * turn


def dialogue_turn_cuts(
    workdir: Path,
    conversations: Mapping[str, int],
    missing: Collection[tuple[str, int]] = (),
    language: str = "en",
) -> CutSet:
    """Turn cuts of ``conversations`` (id -> number of turns; even turns are the user's)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cuts = []
    for conversation_id, n_turns in conversations.items():
        for turn in range(n_turns):
            cuts.append(
                _turn(workdir, conversation_id, turn, (conversation_id, turn) in missing, language)
            )
    return CutSet.from_cuts(cuts)


def _turn(workdir: Path, conversation_id: str, turn: int, missing: bool, language: str) -> MonoCut:
    role = USER if turn % 2 == 0 else ASSISTANT
    cut_id = f"{conversation_id}-t{turn}"
    custom = {
        fields.CONVERSATION_ID: conversation_id,
        fields.TURN: turn,
        fields.ROLE: role,
        fields.SPEAKER_ID: "human" if role == USER else "gpt",
    }
    text = turn_text(conversation_id, turn)
    if missing:
        cut = make_prompt_cut(
            cut_id, text, language, {**custom, fields.AUDIO_SOURCE: MISSING_AUDIO}
        )
        cut.supervisions[0].speaker = role
        return cut
    t = np.arange(int(turn_seconds(turn) * SOURCE_RATE)) / SOURCE_RATE
    audio = (0.3 * np.sin(2 * np.pi * turn_frequency(turn) * t)).astype(np.float32)
    path = workdir / f"{cut_id.replace('/', '_')}.wav"
    soundfile.write(path, audio, SOURCE_RATE)
    recording = Recording.from_file(path, recording_id=cut_id).resample(TARGET_RATE)
    return MonoCut(
        id=cut_id,
        start=0.0,
        duration=recording.duration,
        channel=0,
        recording=recording,
        supervisions=[
            SupervisionSegment(
                id=cut_id,
                recording_id=cut_id,
                start=0.0,
                duration=recording.duration,
                channel=0,
                text=text,
                language=language,
                speaker=role,
            )
        ],
        custom=custom,
    )
