"""One LLaVA-style row -> its prompt cuts: turns normalised, placeholders split off, image attached.

Rows hold ``{"from": "human"|"gpt", "value"}`` turns (LLaVA's own files) or
``{"role": "user"|"assistant", "content"}`` turns (chat-style dumps, content possibly a list of
``{"type": "text"|"image"}`` parts); a user turn may carry ``"translations": {language: text}``.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from lhotse import MonoCut
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.cuts import make_prompt_cut
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.recipes.llava_instruct.images import image_for_row
from lhotse_triplets.recipes.llava_instruct.sources import Row

#: The stage named in the failures of this recipe.
STAGE = "prepare"
#: Media placeholders removed from user turns (with the spaces and the one newline around them).
PLACEHOLDER_PATTERN = re.compile(r"[ \t]*(<image>|<video>)[ \t]*(?:\r?\n)?")
#: The placeholder that stands for the conversation's image.
IMAGE_PLACEHOLDER = "<image>"
#: Source role names -> ``user`` / ``assistant`` / ``system``.
ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
}

Output = MonoCut | Failure


class _Prompt(NamedTuple):
    """A usable user turn before its image is attached."""

    cut_id: str
    text: str
    custom: dict[str, Any]


def llava_row_to_cuts(
    row: Row,
    *,
    fallback_id: str,
    language: str = "en",
    image_dir: Pathlike | None = None,
    image_output_dir: Pathlike | None = None,
    require_images: bool = False,
    data_source: str | None = None,
    allow_outside: bool = False,
) -> list[Output]:
    """The prompt cuts of one conversation row, and a :class:`Failure` for each unusable item.

    :param row: ``{"id", "conversations", "data_source"?, "image"?|"images"?}``.
    :param fallback_id: conversation id when the row has none (e.g. ``line-7``).
    :param language: ISO 639-1 code of the user text (``supervision.language``).
    :param image_dir: folder in which path-valued images (or ``<id>.<ext>``) are looked up.
    :param image_output_dir: where embedded image bytes are written; in memory when ``None``.
    :param require_images: a conversation without a usable image fails.
    :param data_source: ``custom[fields.DATA_SOURCE]`` when the row has no ``data_source``.
    :param allow_outside: read image paths that resolve outside ``image_dir`` too.

    Example::

        >>> row = {"id": "1", "conversations": [
        ...     {"from": "human", "value": "<image>\\nWhat color is the cube?"},
        ...     {"from": "gpt", "value": "Red."}]}
        >>> [cut.id for cut in llava_row_to_cuts(row, fallback_id="row-0")]
        ['1-t0']
    """
    try:
        conversation_id = row_conversation_id(row, fallback_id)
    except ItemError as e:
        return [Failure.of(fallback_id, STAGE, e)]
    try:
        turns = parse_turns(row.get("conversations"))
    except ItemError as e:
        return [Failure.of(conversation_id, STAGE, e)]
    prompts = _prompts(turns, conversation_id, row.get("data_source") or data_source)
    if all(isinstance(p, Failure) for p in prompts):
        return prompts  # nothing to attach an image to: don't write one
    try:
        image = image_for_row(
            row, conversation_id, image_dir, image_output_dir, require_images, allow_outside
        )
        if image is not None:
            check_placeholders(turns, num_images=1)
    except ItemError as e:
        return [p if isinstance(p, Failure) else Failure.of(p.cut_id, STAGE, e) for p in prompts]
    return [
        p
        if isinstance(p, Failure)
        else make_prompt_cut(p.cut_id, p.text, language, p.custom, image)
        for p in prompts
    ]


def row_conversation_id(row: Row, fallback_id: str) -> str:
    """The row's ``id`` as a string (a string or an integer, kept as it is however odd: files
    named after it go through :func:`~lhotse_triplets.paths.safe_name`), or ``fallback_id`` when
    it has none.

    :raises ItemError: ``invalid_id: ...`` for an id that is not a string or an integer (a JSON
        object, a list, a boolean, a float).

    Example::

        >>> row_conversation_id({"id": 7}, "row-0"), row_conversation_id({}, "row-0")
        ('7', 'row-0')
    """
    value = row.get("id")
    if value is None or value == "":
        return fallback_id
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ItemError(
            f"invalid_id: the id is a {type(value).__name__} ({shown}); ids are strings or integers"
        )
    return str(value)


def check_placeholders(turns: list[dict[str, Any]], num_images: int) -> None:
    """Raise ``placeholder_mismatch`` when the user turns hold more ``<image>`` placeholders than
    the conversation has images (the prompt would speak of images that are not there).

    Example::

        >>> check_placeholders([{"role": "user", "text": "<image> vs <image>?"}], num_images=1)
        Traceback (most recent call last):
        ItemError: placeholder_mismatch: 2 <image> placeholders for 1 image
    """
    count = sum(
        split_placeholders(t["text"])[1].count(IMAGE_PLACEHOLDER)
        for t in turns
        if t["role"] == "user"
    )
    if count > num_images:
        raise ItemError(
            f"placeholder_mismatch: {count} {IMAGE_PLACEHOLDER} placeholders for {num_images} "
            f"image{'s' if num_images != 1 else ''}"
        )


def split_placeholders(text: str) -> tuple[str, list[str]]:
    """``text`` without media placeholders (``<image>``, and the newline after it), and the
    placeholders removed, in order. Leading/trailing whitespace is stripped.

    Example::

        >>> split_placeholders("<image>\\nHow many cubes are there?")
        ('How many cubes are there?', ['<image>'])
    """
    pieces = PLACEHOLDER_PATTERN.split(text)
    out = pieces[0]
    for piece in pieces[2::2]:
        if out and piece and not out[-1].isspace() and not piece[0].isspace():
            out += " "
        out += piece
    return out.strip(), pieces[1::2]


def tidy_text(text: str) -> str:
    """``text`` without placeholders, every run of whitespace turned into one space.

    Example::

        >>> tidy_text("<image>\\nHow many\\n cubes?")
        'How many cubes?'
    """
    return " ".join(split_placeholders(text)[0].split())


def parse_turns(conversations: Any) -> list[dict[str, Any]]:
    """Normalise a conversation to ``[{"role", "text", "translations"}]``.

    Accepts LLaVA's ``{"from", "value"}`` and chat-style ``{"role", "content"}`` turns; content
    given as a list of parts (``{"type": "text"|"image", ...}``) becomes text with ``<image>``.

    :raises ItemError: when the conversation is missing or malformed.

    Example::

        >>> parse_turns([{"from": "human", "value": "Hi?"}])
        [{'role': 'user', 'text': 'Hi?', 'translations': None}]
    """
    if (
        conversations is None
        or isinstance(conversations, (str, bytes, Mapping))
        or not isinstance(conversations, Iterable)
    ):
        raise ItemError(
            f"no_conversations: no conversations list (got {type(conversations).__name__})"
        )
    turns = [_parse_turn(turn, i) for i, turn in enumerate(conversations)]
    if not turns:
        raise ItemError("empty_conversation: the conversations list is empty")
    return turns


def _parse_turn(turn: Any, index: int) -> dict[str, Any]:
    if not isinstance(turn, Mapping):
        raise ItemError(
            f"malformed_turn: turn {index} is not an object (got {type(turn).__name__})"
        )
    role_name = turn.get("role") or turn.get("from")
    role = ROLES.get(str(role_name).lower()) if role_name is not None else None
    if role is None:
        raise ItemError(
            f"unknown_role: turn {index} has role {str(role_name)[:40]!r} (known: {sorted(ROLES)})"
        )
    content = turn.get("content")
    if content is None:
        content = turn.get("value")
    return {
        "role": role,
        "text": _content_text(content, index),
        "translations": _translations(turn.get("translations"), index),
    }


def _prompts(
    turns: list[dict[str, Any]], conversation_id: str, data_source: str | None
) -> list[_Prompt | Failure]:
    """One prompt (or failure) per user turn, with the history before it."""
    system_prompt = "\n".join(t["text"] for t in turns if t["role"] == "system") or None
    turns = [t for t in turns if t["role"] != "system"]
    prompts: list[_Prompt | Failure] = []
    history: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        if turn["role"] == "assistant":
            history.append({"role": "assistant", "text": turn["text"]})
            continue
        user_turn = len(prompts)
        cut_id = f"{conversation_id}-t{user_turn}"
        user_text, placeholders = split_placeholders(turn["text"])
        reply = turns[i + 1] if i + 1 < len(turns) else None
        try:
            _check_turn(turn, user_text, reply)
        except ItemError as e:
            prompts.append(Failure.of(cut_id, STAGE, e))
        else:
            custom: dict[str, Any] = {
                fields.CONVERSATION_ID: conversation_id,
                fields.TURN: user_turn,
                fields.USER_TEXT: user_text,
                fields.PLACEHOLDERS: placeholders,
                fields.ANSWER: reply["text"],
                fields.DATA_SOURCE: data_source,
                fields.HISTORY: [dict(h) for h in history],
            }
            optional = {
                fields.TRANSLATIONS: turn["translations"],
                fields.SYSTEM_PROMPT: system_prompt,
            }
            custom.update((name, value) for name, value in optional.items() if value)
            prompts.append(_Prompt(cut_id, tidy_text(user_text), custom))
        history.append({"role": "user", "text": user_text})
    return prompts


def _check_turn(turn: dict[str, Any], user_text: str, reply: dict[str, Any] | None) -> None:
    """Raise :class:`ItemError` when a user turn (or its reply) cannot make a prompt cut."""
    if not turn["text"].strip():
        raise ItemError("empty_turn: the user turn is empty")
    if not user_text:
        raise ItemError("placeholders_only: the user turn has no text besides placeholders")
    if reply is None or reply["role"] != "assistant":
        raise ItemError("no_reply: the user turn has no assistant reply")
    if not reply["text"].strip():
        raise ItemError("empty_reply: the assistant reply is empty")


def _content_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_part_text(part, index) for part in content)
    raise ItemError(
        f"malformed_turn: turn {index} content is not text (got {type(content).__name__})"
    )


def _part_text(part: Any, index: int) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and part.get("type") == "text":
        return part.get("text") or ""
    if isinstance(part, Mapping) and part.get("type") in ("image", "image_url"):
        return "<image>"
    raise ItemError(f"malformed_turn: turn {index} has an unsupported content part: {part!r}"[:200])


def _translations(value: Any, index: int) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ItemError(
            f"invalid_translations: turn {index} translations must be a {{language: text}} mapping "
            f"(got {type(value).__name__})"
        )
    out = {
        str(lang): tidy_text(text)
        for lang, text in value.items()
        if isinstance(text, str) and text.strip()
    }
    return out or None
