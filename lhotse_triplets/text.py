"""Whether a text can be spoken, and how long a prompt or answer may be: reasons shared by every
recipe and stage that turns text into speech or training targets.

Each check returns ``None`` (fine) or a failure reason ``"<code>: <detail>"`` whose code names the
problem for ``failed.jsonl`` and summaries:

- ``control_characters``: control characters other than tab / newline (``\\x07``, ``\\x00``...);
- ``no_speakable_text``: no letter or digit at all (empty, zero-width-only, emoji-only, dots);
- ``wrong_script``: letters mostly in another script than the language's (Latin for en/fr/de...,
  kana with kanji for ja, Han without kana for zh; other languages are not checked);
- ``prompt_too_long`` / ``answer_too_long``: longer than the configured cap, in characters.

Example::

    >>> unspeakable_reason("\\u200b\\u200b", "en")
    'no_speakable_text: no letter or digit in 2 characters'
    >>> unspeakable_reason("What colour is the cube?", "ja")
    'wrong_script: 0% Japanese (kana/kanji) letters'
"""

import unicodedata

from lhotse_triplets.rephrasing.checks import LATIN_LANGUAGES, script_counts

#: Default cap on a prompt's characters (about a minute of speech).
MAX_PROMPT_CHARS = 1000
#: Default cap on an answer's characters.
MAX_ANSWER_CHARS = 20000
#: Share of letters that must be in the language's script.
MIN_SCRIPT_SHARE = 0.5
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def control_characters_reason(text: str) -> str | None:
    """``control_characters: ...`` when ``text`` holds control characters (not tab/newline)."""
    bad = sorted(
        {c for c in text if unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS}
    )
    if not bad:
        return None
    shown = ", ".join(f"U+{ord(c):04X}" for c in bad[:5])
    return f"control_characters: {shown}"


def speakable_chars(text: str) -> int:
    """Letters and digits in ``text`` (what a TTS engine can say)."""
    return sum(1 for c in text if unicodedata.category(c)[0] in "LN")


def script_reason(text: str, language: str) -> str | None:
    """``wrong_script: ...`` when most letters of ``text`` are not in ``language``'s script."""
    lang = language.split("-")[0].lower()
    counts = script_counts(text)
    letters = sum(counts.values())
    if letters == 0:
        return None
    if lang in LATIN_LANGUAGES:
        share, script = counts["latin"] / letters, "Latin"
    elif lang == "ja":
        share, script = (counts["kana"] + counts["han"]) / letters, "Japanese (kana/kanji)"
    elif lang == "zh":
        if counts["kana"]:  # kana never writes Chinese: this is Japanese
            return f"wrong_script: {counts['kana']} kana in Chinese"
        share, script = counts["han"] / letters, "Chinese (Han)"
    else:
        return None
    if share < MIN_SCRIPT_SHARE:
        return f"wrong_script: {share:.0%} {script} letters"
    return None


def unspeakable_reason(text: str, language: str | None = None) -> str | None:
    """Why ``text`` cannot be spoken as ``language`` (control characters, nothing to say, another
    script), or ``None`` when it can."""
    reason = control_characters_reason(text)
    if reason is not None:
        return reason
    if speakable_chars(text) == 0:
        return f"no_speakable_text: no letter or digit in {len(text)} characters"
    return script_reason(text, language) if language else None


def length_reason(text: str, limit: int | None, code: str = "prompt_too_long") -> str | None:
    """``<code>: N characters > limit`` when ``text`` exceeds ``limit`` (``None``: no cap)."""
    if limit is not None and len(text) > limit:
        return f"{code}: {len(text)} characters > {limit}"
    return None
