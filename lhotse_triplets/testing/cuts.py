"""In-memory prompt cuts for tests, shaped exactly like the recipes' output."""

from lhotse import CutSet, MonoCut, SupervisionSegment

from lhotse_triplets import fields


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
    return MonoCut(
        id=cut_id,
        start=0.0,
        duration=0.0,
        channel=0,
        supervisions=[
            SupervisionSegment(
                id=cut_id,
                recording_id=cut_id,
                start=0.0,
                duration=0.0,
                text=text,
                language=language,
            )
        ],
        custom=custom,
    )


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
