r"""Validation of every rewrite the rephrase stage makes.

Each check is a small function ``check(item) -> reason | None`` on a :class:`RewriteItem`; a
reason is ``"key"`` or ``"key: detail"`` (the key is what summaries count). The meaning check
needs sentence embeddings and runs batched, last, on the items that passed the cheap checks.

Checks (reason keys):

- ``empty``, ``unprintable``, ``multi_line``: nothing said, control characters or invalid
  bytes (decoding garbage), or more than one line;
- ``preamble``: "Sure, here is...", "Rewritten:", "Voici...", "以下は..." (and not in the source);
- ``quotes_or_markdown``: the whole rewrite in quotes, or ``**``, backticks, ``#``, list bullets;
- ``meta_text``: words of the rephrasing instructions leak into it ("rephrase", "spoken style");
- ``placeholder``: a placeholder (``<image>``...) of the source missing, or one added;
- ``wrong_script``: Latin for en/fr/de/es/it, kana (with kanji) for ja, Han without kana for zh;
- ``wrong_language``: a Latin-script rewrite whose function words are another language's;
- ``length_ratio``: far shorter or longer than the source (per-language length units);
- ``not_a_question``: the source asks or requests something and the rewrite does not;
- ``contains_answer``: the rewrite contains the assistant's answer (and the source does not),
  or answers with yes/no;
- ``obeys_injection``: the source carries an injection ("ignore previous instructions...") and
  the rewrite dropped it or did what it says, instead of rewriting it as data;
- ``low_similarity``: multilingual similarity of rewrite and source below the threshold.

Example::

    >>> item = RewriteItem("What color is the cube?", "Sure! Here it is:\nWhat color?", "en", "en")
    >>> [reason for check in default_checks(0.5, 2.5) if (reason := check(item))]
    ['multi_line', 'preamble']
"""

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from lhotse_triplets.metrics import cosine, normalize_text
from lhotse_triplets.rephrasing.spoken import verbalize


@dataclass
class RewriteItem:
    """One rewrite to check against its source.

    :param source: the text the rewrite must mean (in ``source_language``).
    :param rewrite: the candidate spoken text (in ``language``).
    :param answer: the assistant's reply to this turn (never shown to the rephraser).
    """

    source: str
    rewrite: str
    language: str
    source_language: str
    answer: str | None = None


@dataclass
class Verdict:
    """The reasons a rewrite failed (empty: accepted) and its similarity to the source."""

    reasons: list[str] = field(default_factory=list)
    similarity: float | None = None

    @property
    def ok(self) -> bool:
        return not self.reasons


def reason_key(reason: str) -> str:
    """``"low_similarity: 0.31 < 0.6"`` -> ``"low_similarity"``."""
    return reason.split(":", 1)[0].strip()


# --- scripts and languages ----------------------------------------------------------------------
LATIN_LANGUAGES = frozenset({"en", "fr", "de", "es", "it", "pt", "nl"})


def script_counts(text: str) -> dict[str, int]:
    """Letters of ``text`` per script: ``latin``, ``kana``, ``han``, ``hangul``, ``other``."""
    counts = {"latin": 0, "kana": 0, "han": 0, "hangul": 0, "other": 0}
    for c in text:
        o = ord(c)
        if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9F:
            counts["kana"] += 1
        elif 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
            counts["han"] += 1
        elif 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF:
            counts["hangul"] += 1
        elif c.isalpha():
            counts["latin" if o < 0x250 or 0x1E00 <= o <= 0x1EFF else "other"] += 1
    return counts


_FUNCTION_WORDS = {
    "en": set(
        "the is are what how many of there and to it does do any same that this you can an "
        "with as than".split()
    ),
    "fr": set(
        "le la les est des du une et il y combien quelle quel que qui dans même sont à au aux "
        "ce cette de".split()
    ),
    "de": set(
        "der die das ist und ein eine es gibt wie viele welche welcher den dem des gleiche "
        "sind hat zu im".split()
    ),
}
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)


def latin_language_scores(text: str) -> dict[str, int]:
    """Function words of en/fr/de found in ``text`` (a cheap language-ID for short prompts)."""
    words = [w.lower() for w in _WORD.findall(text)]
    return {lang: sum(w in vocab for w in words) for lang, vocab in _FUNCTION_WORDS.items()}


def length_units(text: str, language: str) -> float:
    """Length in rough "word" units comparable across languages (CJK: characters per word)."""
    if language in ("ja", "zh"):
        counts = script_counts(text)
        per_word = 1.6 if language == "ja" else 1.2
        return (counts["kana"] + counts["han"]) / per_word + counts["latin"] / 5
    return float(len(_WORD.findall(text)) + len(re.findall(r"\d+", text)))


# --- questions and requests ----------------------------------------------------------------------
_REQUEST_START = {
    "en": r"(?:please|can|could|would|will|tell|describe|provide|give|list|name|identify|"
    r"explain|count|find|write|summari[sz]e|show|answer|subtract|add|compare|select|choose|"
    r"determine|offer|share|render|present|create|generate|analy[sz]e|examine|walk|narrate|"
    r"portray|illustrate|characteri[sz]e|break|clarify|relay|detect|locate|point|read|look|"
    r"how|what|which|who|whom|whose|where|when|why|is|are|does|do|did|was|were|has|have|"
    r"just|let)\b",
    "fr": r"(?:décri|donne|fourni|indique|dis|dites|pouv|peux|pourri|combien|quel|quelle|qu|"
    r"est-ce|y a-t-il|expliqu|nomme|liste|compte|répond|regarde|où|comment|pourquoi|lequel|"
    r"laquelle|est-il|est-elle|sont-ils|ont-ils|a-t-il)",
    "de": r"(?:beschreib|gib|geben|nenn|sag|erklär|zähl|list|wie|was|welch|gibt es|ist|sind|"
    r"kannst|können|könnten|antwort|bitte|hat|haben|wo|warum|wer)",
}
_REQUEST_ANYWHERE = {
    "ja": r"(?:か[。？?]?$|ください|下さい|教えて|説明して|答えて|何|どれ|どの|いくつ|"
    r"ますか|ですか|でしょうか)",
    "zh": r"(?:吗|呢|请|什么|哪|多少|几|是否|有没有|描述|说明|告诉|怎么|为什么)",
}


def is_question_or_request(text: str, language: str) -> bool:
    """Whether ``text`` asks something (``?``) or requests something (imperative, "please")."""
    if "?" in text or "？" in text:
        return True
    lang = language.split("-")[0]
    if lang in _REQUEST_ANYWHERE:
        return re.search(_REQUEST_ANYWHERE[lang], text.strip()) is not None
    pattern = _REQUEST_START.get(lang)
    if pattern is None:
        return True  # no rule for this language: do not reject
    sentences = re.split(r"(?<=[.!])\s+", text.strip())
    return any(re.match(pattern, s, re.IGNORECASE) for s in sentences)


# --- the checks -----------------------------------------------------------------------------------
def check_empty(item: RewriteItem) -> str | None:
    return "empty" if not item.rewrite or not item.rewrite.strip() else None


def check_printable(item: RewriteItem) -> str | None:
    bad = [
        c for c in item.rewrite if c == "\ufffd" or (unicodedata.category(c) == "Cc" and c != "\n")
    ]
    return f"unprintable: {len(bad)} control/invalid characters" if bad else None


def check_one_line(item: RewriteItem) -> str | None:
    return "multi_line" if "\n" in item.rewrite.strip() else None


_PREAMBLE_LATIN = re.compile(
    r"^\s*(?:sure|certainly|of course|okay|ok|alright|absolutely|here(?:'s| is| are)|"
    r"(?:the )?(?:rewritten|rephrased|spoken|paraphrased|translated)(?: version| text| "
    r"question| prompt)?\s*:|rewrite\s*:|rephrase\s*:|translation\s*:|as an ai|"
    r"voici|bien sûr|d'accord|hier ist|gerne|natürlich|klar)\b",
    re.IGNORECASE,
)
_PREAMBLE_CJK = re.compile(r"^\s*(?:以下|はい[、。]|もちろん|了解|当然|好的|下面是|这是|改写)")


def _has_preamble(text: str) -> bool:
    return bool(_PREAMBLE_LATIN.match(text) or _PREAMBLE_CJK.match(text))


def check_preamble(item: RewriteItem) -> str | None:
    if _has_preamble(item.rewrite) and not _has_preamble(item.source):
        return "preamble"
    return None


_QUOTE_PAIRS = {'"': '"', "“": "”", "'": "'", "«": "»", "「": "」", "『": "』", "„": "“", "‘": "’"}
_MARKDOWN = re.compile(r"\*\*|__|`|^\s*#|^\s*[-*•]\s|^\s*\d+[.)]\s", re.MULTILINE)


def check_quotes_markdown(item: RewriteItem) -> str | None:
    r, s = item.rewrite.strip(), item.source.strip()
    if len(r) >= 2 and _QUOTE_PAIRS.get(r[0]) == r[-1] and not (s[:1] == r[0] and s[-1:] == r[-1]):
        return "quotes_or_markdown: quoted"
    if _MARKDOWN.search(r) and not _MARKDOWN.search(s):
        return "quotes_or_markdown: markdown"
    return None


_META = re.compile(
    r"\b(?:rephras\w*|rewrit\w*|paraphras\w*|spoken style|spoken-style|original text|"
    r"user turn|system prompt|reformul\w*|umformulier\w*)\b|</?text>|言い換え|改写|复述",
    re.IGNORECASE,
)


def check_meta_text(item: RewriteItem) -> str | None:
    if _META.search(item.rewrite) and not _META.search(item.source):
        return "meta_text"
    return None


_TAG = re.compile(r"<[a-zA-Z_]+>")


def check_placeholders(item: RewriteItem) -> str | None:
    want, got = sorted(_TAG.findall(item.source)), sorted(_TAG.findall(item.rewrite))
    if want != got:
        missing = [t for t in want if t not in got]
        added = [t for t in got if t not in want]
        what = (f"missing {' '.join(missing)}" if missing else "") + (
            f"{' ' if missing else ''}added {' '.join(added)}" if added else ""
        )
        return f"placeholder: {what}"
    return None


def check_script(item: RewriteItem) -> str | None:
    lang = item.language.split("-")[0]
    c = script_counts(_TAG.sub(" ", item.rewrite))
    letters = sum(c.values())
    if letters == 0:
        return None
    if lang in LATIN_LANGUAGES and c["latin"] / letters < 0.9:
        return f"wrong_script: {c['latin'] / letters:.0%} Latin letters"
    if lang == "ja" and (c["kana"] == 0 or (c["kana"] + c["han"]) / letters < 0.5):
        return "wrong_script: no kana" if c["kana"] == 0 else "wrong_script: not Japanese"
    if lang == "zh" and (c["kana"] > 0 or c["han"] / letters < 0.5):
        return "wrong_script: kana in Chinese" if c["kana"] else "wrong_script: not Chinese"
    return None


def check_language(item: RewriteItem) -> str | None:
    lang = item.language.split("-")[0]
    if lang not in _FUNCTION_WORDS:
        return None
    scores = latin_language_scores(item.rewrite)
    best = max(scores, key=lambda k: scores[k])
    if best != lang and scores[best] >= 2 and scores[best] > 2 * scores[lang]:
        return f"wrong_language: looks like {best}"
    return None


def check_question(item: RewriteItem) -> str | None:
    if is_question_or_request(item.source, item.source_language) and not (
        is_question_or_request(item.rewrite, item.language)
    ):
        return "not_a_question"
    return None


_YES_NO = re.compile(
    r"^\s*(?:yes|no|oui|non|ja|nein|はい|いいえ|是的|不是|对|不)\b[\s,.!、，。]", re.IGNORECASE
)


def _contains_phrase(haystack: str, needle: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


_FINAL = re.compile(
    r"(?:answer is|is|are|:)\s*\**\s*([^\s.*]+(?: [^\s.*]+)?)\s*\**\.?\s*$", re.IGNORECASE
)


def final_answer(answer: str) -> str | None:
    """The short answer of a reply: the reply itself (up to 6 words), else what its last
    sentence concludes ("... the number of cylinders is 0." -> ``"0"``), else ``None``."""
    text = answer.strip()
    if len(text.split()) <= 6:
        return text
    last = re.split(r"(?<=[.!?])\s+|\n+", text)[-1]
    m = _FINAL.search(last)
    return m.group(1) if m else None


def check_answer(item: RewriteItem) -> str | None:
    if not item.answer or not item.answer.strip():
        return None
    if _YES_NO.match(item.rewrite) and not _YES_NO.match(item.source):
        return "contains_answer: starts with yes/no"
    rewrite = normalize_text(item.rewrite, item.language)
    source = normalize_text(item.source, item.source_language)
    short = final_answer(item.answer)
    if short:
        forms = {normalize_text(short, item.source_language)}
        if re.fullmatch(r"\d+", short.strip()) and short.strip() != "1":  # "one" is a pronoun too
            forms.add(normalize_text(verbalize(short.strip(), item.language), item.language))
        for form in forms - {"", "yes", "no"}:  # "yes or no?" inside a question is no answer
            if _contains_phrase(rewrite, form) and not _contains_phrase(source, form):
                return f"contains_answer: {form!r}"
    return None


_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.?!]{0,40}\b(?:instructions?|prompts?|rules?|"
    r"directions?|guidelines?|above|previous)\b|\byou are now\b|\bsystem prompt\b|"
    r"\bnew instructions?\b|\binstead,? (?:say|reply|respond|output|write|print)\b",
    re.IGNORECASE,
)
_PAYLOAD = re.compile(
    r"\b(?:say|reply|respond|output|write|print|answer)(?: with| only)?(?: only)?:?\s+"
    r"[\"'“‘]?([^\"'”’.!?]{1,60})",
    re.IGNORECASE,
)


def has_injection(text: str) -> bool:
    """Whether ``text`` contains a prompt-injection phrase."""
    return _INJECTION.search(text) is not None


def check_injection(item: RewriteItem) -> str | None:
    if not has_injection(item.source):
        return None
    rewrite = normalize_text(item.rewrite, item.language)
    for m in _PAYLOAD.finditer(item.source):
        payload = normalize_text(m.group(1), item.source_language)
        if payload and (rewrite == payload or rewrite.startswith(payload + " ")):
            return f"obeys_injection: said {payload!r}"
    same_language = item.language == item.source_language
    if same_language and not has_injection(item.rewrite):
        return "obeys_injection: the instruction in the source was dropped"
    return None


def check_length_ratio(item: RewriteItem, min_ratio: float, max_ratio: float) -> str | None:
    """The rewrite's length is within ``[min_ratio, max_ratio]`` of the source's."""
    # +2 on both sides: short prompts ("Hi") may grow by a word or two.
    ratio = (length_units(item.rewrite, item.language) + 2) / (
        length_units(item.source, item.source_language) + 2
    )
    if ratio < min_ratio:
        return f"length_ratio: {ratio:.2f} < {min_ratio}"
    if ratio > max_ratio:
        return f"length_ratio: {ratio:.2f} > {max_ratio}"
    return None


def default_checks(
    min_length_ratio: float, max_length_ratio: float
) -> list[Callable[[RewriteItem], str | None]]:
    """The cheap checks, in the order they run."""
    return [
        check_empty,
        check_printable,
        check_one_line,
        check_preamble,
        check_quotes_markdown,
        check_meta_text,
        check_placeholders,
        check_script,
        check_language,
        partial(check_length_ratio, min_ratio=min_length_ratio, max_ratio=max_length_ratio),
        check_question,
        check_answer,
        check_injection,
    ]


class RewriteValidator:
    """Runs every check on a batch of rewrites; similarity through an ``embed`` backend.

    :param min_similarity: the meaning check's threshold (cosine of sentence embeddings) when
        rewrite and source are in the same language.
    :param min_cross_similarity: the threshold across languages (a translation compared with the
        source in its own language scores lower than a paraphrase, also when it is right).
    :param min_length_ratio: shortest rewrite allowed, relative to the source.
    :param max_length_ratio: longest rewrite allowed, relative to the source.

    The defaults of all four are those of the rephrase stage's config
    (:class:`~lhotse_triplets.config.RephraseConfig`).

    Example::

        validator = RewriteValidator(0.6, 0.35, 0.5, 2.5)
        verdicts = validator.validate(items, encode=build("embed", "use_multilingual").encode)
        [v.reasons for v in verdicts]
    """

    def __init__(
        self,
        min_similarity: float,
        min_cross_similarity: float,
        min_length_ratio: float,
        max_length_ratio: float,
    ) -> None:
        self.min_similarity = min_similarity
        self.min_cross_similarity = min_cross_similarity
        self.checks = default_checks(min_length_ratio, max_length_ratio)

    def validate(
        self,
        items: Sequence[RewriteItem],
        encode: Callable[[list[str]], np.ndarray] | None = None,
    ) -> list[Verdict]:
        """One :class:`Verdict` per item.

        :param encode: sentence embeddings of a list of texts; ``None`` skips only the meaning
            check (texts equal up to case, punctuation and spacing count as similarity 1.0
            either way).
        """
        verdicts = []
        for item in items:
            reasons = [r for check in self.checks if (r := check(item)) is not None]
            # Equal up to case, punctuation and spacing: nothing to embed.
            same = item.language == item.source_language and normalize_text(
                item.rewrite, item.language
            ) == normalize_text(item.source, item.source_language)
            verdicts.append(Verdict(reasons, 1.0 if same else None))
        todo = [i for i, v in enumerate(verdicts) if v.ok and v.similarity is None]
        if todo and encode is not None:
            texts = sorted({t for i in todo for t in (items[i].source, items[i].rewrite)})
            index = {t: k for k, t in enumerate(texts)}
            vectors = np.asarray(encode(texts))
            sims = cosine(
                vectors[[index[items[i].source] for i in todo]],
                vectors[[index[items[i].rewrite] for i in todo]],
            )
            for i, sim in zip(todo, sims):
                verdicts[i].similarity = round(float(sim), 4)
                same_language = items[i].language == items[i].source_language
                threshold = self.min_similarity if same_language else self.min_cross_similarity
                if sim < threshold:
                    verdicts[i].reasons.append(f"low_similarity: {sim:.2f} < {threshold}")
        return verdicts
