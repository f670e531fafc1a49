"""eSpeak NG: formant synthesis for 100+ languages, run as the ``espeak-ng`` program.

Robotic but fast (RTF ~0.005 on one core) and always available (``apt-get install espeak-ng``):
the engine of last resort and of quick tests. Voices are espeak *variants* (``m1``, ``f5``, ...)
applied to each language's espeak voice. Mandarin is spoken from tone-numbered pinyin
(``cmn-latn-pinyin``; plain ``cmn`` reads pinyin as English) and Japanese from hiragana accent
phrases read by pyopenjtalk (espeak-ng 1.51 does not read kanji, and spells out words where a
``ー`` follows some kana). Each call runs one single-threaded ``espeak-ng`` process at a time,
so it needs no thread limit (``engine.threads_per_worker``).
"""

import io
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._text import (
    check_voice,
    check_voice_ids,
    checked_audio,
    chinese_to_pinyin,
    japanese_to_spaced_hiragana,
    speakable,
    unsupported_language,
)
from lhotse_triplets.errors import ItemError

#: ISO 639-1 code -> espeak-ng voice file. Region-qualified *names* such as ``fr-fr`` silently
#: drop a ``+variant`` suffix in espeak-ng 1.51, so the voice files are named instead.
LANGUAGE_VOICES: dict[str, str] = {
    "en": "gmw/en-US",
    "fr": "roa/fr",
    "de": "gmw/de",
    "ja": "jpx/ja",
    "zh": "sit/cmn-Latn-pinyin",
    "es": "roa/es",
    "it": "roa/it",
    "pt": "roa/pt-BR",
    "nl": "gmw/nl",
    "pl": "zlw/pl",
    "ru": "zle/ru",
    "hi": "inc/hi",
    "ko": "ko",
}

#: Default voices: espeak variants, men and women alternating. Of 9 variants tried, these were
#: the most intelligible across en/de/fr/ja/zh (Whisper-base error rates on reference prompts;
#: klatt4, f1 and f5 fell apart in some languages).
VARIANTS = ("m1", "f2", "m7", "f3", "m3")

SAMPLING_RATE = 22050


def _espeak_data_dir(executable: str) -> Path | None:
    """Where espeak-ng keeps its data (``Data at:`` in ``--version``), if it says so."""
    out = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    marker = "Data at:"
    if marker in out.stdout:
        return Path(out.stdout.split(marker, 1)[1].strip())
    return None


@register("tts", "espeak")
class EspeakTTS:
    """espeak-ng through its command line: 22.05 kHz, every voice in every language.

    :param rate: speaking rate in words per minute (espeak ``-s``).
    :param variants: the voice ids, espeak variant names (``espeak-ng --voices=variant``).
    :param language_voices: add or override ISO 639-1 code -> espeak voice entries.
    :param executable: the espeak-ng program (name on ``PATH`` or a path).
    :param timeout: seconds one call of espeak-ng may take.

    Example::

        tts = build("tts", "espeak", rate=150)
        [audio] = tts.synthesize(["What color is the ball?"], language="en", voice="f2")
    """

    requires: ClassVar[list[tuple[str, str]]] = [("soundfile", "soundfile")]

    def __init__(
        self,
        rate: int = 160,
        variants: Sequence[str] = VARIANTS,
        language_voices: Mapping[str, str] | None = None,
        executable: str = "espeak-ng",
        timeout: float = 60.0,
    ) -> None:
        found = shutil.which(executable)
        if found is None:
            raise ImportError(
                f"The espeak TTS backend needs the {executable!r} program: "
                "apt-get install espeak-ng (Debian/Ubuntu) or brew install espeak-ng (macOS)"
            )
        self.executable = found
        self.rate = int(rate)
        self.timeout = float(timeout)
        self.variants = check_voice_ids(variants)
        if not self.variants:
            raise ValueError("EspeakTTS needs at least one variant")
        self.language_voices = {**LANGUAGE_VOICES, **dict(language_voices or {})}
        data_dir = _espeak_data_dir(found)
        if data_dir is not None and (data_dir / "voices" / "!v").is_dir():
            missing = [v for v in self.variants if not (data_dir / "voices" / "!v" / v).exists()]
            if missing:
                known = sorted(p.name for p in (data_dir / "voices" / "!v").iterdir())
                raise ValueError(
                    f"Unknown espeak-ng variants {missing}; installed: {', '.join(known)}"
                )

    @property
    def sampling_rate(self) -> int:
        return SAMPLING_RATE

    def languages(self) -> list[str]:
        """ISO 639-1 codes this backend speaks."""
        return sorted(self.language_voices)

    def voices(self, language: str) -> list[str]:
        """The voice ids for ``language`` (the same variants for every language)."""
        self._espeak_voice(language)
        return list(self.variants)

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform at 22.05 kHz per text.

        :param texts: what to say, in ``language``.
        :param language: ISO 639-1 code (see :meth:`languages`).
        :param voice: one of :meth:`voices`.
        """
        espeak_voice = self._espeak_voice(language)
        check_voice(self, "espeak", language, voice)
        return [self._speak(text, language, f"{espeak_voice}+{voice}") for text in texts]

    def _espeak_voice(self, language: str) -> str:
        if language not in self.language_voices:
            raise unsupported_language("espeak", language, self.languages())
        return self.language_voices[language]

    def _speak(self, text: str, language: str, espeak_voice: str) -> np.ndarray:
        import soundfile as sf

        text = speakable(text, "espeak")
        if language == "ja":
            spoken = japanese_to_spaced_hiragana(text)
        elif language == "zh":
            spoken = chinese_to_pinyin(text)
        else:
            spoken = text
        command = [self.executable, "-b", "1", "-s", str(self.rate), "-v", espeak_voice, "--stdout"]
        try:
            done = subprocess.run(
                command,
                input=spoken.encode("utf-8"),
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise ItemError(f"espeak-ng took over {self.timeout:g} s on {text!r}") from e
        if done.returncode != 0 or not done.stdout:
            message = done.stderr.decode("utf-8", "replace").strip()
            raise ItemError(f"espeak-ng failed (exit {done.returncode}) on {text!r}: {message}")
        audio, sr = sf.read(io.BytesIO(done.stdout), dtype="float32")
        if sr != SAMPLING_RATE:
            raise RuntimeError(f"espeak-ng wrote {sr} Hz audio, expected {SAMPLING_RATE} Hz")
        return checked_audio(audio, "espeak", text)
