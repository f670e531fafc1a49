"""Multi-turn, multi-language dialogue cuts for the export tests (dummy-TTS audio: fast)."""

from pathlib import Path

from lhotse import CutSet, MonoCut, Recording
from lhotse.audio import AudioSource

from lhotse_triplets import fields
from lhotse_triplets.export.common import encode_audio
from lhotse_triplets.testing.backends import DummyTTS

from .test_shar import draw_image, spoken_cut

#: conversation id -> source turns (user text, answer), as the recipe reads them.
SOURCE = {
    "conv 1": [
        ("How many cubes are there?", "There are **three** cubes.\n\n- two red\n- one blue"),
        ("Which one is largest?", "The blue cube — it is « huge »."),
        ("And the sphere?", "The sphere is small: 2 cm."),
    ],
    "conv_2": [("What colour is the cylinder?", "It's green (matte).")],
}

#: (conversation id, turn, language, voice, reject reason)
PLAN = [
    ("conv 1", 0, "en", "v0", None),
    ("conv 1", 1, "en", "v0", "low_similarity"),  # rejected: a text turn in the conversation
    ("conv 1", 2, "en", "v0", None),
    ("conv 1", 0, "fr", "v1", None),
    ("conv_2", 0, "en", "v2", None),
    ("conv_2", 0, "fr", "v1", "high_error_rate"),  # rejected: no audio turn left, not written
]

SYSTEM_PROMPT = "You are a helpful visual assistant."


def spoken(conversation_id: str, turn: int, language: str) -> str:
    text = SOURCE[conversation_id][turn][0]
    return text if language == "en" else f"[{language}] {text}"


def dialogue_cuts(workdir: Path) -> list[MonoCut]:
    """The :data:`PLAN` cuts: audio files (WAV) and PNG images under ``workdir``."""
    tts = DummyTTS()
    cuts = []
    for conversation_id, turn, language, voice, reject in PLAN:
        cut_id = f"{conversation_id}-t{turn}-{language}-{voice}"
        text = spoken(conversation_id, turn, language)
        audio = tts.synthesize([text], language=language, voice=voice)[0]
        path = workdir / f"{cut_id}.wav"
        path.write_bytes(encode_audio(audio, tts.sampling_rate, "wav"))
        recording = Recording.from_file(path, recording_id=cut_id)
        image = workdir / f"{conversation_id}.png"
        if not image.exists():
            draw_image(image, seed=len(cuts) % 7)
        history = []
        for user, answer in SOURCE[conversation_id][:turn]:
            history += [{"role": "user", "text": user}, {"role": "assistant", "text": answer}]
        custom = {
            fields.CONVERSATION_ID: conversation_id,
            fields.TURN: turn,
            fields.USER_TEXT: SOURCE[conversation_id][turn][0],
            fields.ANSWER: SOURCE[conversation_id][turn][1],
            fields.HISTORY: history,
            fields.DATA_SOURCE: "CLEVR",
            fields.TTS_MODEL: "dummy",
            fields.SIMILARITY: 0.9 - 0.1 * turn,
            fields.ERROR_RATE: 0.05 * turn,
            fields.WER: 0.05 * turn,
            fields.MOS: 3.5 + 0.1 * turn,
            fields.REJECT_REASON: reject,
        }
        if conversation_id == "conv_2":
            custom[fields.SYSTEM_PROMPT] = SYSTEM_PROMPT
        cuts.append(spoken_cut(recording, text, language, voice, custom, image))
    # Out of order on purpose: the export must order turns itself.
    return cuts[::-1]


def kept(cuts) -> list[MonoCut]:
    return [c for c in cuts if c.custom[fields.REJECT_REASON] is None]


__all__ = ["AudioSource", "CutSet", "dialogue_cuts", "kept", "spoken"]
