"""Text metrics for quality checks: normalisation, WER/CER (via jiwer) and cosine similarity.

ASR transcripts and prompts differ in ways that are not errors (case, punctuation, full-width
forms, Whisper writing Chinese in traditional characters); :func:`normalize_text` removes those
differences before :func:`error_rate` counts errors.

Example::

    >>> error_rate("What colour is the ball?", "what colour is the ball", "en")
    (0.0, 0.0)
    >>> normalize_text("這個球是什麼顏色？", "zh")
    '这个球是什么颜色'
"""

import difflib
import math
import numbers
import re
import unicodedata
from collections.abc import Mapping, Sequence

import numpy as np

#: Languages written without spaces between words: error is counted per character (CER), and
#: whitespace carries no meaning there (TTS and ASR insert it arbitrarily).
CER_LANGUAGES = frozenset({"ja", "zh", "yue", "ko", "th"})

_WHITESPACE = re.compile(r"\s+")


def _base_language(language: str | None) -> str:
    """``"zh-TW"`` -> ``"zh"``; ``None`` -> ``""``."""
    return (language or "").replace("_", "-").split("-")[0].lower()


def uses_cer(language: str | None) -> bool:
    """Whether errors in ``language`` are counted per character (ja, zh, ko, th) not per word.

    Example::

        >>> uses_cer("ja"), uses_cer("fr")
        (True, False)
    """
    return _base_language(language) in CER_LANGUAGES


def _to_simplified(text: str) -> str:
    try:
        import zhconv
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Chinese normalisation needs zhconv: pip install zhconv "
            "(or: pip install 'lhotse-triplets[qc]')"
        ) from e
    # zh-cn: traditional characters *and* Taiwan/Hong Kong word forms to mainland forms.
    return zhconv.convert(text, "zh-cn")


def _is_punctuation_or_symbol(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def normalize_text(text: str, language: str | None = None) -> str:
    """Normalise ``text`` for comparing a transcript with its prompt.

    NFKC (full-width forms to ASCII), lower case, punctuation and symbols (Latin and CJK) to
    spaces, whitespace collapsed; digits are kept as they are. Chinese is converted to
    simplified characters; for languages in :data:`CER_LANGUAGES` whitespace is removed.

    :param text: the text to normalise.
    :param language: ISO 639-1 code (``"zh"``, ``"zh-TW"``, ...); ``None`` for no
        language-specific step.

    Example::

        >>> normalize_text("  L'objet, est-il ROUGE ? ", "fr")
        'l objet est il rouge'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    base = _base_language(language)
    if base in ("zh", "yue"):
        text = _to_simplified(text)
    text = "".join(" " if _is_punctuation_or_symbol(c) else c for c in text)
    if base in CER_LANGUAGES:
        return _WHITESPACE.sub("", text)
    return _WHITESPACE.sub(" ", text).strip()


def error_rate(reference: str, hypothesis: str, language: str | None) -> tuple[float, float]:
    """Word and character error rates of ``hypothesis`` against ``reference``, after
    :func:`normalize_text`.

    For languages written without spaces (:func:`uses_cer`) words are characters, so
    ``wer == cer``. Rates are not capped: insertions (e.g. a looping transcript) give values
    above 1. An empty reference gives ``(0.0, 0.0)`` for an empty hypothesis, ``(1.0, 1.0)``
    otherwise.

    :return: ``(wer, cer)``

    Example::

        >>> error_rate("is the cube red", "is a cube red", "en")
        (0.25, 0.2)
    """
    import jiwer

    ref = normalize_text(reference, language)
    hyp = normalize_text(hypothesis, language)
    if not ref:
        return (0.0, 0.0) if not hyp else (1.0, 1.0)
    if not hyp:
        return 1.0, 1.0
    cer = float(jiwer.cer(ref, hyp))
    wer = cer if uses_cer(language) else float(jiwer.wer(ref, hyp))
    return wer, cer


def cosine(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Cosine similarity of two vectors (a float) or of paired rows of two ``(N, D)`` arrays
    (shape ``(N,)``). A zero vector has similarity 0 with everything; a vector with a NaN or
    infinite component gives NaN (never a plausible number), for the caller to refuse.

    Example::

        >>> round(cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])), 4)
        0.7071
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cosine needs arrays of the same shape, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    dots = np.sum(a * b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sims = np.where(norms == 0, 0.0, dots / np.where(norms == 0, 1.0, norms))
    sims = np.clip(sims, -1.0, 1.0)
    return float(sims) if sims.ndim == 0 else sims


def unit_rows(vectors: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
    """Rows of ``vectors`` scaled to unit length, as float32; zero rows, and the rows of blank
    ``texts`` when given, are all zeros (similarity 0 with everything).

    Embedding backends return this, so that an empty transcript is never "similar" to a prompt.

    Example::

        >>> unit_rows(np.array([[3.0, 4.0], [1.0, 0.0]]), ["a", " "]).tolist()
        [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    rows = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    if texts is not None:
        rows[[not text.strip() for text in texts]] = 0.0
    return rows


def is_finite_number(value: object) -> bool:
    """Whether ``value`` is a real number that is neither NaN nor infinite (``None``, strings
    and booleans are not).

    Example::

        >>> is_finite_number(0.5), is_finite_number(float("nan")), is_finite_number(None)
        (True, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(float(value))


def non_finite(scores: Mapping[str, object]) -> str | None:
    """``"mos=nan, similarity=inf"``: the scores of ``scores`` that are not finite numbers
    (``None`` counts), or ``None`` when all are. Scores are checked before they are written, so
    that no manifest ever holds a bare ``NaN``.

    Example::

        >>> non_finite({"wer": 0.0, "mos": float("nan")})
        'mos=nan'
    """
    bad = [f"{name}={value}" for name, value in scores.items() if not is_finite_number(value)]
    return ", ".join(bad) or None


def word_ops(
    reference: str, hypothesis: str, language: str | None = None
) -> list[tuple[str, list[str], list[str]]]:
    """Word-level difference of ``hypothesis`` (what the ASR heard) against ``reference`` (what
    was meant to be said): ``(op, reference words, hypothesis words)`` with ``op`` one of
    ``equal``, ``replace``, ``delete`` (words the ASR missed), ``insert`` (words it added).
    Words are compared after :func:`normalize_text` (case and punctuation do not count); in
    languages written without spaces (:func:`uses_cer`) characters are the words. Both the
    browse page and the report's gallery show it.

    Example::

        >>> word_ops("A red cube.", "a bed cube")
        [('equal', ['A'], ['a']), ('replace', ['red'], ['bed']), ('equal', ['cube.'], ['cube'])]
    """
    cer = uses_cer(language)
    ref, hyp = _diff_tokens(reference, cer), _diff_tokens(hypothesis, cer)
    matcher = difflib.SequenceMatcher(
        a=[normalize_text(t) for t in ref], b=[normalize_text(t) for t in hyp], autojunk=False
    )
    return [(op, ref[i1:i2], hyp[j1:j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes()]


def _diff_tokens(text: str, cer: bool) -> list[str]:
    return [c for c in text if not c.isspace()] if cer else text.split()
