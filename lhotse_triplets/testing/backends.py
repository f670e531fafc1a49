"""Dummy backends for fast tests: real computations, trivially small, no model weights.

``dummy`` TTS encodes the UTF-8 bytes of the text as a sequence of tones and ``dummy`` ASR
decodes them, so a clean clip round-trips exactly and damaged audio does not. ``dummy`` embed
hashes character trigrams; ``dummy`` MOS grows with loudness. Never use them for real data.
"""

import zlib
from collections.abc import Sequence

import numpy as np

from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._text import check_voice
from lhotse_triplets.errors import ItemError

SR = 16000
SYMBOL = int(0.04 * SR)  # 40 ms per byte -> 25 Hz FFT resolution
BASE_HZ, STEP_HZ = 100.0, 25.0


@register("tts", "dummy")
class DummyTTS:
    """Tones that encode the text bytes. Texts containing ``FAIL`` raise :class:`ItemError`."""

    requires: list = []

    def __init__(
        self,
        languages: Sequence[str] = ("en", "fr", "de", "ja", "zh"),
        num_voices: int = 5,
        amplitude: float = 0.1,
    ) -> None:
        self._languages = list(languages)
        self._voices = [f"v{i}" for i in range(num_voices)]
        self.amplitude = amplitude

    @property
    def sampling_rate(self) -> int:
        return SR

    def languages(self) -> list[str]:
        return list(self._languages)

    def voices(self, language: str) -> list[str]:
        if language not in self._languages:
            raise ItemError(f"dummy TTS does not speak {language!r}")
        return list(self._voices)

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        check_voice(self, "dummy", language, voice)
        phase = (self._voices.index(voice) + 1) * 0.3
        t = np.arange(SYMBOL) / SR
        out = []
        for text in texts:
            if not text.strip():
                raise ItemError("empty text")
            if "FAIL" in text:
                raise ItemError("dummy TTS was asked to fail")
            tones = [
                np.sin(2 * np.pi * (BASE_HZ + STEP_HZ * b) * t + phase)
                for b in text.encode("utf-8")
            ]
            out.append((self.amplitude * np.concatenate(tones)).astype(np.float32))
        return out


@register("asr", "dummy")
class DummyASR:
    """Decodes :class:`DummyTTS` audio back to text (16 kHz input)."""

    requires: list = []
    sampling_rate = SR

    def transcribe(
        self, audios: Sequence[np.ndarray], *, languages: Sequence[str | None] = ()
    ) -> list[str]:
        out = []
        for audio in audios:
            data = bytearray()
            for k in range(len(audio) // SYMBOL):
                frame = audio[k * SYMBOL : (k + 1) * SYMBOL]
                if np.sqrt(np.mean(frame**2)) < 1e-3:
                    continue
                spectrum = np.abs(np.fft.rfft(frame * np.hanning(len(frame))))
                hz = np.argmax(spectrum) * SR / len(frame)
                data.append(int(np.clip(round((hz - BASE_HZ) / STEP_HZ), 0, 255)))
            out.append(data.decode("utf-8", errors="ignore"))
        return out


@register("embed", "dummy")
class DummyEmbed:
    """Hashed character-trigram vectors, L2-normalised."""

    requires: list = []

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vecs = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            padded = f"  {text.lower()} "
            for j in range(len(padded) - 2):
                vecs[i, zlib.crc32(padded[j : j + 3].encode()) % self.dim] += 1.0
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-9)


@register("mos", "dummy")
class DummyMOS:
    """1 for silence, up to 5 for loud audio: ``1 + 4 * min(1, rms / 0.2)``."""

    requires: list = []
    sampling_rate = SR

    def predict(self, audios: Sequence[np.ndarray]) -> list[float]:
        return [
            1.0 + 4.0 * min(1.0, float(np.sqrt(np.mean(a**2))) / 0.2) if len(a) else 1.0
            for a in audios
        ]
