"""MultiDialog metadata rows -> one cut per turn, grouped by conversation.

A row (one line of ``metadata/<split>/<split>_metadata_NNNN.jsonl``, or one row of a local HF
dataset) is ``{"file_name", "conv_id", "utterance_id", "from", "value", "emotion",
"original_full_path"}``. A conversation's rows become cuts with id ``<conv_id>-t<turn>`` only
when they are whole: turns ``0..n-1`` each once. Otherwise the conversation fails
(``turn_gap``, ``duplicate_turn``, or ``incomplete_conversation`` naming the turn that failed),
so every conversation written has turn 0 and contiguous turns.

Example::

    >>> conversations, failures = gather(snapshot_rows(metadata), DEFAULT_ROLES)
    >>> outputs = conversation_cuts(conversations["t_0a1b"], options)
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lhotse import MonoCut
from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.dialogues import ASSISTANT, USER
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.recipes.multidialog.audio import STAGE, AudioStore, member_stem, parse_stem
from lhotse_triplets.recipes.utils import (
    TURN_SAMPLING_RATE,
    check_cut_text,
    turn_cut,
)

#: Default role mapping: MultiDialog's ``from`` -> the role (``supervision.speaker``).
DEFAULT_ROLES = {"human": USER, "gpt": ASSISTANT}
#: The rate every turn is read at (resampled on load when the file has another).
SAMPLING_RATE = TURN_SAMPLING_RATE
_REQUIRED = ("conv_id", "utterance_id", "from", "value")


@dataclass(frozen=True)
class Turn:
    """One parsed metadata row."""

    conv_id: str
    utterance_id: int
    speaker: str
    text: str
    emotion: str | None
    stem: str


def parse_row(row: Any, roles: Mapping[str, str]) -> Turn:
    """A metadata row as a :class:`Turn`.

    :raises ItemError: ``not_an_object``, ``missing_field``, ``invalid_id``,
        ``invalid_utterance_id``, ``unknown_role``, ``invalid_text``, ``unsafe_member``.
    """
    if not isinstance(row, Mapping):
        raise ItemError(f"not_an_object: a row is a {type(row).__name__}")
    missing = [key for key in _REQUIRED if row.get(key) is None]
    if missing:
        raise ItemError(f"missing_field: {', '.join(missing)}")
    conv_id, utterance_id = row["conv_id"], row["utterance_id"]
    if not isinstance(conv_id, str) or not conv_id.strip():
        raise ItemError(f"invalid_id: conv_id {str(conv_id)[:100]!r}")
    if isinstance(utterance_id, bool) or not isinstance(utterance_id, int) or utterance_id < 0:
        raise ItemError(f"invalid_utterance_id: {str(utterance_id)[:100]!r}")
    if row["from"] not in roles:
        raise ItemError(f"unknown_role: {str(row['from'])[:50]!r} (known: {sorted(roles)})")
    if not isinstance(row["value"], str):
        raise ItemError(f"invalid_text: value is a {type(row['value']).__name__}")
    file_name = row.get("file_name")
    stem = member_stem(file_name) if isinstance(file_name, str) and file_name else ""
    emotion = row.get("emotion")
    return Turn(
        conv_id=conv_id,
        utterance_id=utterance_id,
        speaker=roles[row["from"]],
        text=row["value"].strip(),
        emotion=str(emotion) if emotion is not None else None,
        stem=stem or f"{conv_id}_{utterance_id}",
    )


def row_id(row: Any, fallback: str) -> str:
    """The id a failed row is recorded under: ``<conv_id>-u<utterance_id>`` when it has them."""
    if isinstance(row, Mapping) and isinstance(row.get("conv_id"), str):
        return f"{row['conv_id']}-u{row.get('utterance_id')}"
    return fallback


class Conversation:
    """The turns of one conversation, gathered from rows in any order."""

    def __init__(self, conv_id: str) -> None:
        self.conv_id = conv_id
        self.turns: dict[int, Turn] = {}
        self.failures: list[Failure] = []

    def add(self, turn: Turn) -> None:
        if turn.utterance_id in self.turns:
            reason = f"duplicate_turn: utterance {turn.utterance_id} given twice"
            self.failures.append(Failure(f"{self.conv_id}-u{turn.utterance_id}", STAGE, reason))
            return
        self.turns[turn.utterance_id] = turn

    def fail(self, reason: str) -> None:
        """Drop the whole conversation (one of its rows could not be used)."""
        self.failures.append(Failure(self.conv_id, STAGE, reason))

    def gap(self) -> str | None:
        """Why the turns are not ``0..n-1``, or ``None``."""
        ids = sorted(self.turns)
        if ids == list(range(len(ids))):
            return None
        missing = sorted(set(range(ids[-1] + 1)) - set(ids)) if ids else []
        return f"turn_gap: utterance ids {ids[:20]} miss {missing[:20]}"


@dataclass
class TurnOptions:
    """What every turn cut of a run shares."""

    split: str
    language: str
    store: AudioStore
    max_prompt_chars: int | None
    max_answer_chars: int | None


def conversation_cuts(conversation: Conversation, options: TurnOptions) -> list[Cut | Failure]:
    """The turn cuts of a conversation, or its failures (the whole conversation is dropped)."""
    failures = list(conversation.failures)
    gap = conversation.gap()
    if gap is not None and not failures:
        failures.append(Failure(conversation.conv_id, STAGE, gap))
    if failures:
        return failures
    try:
        cuts = [
            make_turn_cut(conversation.turns[i], options) for i in range(len(conversation.turns))
        ]
    except ItemError as e:
        return [Failure.of(conversation.conv_id, STAGE, e)]
    for cut in cuts:
        reason = check_cut_text(cut, options.max_prompt_chars, options.max_answer_chars)
        if reason is not None:
            detail = f"incomplete_conversation: turn {cut.custom[fields.TURN]} failed ({reason})"
            return [Failure(cut.id, STAGE, reason), Failure(conversation.conv_id, STAGE, detail)]
    return cuts


def make_turn_cut(turn: Turn, options: TurnOptions) -> MonoCut:
    """One turn as a cut: its audio at 16 kHz mono (channel 0), or text only when missing."""
    cut_id = f"{turn.conv_id}-t{turn.utterance_id}"
    parsed = parse_stem(turn.stem)
    custom = {
        fields.CONVERSATION_ID: turn.conv_id,
        fields.TURN: turn.utterance_id,
        fields.SPEAKER_ID: parsed[2] if parsed else None,
        fields.EMOTION: turn.emotion,
        fields.SPLIT: options.split,
    }
    return turn_cut(
        cut_id,
        text=turn.text,
        language=options.language,
        role=turn.speaker,
        custom=custom,
        recording=options.store.recording(cut_id, turn.stem),
    )


def gather(
    rows: Iterator[tuple[str, Any]], roles: Mapping[str, str]
) -> tuple[dict[str, Conversation], list[Failure]]:
    """Group rows (``(fallback id, row or ItemError)``) by conversation; rows that fail apart."""
    conversations: dict[str, Conversation] = {}
    failures: list[Failure] = []
    for fallback, row in rows:
        if isinstance(row, ItemError):
            failures.append(Failure.of(fallback, STAGE, row))
            continue
        try:
            turn = parse_row(row, roles)
        except ItemError as e:
            failures.append(Failure.of(row_id(row, fallback), STAGE, e))
            conv_id = row.get("conv_id") if isinstance(row, Mapping) else None
            if isinstance(conv_id, str):
                conversation = conversations.setdefault(conv_id, Conversation(conv_id))
                conversation.fail(f"incomplete_conversation: a row failed ({e.reason[:200]})")
            continue
        conversations.setdefault(turn.conv_id, Conversation(turn.conv_id)).add(turn)
    return conversations, failures
