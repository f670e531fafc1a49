"""The offline default rephraser: deterministic, meaning-preserving spoken-style rewrites.

English text gets rule-based rewrites (written instructions said as a person would ask, symbols
verbalised, whitespace tidied). Other languages come from supplied translations
(``fields.TRANSLATIONS``); without one, the item has no rewrite (``None``) and the stage records it.
"""

import re
from collections.abc import Sequence

from lhotse_triplets.backends.registry import register

# (pattern, replacement): whole-instruction templates first, then phrase-level rewrites.
_EN_RULES = [
    (
        r"^provide a one[- ]sentence caption for the (?:provided|given) image\.?$",
        "Can you describe this picture in one sentence?",
    ),
    (r"^describe (?:the|this) image concisely\.?$", "Can you briefly describe this picture?"),
    (
        r"^(?:please )?describe (?:the|this) image in detail\.?$",
        "Can you describe this picture in detail?",
    ),
    (
        r"^provide a short description of (?:the|this) (?:image|picture)\.?$",
        "Can you give me a short description of this picture?",
    ),
    (
        r"\s*answer the question using a single word or phrase\.?$",
        " Just answer with a word or a short phrase.",
    ),
    (
        r"\s*answer with the option'?s letter from the given choices directly\.?$",
        " Just tell me the letter of the right option.",
    ),
    (r"\bthe (?:provided|given) (?:image|picture)\b", "this picture"),
    (r"\bin the image\b", "in the picture"),
    (r"\s*&\s*", " and "),
    (r"(\d)\s*%", r"\1 percent"),
    (r"\s+=\s+", " equals "),
    (r"\s*@\s*", " at "),
    (r"\be\.g\.,?", "for example"),
    (r"\bi\.e\.,?", "that is"),
    (r"\betc\.", "and so on"),
]
_COMPILED = [(re.compile(p, re.IGNORECASE), r) for p, r in _EN_RULES]


def spoken_english(text: str) -> str:
    """Spoken-style English for ``text`` (deterministic; content words untouched)."""
    out = " ".join(text.split())
    for pattern, repl in _COMPILED:
        out = pattern.sub(repl, out)
    out = " ".join(out.split())
    if out and out[0].islower():
        out = out[0].upper() + out[1:]
    return out


@register("llm", "rules")
class RuleRephraser:
    """Rule-based English rewrites; other languages from supplied translations."""

    requires: list = []

    def rephrase(
        self,
        texts: Sequence[str],
        *,
        language: str,
        source_language: str,
        contexts: Sequence[str | None] = (),
        translations: Sequence[dict | None] = (),
    ) -> list[str | None]:
        out: list[str | None] = []
        for i, text in enumerate(texts):
            supplied = (translations[i] if i < len(translations) else None) or {}
            if language == source_language:
                candidate = text
            else:
                candidate = supplied.get(language)
            if candidate is None:
                out.append(None)
            elif language == "en":
                out.append(spoken_english(candidate))
            else:
                out.append(" ".join(candidate.split()))
        return out
