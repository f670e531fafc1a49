"""Copy-on-write helpers that derive new cuts (ids, texts, audio) from prompt cuts."""

from typing import Any

from lhotse import Recording
from lhotse.cut import Cut
from lhotse.utils import fastcopy


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
