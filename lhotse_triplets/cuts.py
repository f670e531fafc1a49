"""The cuts of this library: prompt cuts made, read and derived (never modified in place).

A *prompt cut* is text only (no recording, zero duration, one supervision carrying the user
text); ``rephrase`` derives one cut per language (id ``{cut.id}-{lang}``) and ``synthesize`` one
per voice (id ``{cut.id}-{voice}``) with the spoken prompt as its recording. The accessors below
read what every stage and export needs from a cut, with the same fallbacks everywhere.

Example::

    cut = make_prompt_cut("clevr_1-t0", "How many cubes are there?", "en", {fields.ANSWER: "3"})
    fr = with_language_text(cut, "fr", "Combien de cubes y a-t-il ?")
    cut_language(fr), fr.id   # ('fr', 'clevr_1-t0-fr')
"""

from typing import Any

from lhotse import MonoCut, Recording, SupervisionSegment
from lhotse.cut import Cut
from lhotse.image import Image
from lhotse.utils import fastcopy

from lhotse_triplets import fields

# --- reading ------------------------------------------------------------------------------------


def cut_language(cut: Cut) -> str:
    """The language of ``cut`` (its first supervision's), ``"und"`` when unknown."""
    sup = cut.supervisions[0] if cut.supervisions else None
    return (sup.language if sup and sup.language else None) or "und"


def cut_voice(cut: Cut) -> str:
    """The voice of ``cut`` (its first supervision's speaker), ``"unknown"`` when unset."""
    sup = cut.supervisions[0] if cut.supervisions else None
    return (sup.speaker if sup and sup.speaker else None) or "unknown"


def cut_text(cut: Cut) -> str | None:
    """The spoken prompt text of ``cut`` (its first supervision's), ``None`` without one."""
    sup = cut.supervisions[0] if cut.supervisions else None
    return sup.text if sup else None


def is_rejected(cut: Cut) -> bool:
    """Whether the quality gate rejected ``cut`` (it has a ``reject_reason``)."""
    return (cut.custom or {}).get(fields.REJECT_REASON) is not None


def is_kept(cut: Cut) -> bool:
    """``True`` for a cut the gate kept (usable with ``CutSet.filter``)."""
    return not is_rejected(cut)


def reject_reasons(cut: Cut) -> list[str]:
    """The gate's reasons for rejecting ``cut`` (``[]`` when kept)."""
    reason = (cut.custom or {}).get(fields.REJECT_REASON)
    return [r.strip() for r in str(reason).split(",") if r.strip()] if reason else []


# --- making -------------------------------------------------------------------------------------


def make_prompt_cut(
    cut_id: str,
    text: str,
    language: str,
    custom: dict[str, Any],
    image: Image | None = None,
) -> MonoCut:
    """A text-only prompt cut: no recording, zero duration, one supervision carrying ``text``.

    Example::

        >>> cut = make_prompt_cut("000000-t0", "How many cubes are there?", "en", {})
    """
    custom = dict(custom)
    if image is not None:
        custom[fields.IMAGE] = image
    return MonoCut(
        id=cut_id,
        start=0,
        duration=0.0,
        channel=0,
        recording=None,
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


# --- deriving (copy on write) -------------------------------------------------------------------


def with_custom(cut: Cut, **values: Any) -> Cut:
    """A copy of ``cut`` with custom fields set (the input cut is not modified)."""
    custom: dict[str, Any] = dict(cut.custom or {})
    custom.update(values)
    return fastcopy(cut, custom=custom)


def with_language_text(cut: Cut, language: str, text: str) -> Cut:
    """A copy of a prompt cut for one language: id ``{cut.id}-{language}``, supervision text set."""
    new_id = f"{cut.id}-{language}"
    sup = fastcopy(
        cut.supervisions[0], id=new_id, recording_id=new_id, text=text, language=language
    )
    return fastcopy(cut, id=new_id, supervisions=[sup], custom=dict(cut.custom or {}))


def with_audio(cut: Cut, voice: str, recording: Recording, **custom: Any) -> Cut:
    """A copy of a language cut spoken by ``voice``: id ``{cut.id}-{voice}``, audio attached."""
    new_id = recording.id
    sup = fastcopy(
        cut.supervisions[0],
        id=new_id,
        recording_id=new_id,
        start=0.0,
        duration=recording.duration,
        speaker=voice,
    )
    merged = dict(cut.custom or {})
    merged.update(custom)
    return fastcopy(
        cut,
        id=new_id,
        start=0.0,
        duration=recording.duration,
        channel=0,
        recording=recording,
        supervisions=[sup],
        custom=merged,
    )
