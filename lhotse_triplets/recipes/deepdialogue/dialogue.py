"""One DeepDialogue dialogue (its JSON and its segment wavs) into one cut per turn.

A dialogue is ``data/<model_dir>/<name>.json`` with its audio in ``data/<model_dir>/<name>/``:
``segments/NNN_<speaker>_<emotion>.wav`` per turn (``NNN`` 1-based, zero-padded). Its
conversation id is ``<model_dir>/<name>`` (the same name appears under several model folders).

Example::

    >>> dialogue = Dialogue(Path("data/dialogues_llama3-70B/music_78_8.json"))
    >>> dialogue.conversation_id
    'dialogues_llama3-70B/music_78_8'
    >>> outputs = dialogue_to_cuts(dialogue, roles=DEFAULT_ROLES, split="train")
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.dialogues import ASSISTANT, MISSING_AUDIO, USER
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.recipes.utils import (
    STAGE,
    Output,
    check_cut_text,
    turn_cut,
    turn_recording,
)

#: The corpus's speakers mapped to roles (``supervision.speaker``) unless ``roles`` says otherwise.
DEFAULT_ROLES: Mapping[str, str] = {"LLM1": USER, "LLM2": ASSISTANT}
#: ``custom[fields.AUDIO_SOURCE]`` of a turn whose segment wav is missing (a text-only cut).
MISSING = MISSING_AUDIO
#: A segment file name: ``NNN_<speaker>_<RAVDESS emotion>.wav``.
SEGMENT_NAME = re.compile(r"(?P<number>\d+)_(?P<speaker>[^_]+)_(?P<emotion>[^.]+)\.wav")


@dataclass(frozen=True)
class Segment:
    """The wav of one turn: its path and what its name says (speaker, synthesis emotion)."""

    path: Path
    speaker: str
    emotion: str


@dataclass(frozen=True)
class Dialogue:
    """A dialogue JSON file of a snapshot's ``data/<model_dir>/`` folder."""

    json_path: Path

    @property
    def model_dir(self) -> str:
        return self.json_path.parent.name

    @property
    def conversation_id(self) -> str:
        """``<model_dir>/<name>``: unique across model folders, the same on every run."""
        return f"{self.model_dir}/{self.json_path.stem}"

    @property
    def segments_dir(self) -> Path:
        return self.json_path.parent / self.json_path.stem / "segments"


def turn_id(conversation_id: str, turn: int) -> str:
    """The cut id of a turn: ``<conversation_id>-t<turn>`` (``turn`` 0-based)."""
    return f"{conversation_id}-t{turn}"


def dialogue_to_cuts(
    dialogue: Dialogue,
    *,
    roles: Mapping[str, str],
    split: str,
    language: str = "en",
    sampling_rate: int = 16000,
    max_chars: int | None = None,
) -> list[Output]:
    """The turn cuts of ``dialogue``, or one :class:`Failure` naming why it cannot be used.

    A dialogue is used whole or not at all (its turns stay contiguous): a malformed file or turn,
    an unknown speaker, a segment whose speaker differs from the turn's, an unreadable wav or a
    text failing :func:`~lhotse_triplets.recipes.utils.check_cut_text` fails the dialogue. A turn
    without a segment wav is kept as a text-only cut (``custom[fields.AUDIO_SOURCE] ==
    "missing"``).
    """
    try:
        data = _read_json(dialogue.json_path)
        segments = _segments(dialogue.segments_dir)
        cuts = [
            _turn_cut(
                dialogue,
                turn,
                item,
                data,
                segment=segments.get(turn + 1),
                roles=roles,
                split=split,
                language=language,
                sampling_rate=sampling_rate,
            )
            for turn, item in enumerate(_turns(data))
        ]
        _check_texts(cuts, max_chars)
    except ItemError as e:
        return [Failure.of(dialogue.conversation_id, STAGE, e)]
    return cuts


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise ItemError(f"invalid_utf8: {path.name}: {e.reason} at byte {e.start}") from None
    except ValueError as e:
        raise ItemError(f"invalid_json: {path.name}: {e}") from None
    except OSError as e:
        raise ItemError(f"unreadable_file: {path.name}: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise ItemError(f"malformed_dialogue: {path.name} holds a {type(data).__name__}")
    return data


def _turns(data: dict[str, Any]) -> list[dict[str, Any]]:
    turns = data.get("conversation")
    if not isinstance(turns, list):
        raise ItemError(f"malformed_dialogue: 'conversation' is {type(turns).__name__}, not a list")
    if not turns:
        raise ItemError("empty_conversation: 'conversation' has no turns")
    for number, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("text"), str):
            raise ItemError(f"malformed_turn: turn {number} has no 'text' string")
    return turns


def _segments(folder: Path) -> dict[int, Segment]:
    """The segment wavs of a dialogue by 1-based turn number (none when the folder is absent)."""
    if not folder.is_dir():
        return {}
    found: dict[int, Segment] = {}
    for path in sorted(folder.iterdir()):
        match = SEGMENT_NAME.fullmatch(path.name)
        if match is None:
            continue
        number = int(match["number"])
        if number in found:
            raise ItemError(
                f"ambiguous_segment: {found[number].path.name} and {path.name} are both turn "
                f"{number}"
            )
        found[number] = Segment(path, match["speaker"], match["emotion"])
    return found


def _turn_cut(
    dialogue: Dialogue,
    turn: int,
    item: dict[str, Any],
    data: dict[str, Any],
    *,
    segment: Segment | None,
    roles: Mapping[str, str],
    split: str,
    language: str,
    sampling_rate: int,
) -> Cut:
    speaker = str(item.get("speaker"))
    if speaker not in roles:
        raise ItemError(
            f"unknown_speaker: turn {turn} speaker {speaker[:40]!r}; roles map "
            f"{', '.join(sorted(roles))} (--roles)"
        )
    if not item["text"].strip():
        raise ItemError(f"empty_turn: turn {turn} has no text")
    cut_id = turn_id(dialogue.conversation_id, turn)
    custom = {
        fields.CONVERSATION_ID: dialogue.conversation_id,
        fields.TURN: turn,
        fields.SPEAKER_ID: speaker,
        fields.EMOTION: item.get("emotion"),
        fields.DOMAIN: data.get("domain"),
        fields.GENERATED_BY: [data.get("model1"), data.get("model2")],
        fields.SPLIT: split,
    }
    recording = None
    if segment is not None:
        if segment.speaker != speaker:
            raise ItemError(
                f"speaker_mismatch: turn {turn} is {speaker!r} in the JSON, "
                f"{segment.speaker!r} in {segment.path.name}"
            )
        custom[fields.AUDIO_EMOTION] = segment.emotion
        recording = turn_recording(segment.path, cut_id, sampling_rate=sampling_rate)
    return turn_cut(
        cut_id,
        text=item["text"].strip(),
        language=language,
        role=roles[speaker],
        custom=custom,
        recording=recording,
    )


def _check_texts(cuts: list[Cut], max_chars: int | None) -> None:
    """``ItemError`` naming the first turn whose text fails the inherited text checks."""
    for cut in cuts:
        reason = check_cut_text(cut, max_chars, None)
        if reason is not None:
            code, detail = reason.split(": ", 1)
            raise ItemError(f"{code}: turn {cut.custom[fields.TURN]}: {detail}")
