"""In-memory prompt cuts for tests, shaped exactly like the recipes' output."""

from lhotse import CutSet, MonoCut

from lhotse_triplets import fields
from lhotse_triplets.cuts import make_prompt_cut


def prompt_cut(
    conversation_id: str,
    text: str,
    answer: str,
    turn: int = 0,
    language: str = "en",
    translations: dict[str, str] | None = None,
) -> MonoCut:
    """A text-only prompt cut (id ``{conversation_id}-t{turn}``) as ``prepare`` makes it."""
    cut_id = f"{conversation_id}-t{turn}"
    custom = {
        fields.CONVERSATION_ID: conversation_id,
        fields.TURN: turn,
        fields.USER_TEXT: text,
        fields.PLACEHOLDERS: ["<image>"],
        fields.ANSWER: answer,
        fields.HISTORY: [],
    }
    if translations:
        custom[fields.TRANSLATIONS] = dict(translations)
    return make_prompt_cut(cut_id, text, language, custom)


def dummy_prompt_cuts(n: int = 4, languages: list[str] = ("fr", "de")) -> CutSet:
    """``n`` prompt cuts with translations into ``languages``."""
    return CutSet.from_cuts(
        prompt_cut(
            f"{i:06d}",
            f"How many red objects are there in picture {i}?",
            f"There are {i} red objects.\n\nThat is all.",
            translations={lang: f"[{lang}] question {i}" for lang in languages},
        )
        for i in range(n)
    )
