"""The conversation assembler: turns laid out on one two-channel timeline, as NeMo speechlm2's
``DuplexS2SDataset`` reads a conversation.

A conversation becomes ONE cut. Each turn is placed after the previous one, with ``gap``
seconds of silence after every turn (so the last turn's end, where the dataset puts its EOS,
lies inside the cut)::

    recording      turn 0 (user) | gap | silence         | gap | turn 2 (user) | gap | ...
    target_audio   silence       | gap | turn 1 (agent)  | gap | silence       | gap | ...
    supervisions   one per turn: speaker = the trainer's role name, start, duration, text

``recording`` is the user channel, ``custom["target_audio"]`` the agent channel (a Recording of
exactly as many samples), both mono at one rate. Role names default to the dataset's own
(``user`` -> ``"user"``, ``assistant`` -> ``"agent"``); NeMo's example YAML expects
``{"user": "User", "assistant": "Assistant"}`` (``export.role_names``).

:func:`assemble_dialogue` builds the cut of a dialogue recipe's turn cuts (one cut per turn,
see :mod:`lhotse_triplets.dialogues`); :func:`lay_out` is the timeline itself, shared with the
``duplex`` export of question/answer triplets.

Example::

    >>> groups = group_conversations(turn_cuts)
    >>> key, turns = next(iter(groups.items()))
    >>> cut = assemble_dialogue(key, turns, sampling_rate=16000, gap=0.4, names=DEFAULT_ROLE_NAMES)
    >>> [s.speaker for s in cut.supervisions]
    ['user', 'agent', 'user', 'agent']
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from lhotse import MonoCut, Recording, SupervisionSegment
from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.audio import resample
from lhotse_triplets.cuts import cut_language, cut_text
from lhotse_triplets.dialogues import (
    ASSISTANT,
    USER,
    synthesized_by,
    turn_gaps,
    turn_number,
    turn_role,
)
from lhotse_triplets.errors import ItemError
from lhotse_triplets.export.common import ID, ConversationKey, audio_samples, encode_audio

#: Our role -> the speaker name ``DuplexS2SDataset`` treats as input/output by default.
DEFAULT_ROLE_NAMES = {USER: "user", ASSISTANT: "agent"}
#: Rate of an assembled dialogue when the export sets none (16 kHz mono float32 on load).
DIALOGUE_RATE = 16000
#: ``custom`` key listing the turn cuts a dialogue was assembled from, in turn order.
SOURCE_CUT_IDS = fields.SOURCE_CUT_IDS
#: Per-turn fields of a turn cut kept in ``turn_attributes`` (when the turn has them).
TURN_FIELDS = (fields.SPEAKER_ID, fields.EMOTION, fields.AUDIO_EMOTION, fields.AUDIO_SOURCE)
#: Conversation-wide fields of the first turn kept on the assembled cut.
CONVERSATION_FIELDS = (fields.DOMAIN, fields.GENERATED_BY, fields.SPLIT)

#: Speaks a text-only turn at a rate: ``(cut, sampling_rate) -> (samples, audio_source)``.
Speak = Callable[[Cut, int], tuple[np.ndarray, str]]


@dataclass
class Segment:
    """One turn on the timeline: our role (``user``/``assistant``), mono float32 samples at the
    timeline's rate, and its text."""

    role: str
    audio: np.ndarray
    text: str


class TurnSpeaker:
    """Speaks text-only turns with a TTS backend (the ``duplex_tts`` export option).

    The assistant speaks with ``agent_voice`` (default: the backend's first voice of the
    language), the user with another voice of the backend when it has one.

    Example::

        >>> speak = TurnSpeaker(build("tts", "dummy"), "dummy")
        >>> audio, source = speak(text_only_turn, 16000)
        >>> source
        'synthesized: dummy'
    """

    def __init__(self, engine: Any, name: str, agent_voice: str | None = None) -> None:
        self.engine = engine
        self.source = synthesized_by(name)
        self.agent_voice = agent_voice

    def voice(self, role: str | None, language: str) -> str:
        """The voice of ``role`` in ``language``."""
        voices = list(self.engine.voices(language))
        agent = self.agent_voice or voices[0]
        if role == ASSISTANT:
            return agent
        return next((v for v in voices if v != agent), voices[0])

    def __call__(self, cut: Cut, sampling_rate: int) -> tuple[np.ndarray, str]:
        language = cut_language(cut)
        voice = self.voice(turn_role(cut), language)
        audio = self.engine.synthesize([cut_text(cut)], language=language, voice=voice)[0]
        audio = resample(np.asarray(audio, np.float32), self.engine.sampling_rate, sampling_rate)
        return audio, self.source


def lay_out(
    cut_id: str,
    segments: Sequence[Segment],
    *,
    sampling_rate: int,
    gap: float,
    names: Mapping[str, str],
    language: str,
    custom: Mapping[str, Any] | None = None,
) -> MonoCut:
    """The two-channel cut of ``segments`` in order, ``gap`` seconds of silence after each:
    user turns in ``recording``, assistant turns in ``custom["target_audio"]`` (same length),
    one supervision per segment with ``speaker = names[segment.role]``.

    :raises ItemError: ``role: ...`` for a segment whose role ``names`` does not name.

    Example::

        >>> cut = lay_out("c1-en", [Segment("user", np.ones(8000, np.float32), "hi")],
        ...               sampling_rate=16000, gap=0.5, names=DEFAULT_ROLE_NAMES, language="en")
        >>> cut.duration, cut.supervisions[0].speaker
        (1.0, 'user')
    """
    n_gap = int(round(gap * sampling_rate))
    user, agent, sups = [], [], []
    t = 0
    for index, segment in enumerate(segments):
        if segment.role not in names:
            raise ItemError(f"role: {segment.role!r} is not one of {', '.join(names)}", cut_id)
        audio = np.asarray(segment.audio, np.float32).reshape(-1)
        silence = np.zeros(len(audio), np.float32)
        pad = np.zeros(n_gap, np.float32)
        own, other = (user, agent) if segment.role == USER else (agent, user)
        own.extend((audio, pad))
        other.extend((silence, pad))
        sups.append(
            SupervisionSegment(
                id=f"{cut_id}-{index}",
                recording_id=cut_id,
                start=t / sampling_rate,
                duration=len(audio) / sampling_rate,
                text=segment.text,
                speaker=names[segment.role],
                language=language,
            )
        )
        t += len(audio) + n_gap
    source, target = (np.concatenate(c or [np.zeros(0, np.float32)]) for c in (user, agent))
    recording = _recording(source, sampling_rate, cut_id)
    target_rec = _recording(target, sampling_rate, f"{cut_id}-{fields.TARGET_AUDIO}")
    return MonoCut(
        id=cut_id,
        start=0.0,
        duration=recording.duration,
        channel=0,
        recording=recording,
        supervisions=sups,
        custom={fields.TARGET_AUDIO: target_rec, **(custom or {})},
    )


def _recording(samples: np.ndarray, sampling_rate: int, recording_id: str) -> Recording:
    data = encode_audio(samples, sampling_rate, "flac")
    return Recording.from_bytes(data, recording_id=recording_id)


def assemble_dialogue(
    key: ConversationKey,
    turns: Sequence[Cut],
    *,
    sampling_rate: int = DIALOGUE_RATE,
    gap: float = 0.4,
    names: Mapping[str, str] = DEFAULT_ROLE_NAMES,
    speak: Speak | None = None,
) -> MonoCut:
    """One DuplexS2S cut (id ``key.name``) of a conversation's turn cuts, in turn order.

    Turn audio is resampled to ``sampling_rate``; a text-only turn (no recording) is spoken
    with ``speak`` (:class:`TurnSpeaker`). ``custom`` holds ``conversation_id``,
    ``source_cut_ids``, ``turn_attributes`` (per turn: cut id, turn, role and the turn's
    ``speaker_id``/``emotion``/``audio_emotion``/``audio_source``; a spoken turn's
    ``audio_source`` is ``synthesized: <tts>``) and the first turn's domain/generated_by/split.

    :param names: our role -> the trainer's role name
        (:func:`~lhotse_triplets.dialogues.role_names`).
    :raises ItemError: ``turns: no turn 0 in <conversation>`` (any gap or repeat in the turn
        numbers); ``missing_audio: turn 3 (assistant) has no audio; ...`` without ``speak``.

    Example::

        >>> cut = assemble_dialogue(key, turns, sampling_rate=16000, gap=0.4,
        ...                         names={"user": "User", "assistant": "Assistant"})
        >>> cut.custom["target_audio"].num_samples == cut.recording.num_samples
        True
    """
    problem = turn_gaps(turn_number(t) for t in turns)
    if problem is not None:
        raise ItemError(f"turns: {problem} in {key.conversation_id}", key.name)
    segments, attributes = [], []
    for turn in turns:
        audio, source = _turn_audio(turn, sampling_rate, speak)
        segments.append(Segment(str(turn_role(turn)), audio, cut_text(turn)))
        attributes.append(_turn_attributes(turn, source))
    first = turns[0].custom or {}
    custom = {
        fields.CONVERSATION_ID: key.conversation_id,
        SOURCE_CUT_IDS: [t.id for t in turns],
        fields.TURN_ATTRIBUTES: attributes,
        **{name: first[name] for name in CONVERSATION_FIELDS if first.get(name) is not None},
    }
    return lay_out(
        key.name,
        segments,
        sampling_rate=sampling_rate,
        gap=gap,
        names=names,
        language=key.language,
        custom=custom,
    )


def _turn_audio(turn: Cut, sampling_rate: int, speak: Speak | None) -> tuple[np.ndarray, Any]:
    """The turn's samples and its new ``audio_source`` (``None``: the corpus's audio)."""
    if turn.has_recording:
        return audio_samples(turn, sampling_rate)[0], None
    if speak is None:
        raise ItemError(
            f"missing_audio: turn {turn_number(turn)} ({turn_role(turn)}) has no audio; "
            "set export.duplex_tts or re-speak it with synthesize",
            turn.id,
        )
    return speak(turn, sampling_rate)


def _turn_attributes(turn: Cut, source: str | None) -> dict[str, Any]:
    custom = turn.custom or {}
    out = {ID: turn.id, fields.TURN: turn_number(turn), fields.ROLE: turn_role(turn)}
    out.update({name: custom[name] for name in TURN_FIELDS if custom.get(name) is not None})
    if source is not None:
        out[fields.AUDIO_SOURCE] = source
    return out
