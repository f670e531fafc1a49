"""The offline default rephraser: deterministic, meaning-preserving spoken-style rewrites.

English gets rule-based rewrites, chosen after reading the 1,000 reference CLEVR conversations
and LLaVA's instruction lists:

- whole-instruction templates for written forms people do not say ("Provide a one-sentence
  caption for the provided image." -> "Can you describe this picture in one sentence?";
  "The large rubber ball is what color?" -> "What color is the large rubber ball?";
  "What number of cubes ..." -> "How many cubes ..."; "Hint: ... Question: ..." -> the question);
- the answer-format suffixes ("...?Answer the question using a single word or phrase.") said as
  a person would ("Just answer with a word or a short phrase."), in a few deterministic variants;
- multiple-choice options read out, formal imperatives turned into requests ("Describe X." ->
  "Can you describe X?"), semicolons into sentence breaks, "left of" into "to the left of";
- contractions ("What is" -> "What's"), and numbers and symbols in words for TTS.

Other languages come from supplied translations (``fields.TRANSLATIONS``), cleaned lightly
(placeholders removed, typography, numbers in words where that is safe); without one the item has
no rewrite (``None``) and the stage records it.
"""

import re
import zlib
from collections.abc import Sequence
from typing import ClassVar

from lhotse_triplets.backends.registry import register
from lhotse_triplets.rephrasing.spoken import clean_supplied, remove_placeholders, verbalize

#: Answer-format instructions appended to questions (CLEVR/LLaVA), said in spoken style.
_SHORT_ANSWER = re.compile(
    r"\s*(?:answer the question using a single word or phrase|reply using only a word or a "
    r"phrase|give your answer in one word or a phrase|provide a single-word or phrase answer|"
    r"respond with just one word or a short phrase|answer concisely with one word or phrase|"
    r"answer with a (?:single )?word or (?:a )?(?:short )?phrase)\.?$",
    re.IGNORECASE,
)
_SHORT_ANSWER_SPOKEN = (
    "Just answer with a word or a short phrase.",
    "Please answer with a single word or a short phrase.",
    "A single word or a short phrase is enough.",
)
_OPTION_LETTER = re.compile(
    r"\s*answer with the option'?s letter from the given choices directly\.?$", re.IGNORECASE
)
_OPTION_LETTER_SPOKEN = "Just tell me the letter of the right option."
_HINT = re.compile(
    r"^hint: please answer the question and provide the final answer at the end\.?\s*"
    r"question:\s*(.+)$",
    re.IGNORECASE,
)
_HINT_SPOKEN = "Please work it out and give me the final answer at the end."
_OPTIONS = re.compile(r"\s*(?:options|choices):\s*(.+)$", re.IGNORECASE)
_OPTION_ITEM = re.compile(r"(?:^|\s)\(?([A-H])[.)]\s+")

_IMAGE = r"(?:image|picture|photo|photograph)"
_THE_IMAGE = (
    r"(?:the|this) (?:given |provided |presented |displayed |following |shown )?"
    + _IMAGE
    + r"(?: provided| shown| presented| you see| before you)?"
)
# (pattern, replacement) on the whole main text, first match wins.
_TEMPLATES = [
    (
        rf"^provide a one[- ]sentence caption for {_THE_IMAGE}\.?$",
        "Can you describe this picture in one sentence?",
    ),
    (
        rf"^(?:please )?describe {_THE_IMAGE} (?:concisely|briefly)\.?$",
        "Can you briefly describe this picture?",
    ),
    (
        rf"^(?:please )?describe {_THE_IMAGE} in detail\.?$",
        "Can you describe this picture in detail?",
    ),
    (
        rf"^(?:provide|give|offer|share|write|render|present|create|relay|generate|produce) "
        rf"(an?) ([\w ,'-]+?) (?:of|for|about|representing) {_THE_IMAGE}\.?$",
        r"Can you give me \1 \2 of this picture?",
    ),
    (
        rf"^summari[sz]e the (?:visual )?content of {_THE_IMAGE}\.?$",
        "Can you sum up what's in this picture?",
    ),
    (r"^what is the (colou?r|shape|size) of (.+)\?$", r"What \1 is \2?"),
    (r"^what is the material of (.+)\?$", r"What's \1 made of?"),
    (r"^(?:the|an?) (.+) is made of what material\?$", r"What material is the \1 made of?"),
    (r"^(?:the|an?) (.+) (is|are) what (colou?r|shape|size|material)\?$", r"What \3 \2 the \1?"),
    (
        r"^(?:the|an?) (.+) (?:has) what (colou?r|shape|size|material)\?$",
        r"What \2 does the \1 have?",
    ),
    (r"^is the number of (.+?) greater than the number of (.+)\?$", r"Are there more \1 than \2?"),
    (
        r"^is the number of (.+?) (?:less|smaller) than the number of (.+)\?$",
        r"Are there fewer \1 than \2?",
    ),
    (r"^is the number of (.+?) the same as the number of (.+)\?$", r"Are there as many \1 as \2?"),
    (
        r"^(?:please )?(describe|list|name|identify|explain|count|compare|find|locate|"
        r"analy[sz]e|examine|summari[sz]e) ([^.?!]+)\.$",
        r"Can you \1 \2?",
    ),
]
_TEMPLATES_C = [(re.compile(p, re.IGNORECASE), r) for p, r in _TEMPLATES]

# Phrase-level rewrites applied everywhere.
_PHRASES = [
    (r"\bwhat number of\b", "how many"),
    (rf"\b{_THE_IMAGE}\b", "this picture"),
    (r"\bin the image\b", "in the picture"),
    (r"(?<!the )\b(left|right) of\b", r"to the \1 of"),
    (r"\be\.g\.,?", "for example"),
    (r"\bi\.e\.,?", "that is"),
    (r"\betc\.", "and so on"),
    (r"\bvs\.?(?=\s)", "versus"),
    (r"\s*@\s*", " at "),
]
_PHRASES_C = [(re.compile(p, re.IGNORECASE), r) for p, r in _PHRASES]

_CONTRACTIONS = [
    (r"\b(what|there|that|it|who|where|how|here)\s+is\b(?=\s+[\w'])", r"\1's"),
    (r"\bis not\b", "isn't"),
    (r"\bare not\b", "aren't"),
    (r"\bdoes not\b", "doesn't"),
    (r"\bdo not\b", "don't"),
    (r"\bcan ?not\b", "can't"),
    (r"\bwill not\b", "won't"),
]
_CONTRACTIONS_C = [(re.compile(p, re.IGNORECASE), r) for p, r in _CONTRACTIONS]


def _keep_case(replacement: str, original: str) -> str:
    return replacement[:1].upper() + replacement[1:] if original[:1].isupper() else replacement


def _sub(pattern: re.Pattern, repl: str, text: str) -> str:
    return pattern.sub(lambda m: _keep_case(m.expand(repl), m.group(0)), text)


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _variant(text: str, variants: Sequence[str]) -> str:
    return variants[zlib.crc32(text.encode("utf-8")) % len(variants)]


def _options(text: str) -> str:
    """``"Which? Options: A. red B. blue"`` -> ``"Which? The options are A: red, or B: blue."``"""
    m = _OPTIONS.search(text)
    if not m:
        return text
    parts = _OPTION_ITEM.split(" " + m.group(1))
    items = [(parts[i], parts[i + 1].strip().rstrip(".;,")) for i in range(1, len(parts) - 1, 2)]
    if len(items) < 2:
        return text
    said = ", ".join(f"{letter}: {option}" for letter, option in items[:-1])
    said += f", or {items[-1][0]}: {items[-1][1]}."
    return text[: m.start()].rstrip() + " The options are " + said


def spoken_english(text: str) -> str:
    """Spoken-style English for ``text`` (deterministic; content words untouched).

    Example::

        >>> spoken_english("The large rubber ball is what color?")
        'What color is the large rubber ball?'
    """
    out = remove_placeholders(text)
    if m := _HINT.match(out):
        out = f"{m.group(1).strip()} {_HINT_SPOKEN}"
    suffix = ""
    if m := _SHORT_ANSWER.search(out):
        suffix, out = _variant(out, _SHORT_ANSWER_SPOKEN), out[: m.start()]
    elif m := _OPTION_LETTER.search(out):
        suffix, out = _OPTION_LETTER_SPOKEN, out[: m.start()]
    out = _options(out.strip())
    for pattern, repl in _TEMPLATES_C:
        new = _sub(pattern, repl, out)
        if new != out:
            out = new
            break
    out = re.sub(r"^Can you (\w)", lambda m: "Can you " + m.group(1).lower(), out)
    for pattern, repl in _PHRASES_C:
        out = _sub(pattern, repl, out)
    # A semicolon between clauses is a sentence break when spoken.
    out = re.sub(r"\s*;\s+(\w)", lambda m: ". " + m.group(1).upper(), out)
    for pattern, repl in _CONTRACTIONS_C:
        out = _sub(pattern, repl, out)
    out = verbalize(out, "en")
    out = _capitalize(" ".join(out.split()))
    if suffix:
        out = f"{out} {suffix}"
    return out


@register("llm", "rules")
class RuleRephraser:
    """Rule-based English rewrites; other languages from supplied translations.

    Deterministic and instant, so never cached.

    Example::

        >>> RuleRephraser().rephrase(["What number of cubes are there?"], language="en",
        ...                          source_language="en")
        ['How many cubes are there?']
    """

    requires: ClassVar[list[tuple[str, str]]] = [("num2words", "num2words")]
    #: The stage's cache is for slow backends only.
    cacheable = False

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
            candidate = text if language == source_language else supplied.get(language)
            if candidate is None or not str(candidate).strip():
                out.append(None)
            elif language == "en":
                out.append(spoken_english(candidate))
            else:
                out.append(clean_supplied(candidate, language))
        return out

    def fingerprint(self) -> str:
        return "rules"
