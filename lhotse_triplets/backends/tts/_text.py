"""Checks and text preparation shared by the offline TTS backends.

Japanese is read into kana with pyopenjtalk and Mandarin into tone-numbered pinyin with pypinyin;
both are imported on first use, so only the languages that need them need them installed.
"""

import importlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from lhotse_triplets.audio import check_waveform
from lhotse_triplets.errors import ItemError

#: What a voice id may contain: it becomes part of file names and cut ids.
SAFE_VOICE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")

#: Highest peak amplitude a backend returns; louder clips are scaled down to it.
MAX_PEAK = 0.99

# Ideographic punctuation that NFKC leaves alone, spelled in ASCII for engines that read pinyin.
_CJK_PUNCTUATION = str.maketrans({"。": ".", "、": ",", "「": '"', "」": '"', "『": '"', "』": '"'})


def import_for(module: str, pip_name: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise ``ImportError`` naming the ``pip install`` that provides it.

    :param module: import name, e.g. ``"pyopenjtalk"``.
    :param pip_name: what to ``pip install``, e.g. ``"pyopenjtalk-plus"``.
    :param purpose: what needs it, for the message (e.g. ``"Japanese text"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{purpose} needs {module}: pip install {pip_name}") from e


def check_voice_ids(voices: Iterable[str]) -> list[str]:
    """Return ``voices`` as a list; ``ValueError`` for an id unfit for file names or cut ids."""
    voices = list(voices)
    bad = [v for v in voices if not isinstance(v, str) or not SAFE_VOICE_ID.match(v)]
    if bad:
        raise ValueError(f"Voice ids may only use [A-Za-z0-9_.-]; got {bad}")
    return voices


def unsupported_language(engine: str, language: str, supported: Sequence[str]) -> ItemError:
    """The error for a language ``engine`` does not speak (one item fails, the run goes on)."""
    return ItemError(
        f"TTS {engine} does not speak language {language!r}; it speaks: {', '.join(supported)}"
    )


def unknown_voice(engine: str, voice: str, language: str, voices: Sequence[str]) -> ValueError:
    """The error for a voice ``engine`` does not offer in ``language``."""
    return ValueError(
        f"Unknown {engine} voice {voice!r} for language {language!r}; "
        f"available: {', '.join(voices)}"
    )


def check_voice(tts: Any, engine: str, language: str, voice: str) -> None:
    """Raise :func:`unknown_voice` unless ``voice`` is one of ``tts.voices(language)``."""
    voices = tts.voices(language)
    if voice not in voices:
        raise unknown_voice(engine, voice, language, voices)


def speakable(text: str, engine: str) -> str:
    """``text`` stripped; :class:`ItemError` when it is empty or has no letter or digit."""
    if not isinstance(text, str):
        raise ItemError(f"TTS {engine} needs a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ItemError(f"TTS {engine} got an empty text")
    if not any(ch.isalnum() for ch in stripped):
        raise ItemError(f"TTS {engine} got a text with nothing to speak: {stripped!r}")
    return stripped


def checked_audio(audio: np.ndarray, engine: str, text: str) -> np.ndarray:
    """``audio`` as 1-D float32 within [-1, 1]; :class:`ItemError` if empty, silent or not finite
    (:func:`lhotse_triplets.audio.check_waveform`: ``no_audio``, ``silent_audio``,
    ``non_finite_audio``).

    A clip that would clip (Kokoro sometimes peaks above 1) is scaled down to a peak of
    :data:`MAX_PEAK` rather than clipped.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim > 1:
        audio = audio.mean(axis=tuple(range(1, audio.ndim)))
    # The stages' audio contract, with its reason codes (no_audio, non_finite_audio, silent_audio).
    audio = check_waveform(audio.reshape(-1), what=f"TTS {engine} (text {text[:60]!r})")
    peak = float(np.max(np.abs(audio)))
    if peak > MAX_PEAK:
        audio = audio * np.float32(MAX_PEAK / peak)
    return audio


def katakana_to_hiragana(text: str) -> str:
    """Map katakana (ァ..ヶ) to hiragana, leaving everything else (``ー`` too) as it is."""
    return "".join(chr(ord(ch) - 0x60) if "\u30a1" <= ch <= "\u30f6" else ch for ch in text)


def _vowel_table() -> dict[str, str]:
    rows = {
        "あ": "あかさたなはまやらわがざだばぱぁゃゎ",
        "い": "いきしちにひみりぎじぢびぴぃ",
        "う": "うくすつぬふむゆるぐずづぶぷぅゅゔ",
        "え": "えけせてねへめれげぜでべぺぇ",
        "お": "おこそとのほもよろをごぞどぼぽぉょ",
    }
    return {kana: vowel for vowel, row in rows.items() for kana in row}


_VOWEL_OF = _vowel_table()


def expand_long_vowels(hiragana: str) -> str:
    """Spell the long-vowel mark ``ー`` as the vowel it lengthens (``おーきな`` -> ``おおきな``)."""
    out: list[str] = []
    for ch in hiragana:
        if ch == "ー" and out and out[-1] in _VOWEL_OF:
            ch = _VOWEL_OF[out[-1]]
        out.append(ch)
    return "".join(out)


@contextmanager
def kanji_readings(text: str, engine: str) -> Iterator[None]:
    """Turn pyopenjtalk's request for the Sudachi dictionary into an :class:`ItemError`.

    pyopenjtalk-plus reads kanji missing from its own dictionary (e.g. 鑫, or traditional
    characters) with Sudachi. Without ``sudachidict-core`` that raises ``ModuleNotFoundError``,
    which a stage would take for a missing backend dependency and stop the run on.
    """
    try:
        yield
    except ModuleNotFoundError as e:
        if "sudachidict" not in f"{e.name} {e}":
            raise
        raise ItemError(
            f"TTS {engine} cannot read the rare kanji in {text!r} without the Sudachi "
            "dictionary (pip install sudachidict-core)"
        ) from e


def japanese_to_spaced_hiragana(text: str) -> str:
    """Japanese text as hiragana accent phrases separated by spaces, ``ー`` spelled out.

    This is what espeak-ng 1.51 reads correctly: it does not read kanji, and a ``ー`` after some
    kana (``のおーきな``) makes it spell the whole word out ("Japanese letter ...").

    Example::

        japanese_to_spaced_hiragana("緑色の大きな物体")  # 'みどりいろの おおきな ぶったい'
    """
    pyopenjtalk = import_for("pyopenjtalk", "pyopenjtalk-plus", "Japanese text")
    with kanji_readings(text, "espeak"):
        nodes = pyopenjtalk.run_frontend(text, use_sudachi_kanji_yomi=False)
    phrases: list[str] = []
    for node in nodes:
        if node["pos"] == "記号":
            spoken = unicodedata.normalize("NFKC", node["string"]).translate(_CJK_PUNCTUATION)
        else:
            pron = node["pron"] if node["pron"] not in ("", "*") else node["read"]
            spoken = expand_long_vowels(
                katakana_to_hiragana(pron.replace("’", "").replace("'", ""))
            )
        if node.get("chain_flag") == 1 and phrases:
            phrases[-1] += spoken
        else:
            phrases.append(spoken)
    return " ".join(" ".join(phrases).split())


def chinese_to_pinyin(text: str) -> str:
    """Mandarin text as tone-numbered pinyin (``ni3 hao3``, neutral tone 5, ``v`` for ü).

    Example::

        chinese_to_pinyin("红色的球吗？")  # 'hong2 se4 de5 qiu2 ma5 ?'
    """
    pypinyin = import_for("pypinyin", "pypinyin", "Mandarin text")
    text = unicodedata.normalize("NFKC", text).translate(_CJK_PUNCTUATION)
    syllables = pypinyin.lazy_pinyin(text, style=pypinyin.Style.TONE3, neutral_tone_with_five=True)
    return " ".join(" ".join(syllables).split())
