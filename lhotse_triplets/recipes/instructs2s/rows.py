"""InstructS2S-200K rows: the JSON array read as a stream, and one conversation's turn cuts.

A row is ``{"id", "conversation": [{"from": "human"|"gpt", "text", "speech", "unit"}]}``; every
turn becomes one cut (id ``{conversation_id}-t{turn}``, see :func:`conversation_outputs`). A row
that cannot be used in full gives one :class:`~lhotse_triplets.errors.Failure` (named by its
conversation id) and no cuts, so the turns of every kept conversation stay contiguous.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lhotse import MonoCut, Recording
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.audio import make_recording
from lhotse_triplets.dialogues import (
    ASSISTANT,
    USER,
    is_text_only,
    synthesized_by,
)
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.paths import inside, safe_name
from lhotse_triplets.recipes.utils import (
    MISSING_AUDIO,
    STAGE,
    TURN_SAMPLING_RATE,
    Output,
    check_cut_text,
    turn_cut,
    turn_recording,
)

#: Rate every turn's recording is resampled to (lazily, on load).
SAMPLING_RATE = TURN_SAMPLING_RATE
#: The corpus's speaker names -> roles, unless ``roles`` says otherwise.
DEFAULT_ROLES = {"human": USER, "gpt": ASSISTANT}
#: What ``audio_source`` says of a turn whose wav is not in the corpus.
MISSING = MISSING_AUDIO
#: What ``audio_source`` says of a turn spoken by our TTS: ``synthesized: <tts name>``.

_UNIT = re.compile(r"<(\d+)>")
_UNITS = re.compile(r"(?:\s*<\d+>)*\s*")
#: ``...-<k>-user.wav`` / ``...-<k>-assistant.wav``: the role the corpus spoke the wav as.
_WAV_ROLE = re.compile(r"-\d+-(user|assistant)\.wav$")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class TurnOptions:
    """How the turns of a row become cuts (the same for every row of a run)."""

    audio_dir: Path
    roles: Mapping[str, str]
    language: str = "en"
    split: str = "train"
    allow_outside: bool = False
    max_turn_chars: int | None = None
    synthesizer: "Synthesizer | None" = None


@dataclass(frozen=True)
class Synthesizer:
    """Speaks the user turns the corpus has no wav for (``--synthesize-missing``).

    :param tts: a TTS backend (``backends.registry.build("tts", name)``).
    :param name: its registry name (recorded as ``audio_source: synthesized: <name>``).
    :param voice: the voice it speaks with (recorded in ``custom["voice"]``).
    :param audio_dir: where the wavs go (``<audio_dir>/<conversation>/<cut id>.wav``, written
        atomically); ``None``: kept in memory.
    """

    tts: Any
    name: str
    voice: str
    audio_dir: Path | None = None

    def speak(self, cut: MonoCut, language: str) -> MonoCut:
        """``cut`` (a text-only turn) with its text spoken: a recording resampled to 16 kHz on
        load, ``audio_source`` ``synthesized: <name>``, the voice and TTS in custom; the role
        stays.

        :raises ItemError: ``synthesis_failed: turn <n>: <reason>``.
        """
        turn = cut.custom[fields.TURN]
        text = cut.supervisions[0].text
        path = None
        if self.audio_dir is not None:
            conversation = safe_name(cut.custom[fields.CONVERSATION_ID])
            path = self.audio_dir / conversation / f"{safe_name(cut.id)}.wav"
        try:
            (audio,) = self.tts.synthesize([text], language=language, voice=self.voice)
            recording = make_recording(audio, self.tts.sampling_rate, cut.id, path, "wav")
            recording = turn_recording(
                path if path is not None else recording.sources[0].source, cut.id
            )
        except Exception as e:  # noqa: BLE001 - any TTS error fails this conversation only
            reason = e.reason if isinstance(e, ItemError) else f"{type(e).__name__}: {e}"
            raise ItemError(f"synthesis_failed: turn {turn}: {reason[:200]}") from None
        custom = {
            **cut.custom,
            fields.AUDIO_SOURCE: synthesized_by(self.name),
            fields.VOICE: self.voice,
            fields.TTS_MODEL: self.name,
        }
        return turn_cut(
            cut.id,
            text=text,
            language=cut.supervisions[0].language,
            role=cut.custom[fields.ROLE],
            custom=custom,
            recording=recording,
        )


def stream_rows(path: Pathlike) -> Iterator[tuple[int, Any]]:
    """``(index, row)`` for each element of the JSON array in ``path``, parsed as a stream
    (``ijson``: memory stays flat whatever the file's size).

    A file broken part way gives, after the rows before the break, one ``(index, ItemError)``
    (``invalid_json``); the rest of the file is skipped.

    :raises ValueError: the file does not hold a JSON array.
    """
    import ijson

    with open(path, "rb") as f:
        head = f.read(len(_BOM))
        f.seek(len(_BOM) if head == _BOM else 0)
        start = f.read(4096).lstrip()
        if not start.startswith(b"["):
            raise ValueError(f"{path} does not hold a JSON array (starts with {start[:20]!r})")
        f.seek(len(_BOM) if head == _BOM else 0)
        count = 0
        try:
            for row in ijson.items(f, "item", use_float=True):
                yield count, row
                count += 1
        except (ijson.JSONError, UnicodeDecodeError) as e:
            detail = f"{type(e).__name__}: {str(e)[:200]} after {count} rows"
            yield count, ItemError(f"invalid_json: {detail}; the rest of the file is skipped")


def parse_units(units: object, turn: int) -> list[int]:
    """CosyVoice2 speech tokens ``"<2957><4299>..."`` as integers (a list of ints is kept).

    Example::

        >>> parse_units("<2957><4299>", 1)
        [2957, 4299]
    """
    if isinstance(units, list) and all(isinstance(u, int) and u >= 0 for u in units):
        return list(units)
    if isinstance(units, str) and _UNITS.fullmatch(units):
        return [int(u) for u in _UNIT.findall(units)]
    raise ItemError(f"invalid_units: turn {turn}: {str(units)[:60]!r} is not <n><n>... tokens")


def row_conversation_id(row: object, index: int) -> str:
    """The row's ``id`` as a string; ``invalid_id`` unless a non-empty string or an integer."""
    if not isinstance(row, Mapping):
        raise ItemError(f"not_an_object: row {index} is a {type(row).__name__}")
    conversation_id = row.get("id")
    if isinstance(conversation_id, bool) or not isinstance(conversation_id, (str, int)):
        raise ItemError(f"invalid_id: row {index} has id {str(conversation_id)[:60]!r}")
    if not str(conversation_id).strip():
        raise ItemError(f"invalid_id: row {index} has an empty id")
    return str(conversation_id)


def conversation_outputs(conversation_id: str, row: Mapping, options: TurnOptions) -> list[Output]:
    """The turn cuts of one row, or one failure naming the conversation (nothing kept of it).

    Example::

        >>> options = TurnOptions(Path("corpus"), DEFAULT_ROLES)
        >>> [c.id for c in conversation_outputs("a1", row, options)]
        ['a1-t0', 'a1-t1']
    """
    turns = row.get("conversation")
    if not isinstance(turns, list) or not turns:
        reason = f"no_conversation: {str(turns)[:60]!r} is not a non-empty list of turns"
        return [Failure(conversation_id, STAGE, reason)]
    try:
        cuts = [
            make_turn_cut(conversation_id, turn, raw, options) for turn, raw in enumerate(turns)
        ]
    except ItemError as e:
        return [Failure.of(conversation_id, STAGE, e)]
    for cut in cuts:
        reason = check_cut_text(cut, options.max_turn_chars, None)
        if reason is not None:
            code, detail = reason.split(": ", 1)
            turn = cut.custom[fields.TURN]
            return [Failure(conversation_id, STAGE, f"{code}: turn {turn}: {detail}")]
    try:
        return [_spoken(cut, options) for cut in cuts]
    except ItemError as e:
        return [Failure.of(conversation_id, STAGE, e)]


def _spoken(cut: MonoCut, options: TurnOptions) -> MonoCut:
    """``cut``, synthesized when it is a user turn without audio and a synthesizer is set."""
    if options.synthesizer is None or not is_text_only(cut) or cut.custom[fields.ROLE] != USER:
        return cut
    return options.synthesizer.speak(cut, options.language)


def make_turn_cut(conversation_id: str, turn: int, raw: object, options: TurnOptions) -> MonoCut:
    """One turn as a cut: text, mapped role, the corpus's speaker, units, and the wav (16 kHz
    mono on load) or, without a wav in the corpus, no recording and ``audio_source="missing"``.
    """
    if not isinstance(raw, Mapping):
        raise ItemError(f"malformed_turn: turn {turn} is a {type(raw).__name__}, not an object")
    speaker_id = raw.get("from")
    if speaker_id not in options.roles:
        known = ", ".join(sorted(options.roles))
        raise ItemError(f"unknown_role: turn {turn}: {str(speaker_id)[:40]!r} (known: {known})")
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ItemError(f"empty_turn: turn {turn} has no text")
    custom: dict[str, Any] = {
        fields.CONVERSATION_ID: conversation_id,
        fields.TURN: turn,
        fields.SPEAKER_ID: speaker_id,
        fields.SPLIT: options.split,
    }
    if raw.get("unit") is not None:
        custom[fields.SPEECH_UNITS] = parse_units(raw["unit"], turn)
    cut_id = f"{conversation_id}-t{turn}"
    return turn_cut(
        cut_id,
        text=text.strip(),
        language=options.language,
        role=options.roles[speaker_id],
        custom=custom,
        recording=wav_recording(cut_id, raw.get("speech"), speaker_id, turn, options),
    )


def wav_recording(
    cut_id: str, speech: object, speaker_id: str, turn: int, options: TurnOptions
) -> Recording | None:
    """The turn's wav as a recording resampled to 16 kHz on load; ``None`` when the row names
    none or the file is not there.

    :raises ItemError: ``malformed_turn`` (a path that is not a string), ``outside_root``,
        ``audio_role_mismatch`` (a ``-user.wav`` on a ``gpt`` turn or the reverse),
        ``unreadable_audio`` (also for a file without samples).
    """
    if speech is None or speech == "":
        return None
    if not isinstance(speech, str):
        raise ItemError(f"malformed_turn: turn {turn}: speech is a {type(speech).__name__}")
    match = _WAV_ROLE.search(speech)
    expected = DEFAULT_ROLES.get(speaker_id)
    if match and expected and match[1] != expected:
        raise ItemError(
            f"audio_role_mismatch: turn {turn}: {speech[-80:]!r} on a {speaker_id} turn"
        )
    try:
        path = inside(speech, options.audio_dir, what="audio", allow_outside=options.allow_outside)
    except ItemError as e:
        code, detail = e.reason.split(": ", 1)
        raise ItemError(f"{code}: turn {turn}: {detail}") from None
    if not path.is_file():
        return None
    try:
        return turn_recording(path, cut_id)
    except ItemError as e:
        code, detail = e.reason.split(": ", 1)
        raise ItemError(f"{code}: turn {turn}: {detail}") from None
