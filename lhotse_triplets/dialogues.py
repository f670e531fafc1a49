"""Spoken dialogues as turn cuts: roles, role maps, and the checks every dialogue tool shares.

A dialogue recipe (``deepdialogue``, ``multidialog``, ``instructs2s``) writes **one cut per
turn**: custom ``conversation_id`` and ``turn`` (0-based, contiguous), ``role`` (the corpus's
speaker after the role map, also the supervision's ``speaker``) and ``speaker_id`` (the corpus's
own). The assembler (``export --format duplex``), the ``nemo``/``ttt`` exports, ``curriculum`` and
``validate`` read them through this module.

Example::

    >>> parse_roles("LLM1=user,LLM2=assistant", default={"LLM1": "user"})
    {'LLM1': 'user', 'LLM2': 'assistant'}
    >>> turn_role(cut), is_turn_cut(cut)
    ('user', True)
"""

from collections.abc import Iterable, Mapping
from typing import Any

from lhotse.cut import Cut

from lhotse_triplets import fields

#: The roles the recipes map to by default (NeMo's SALM/duplex spell theirs at export time).
USER, ASSISTANT = "user", "assistant"
#: The roles a role map may produce: an unknown role would silently drop a turn from every export.
ROLES = (USER, ASSISTANT)


#: ``custom["audio_source"]`` of a turn whose audio the corpus lacks (a text-only cut).
MISSING_AUDIO = "missing"
#: How ``custom["audio_source"]`` of a turn spoken by our TTS starts (:func:`synthesized_by`).
SYNTHESIZED = "synthesized"


def synthesized_by(tts: str) -> str:
    """``custom["audio_source"]`` of a turn spoken by the TTS ``tts`` (``synthesized: <tts>``)."""
    return f"{SYNTHESIZED}: {tts}"


def is_text_only(cut: Cut) -> bool:
    """Whether ``cut`` is a turn whose audio the corpus lacks (no recording, counted, kept)."""
    return (cut.custom or {}).get(fields.AUDIO_SOURCE) == MISSING_AUDIO


def parse_pairs(spec: str | Mapping[str, Any], what: str) -> dict[str, str]:
    """``"a=b,c=d"`` (or a mapping) as a dict of stripped strings.

    :raises ValueError: naming ``what`` for a malformed or empty entry.

    Example::

        >>> parse_pairs("human = user, gpt=assistant", "--roles")
        {'human': 'user', 'gpt': 'assistant'}
    """
    if isinstance(spec, Mapping):
        pairs = list(spec.items())
    else:
        pairs = [entry.partition("=")[::2] for entry in str(spec).split(",")]
        if not all("=" in entry for entry in str(spec).split(",")):
            pairs = []
    out = {str(k).strip(): str(v).strip() for k, v in pairs}
    if not out or not all(out) or not all(out.values()):
        raise ValueError(f"{what} {spec!r}: expected NAME=VALUE[,NAME=VALUE...]")
    return out


def parse_roles(
    roles: str | Mapping[str, str] | None, default: Mapping[str, str]
) -> dict[str, str]:
    """The corpus speaker -> role map of ``--roles`` (``"human=user,gpt=assistant"`` or a
    mapping); ``None`` gives ``default``.

    :raises ValueError: for a malformed entry, or a role other than ``user``/``assistant``.

    Example::

        >>> parse_roles("human=assistant, gpt=user", default={})
        {'human': 'assistant', 'gpt': 'user'}
    """
    if roles is None:
        return dict(default)
    role_map = parse_pairs(roles, "--roles")
    bad = sorted(v for v in set(role_map.values()) if v not in ROLES)
    if bad:
        raise ValueError(
            f"--roles {roles!r}: unknown role(s) {', '.join(bad)}; map speakers to "
            f"{' or '.join(ROLES)} (exports name them as the trainer wants)"
        )
    return role_map


def turn_role(cut: Cut) -> str | None:
    """The role of a dialogue turn cut (``None`` for a cut that is not one)."""
    role = (cut.custom or {}).get(fields.ROLE)
    return str(role) if role is not None else None


def is_turn_cut(cut: Cut) -> bool:
    """Whether ``cut`` is one turn of a dialogue recipe (it has a ``role``)."""
    return turn_role(cut) is not None


def turn_number(cut: Cut) -> int:
    """The 0-based turn number of ``cut`` (0 when it has none)."""
    return int((cut.custom or {}).get(fields.TURN) or 0)


def conversation_id(cut: Cut) -> str:
    """The conversation ``cut`` belongs to (its own id when it has no ``conversation_id``)."""
    return str((cut.custom or {}).get(fields.CONVERSATION_ID) or cut.id)


def turn_gaps(turns: Iterable[int]) -> str | None:
    """Why a conversation's turn numbers are not ``0, 1, ..., n-1`` (``None`` when they are).

    Example::

        >>> turn_gaps([1, 2]), turn_gaps([0, 2]), turn_gaps([0, 1, 1]), turn_gaps([1, 0])
        ('no turn 0', 'turn 1 missing', 'turn 1 twice', None)
    """
    numbers = sorted(turns)
    if not numbers or numbers[0] != 0:
        return "no turn 0"
    for expected, (previous, number) in enumerate(zip([-1, *numbers], numbers)):
        if number == previous:
            return f"turn {number} twice"
        if number != expected:
            return f"turn {expected} missing"
    return None


def role_names(spec: str | Mapping[str, Any] | None, default: Mapping[str, str]) -> dict[str, str]:
    """Our role -> the trainer's name for it (``"user=User,assistant=Assistant"`` or a
    mapping) over ``default``; ``None`` gives ``default``.

    :raises ValueError: for a malformed spec or a key that is not one of :data:`ROLES`.

    Example::

        >>> role_names("user=User", default={"user": "user", "assistant": "agent"})
        {'user': 'User', 'assistant': 'agent'}
    """
    names = dict(default)
    if spec is None:
        return names
    given = parse_pairs(spec, "role names")
    bad = sorted(set(given) - set(ROLES))
    if bad:
        raise ValueError(
            f"role names {spec!r}: {', '.join(bad)} is not a role; name {' and '.join(ROLES)}"
        )
    return {**names, **given}
