"""Dummy backends for fast tests: real computations, trivially small, no model weights.

``dummy`` TTS encodes the UTF-8 bytes of the text as a sequence of tones and ``dummy`` ASR
decodes them, so a clean clip round-trips exactly and damaged audio does not. ``dummy`` embed
hashes character trigrams; ``dummy`` MOS grows with loudness. Never use them for real data.

The ``faulty`` backends (TTS, ASR, embed, MOS, LLM) break their kind's contract on purpose (wrong
output counts, NaN, int16 or stereo audio, hangs...) for the reliability tests; never use them
for real data either.
"""

import os
import signal
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lhotse_triplets.backends.llm.rules import RuleRephraser
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


@register("speaker", "dummy")
class DummySpeaker:
    """Mean log energy in ``bands`` frequency bands, centred and L2-normalised: clips of one
    synthetic "speaker" (the same pitch and timbre) lie close, others apart. Tests only."""

    requires: list = []
    sampling_rate = SR

    def __init__(self, bands: int = 32) -> None:
        self.bands = bands

    def embed(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(audios), self.bands), dtype=np.float32)
        for i, audio in enumerate(audios):
            spectrum = np.abs(np.fft.rfft(np.asarray(audio, dtype=np.float64), n=4096))
            energy = np.array([b.sum() for b in np.array_split(spectrum**2, self.bands)])
            vec = np.log(energy + 1e-6)
            out[i] = vec - vec.mean()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


# --- fault injection -------------------------------------------------------------------------
# Backends that break their contract on purpose, for the reliability tests. Registered like the
# dummy ones, so that spawned worker processes build them by name. Never use them for real data.

#: Word whose presence in a text (or, for audio inputs, in its dummy transcript) triggers a fault.
TRIGGER = "BAD"


def _triggered(text: str, trigger: str | None) -> bool:
    return trigger is None or trigger in text


def _hang(seconds: float) -> None:
    time.sleep(seconds)


def _die_once(marker: Path) -> None:
    """Kill this process (``SIGKILL``, as the OOM killer would) unless ``marker`` exists;
    create it first, so that only the first call dies."""
    try:
        with marker.open("x") as f:
            f.write(str(os.getpid()))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _audio_texts(audios: Sequence[np.ndarray]) -> list[str]:
    """The texts dummy-TTS audio encodes (what an audio backend's fault is triggered by)."""
    return DummyASR().transcribe(audios)


@register("tts", "faulty")
class FaultyTTS(DummyTTS):
    """:class:`DummyTTS` that breaks the TTS contract for texts containing ``trigger`` (every
    text when ``trigger`` is ``None``). For tests only: never use it for real data.

    :param fault: ``short_count`` (no output for the text), ``extra_count`` (two outputs),
        ``nan`` / ``inf`` (non-finite samples), ``int16`` (PCM integers), ``stereo`` (2-D),
        ``silent`` (zeros), ``empty`` (no samples), ``short`` (10 ms), ``hang`` (sleeps
        ``hang_seconds`` in the call), ``raise`` (``RuntimeError``), ``bad_rate`` (declares a
        sampling rate of 0, for every text), ``none`` (returns ``None`` instead of a list),
        ``die_once`` (the worker process kills itself with ``SIGKILL``, the first time only:
        it creates the file ``marker`` first, and answers normally once it exists).
    :param marker: the file that records ``die_once``'s death (shared by all processes).
    """

    FAULTS = (
        "short_count",
        "extra_count",
        "nan",
        "inf",
        "int16",
        "stereo",
        "silent",
        "empty",
        "short",
        "hang",
        "raise",
        "bad_rate",
        "none",
        "die_once",
    )

    def __init__(
        self,
        fault: str = "short_count",
        trigger: str | None = TRIGGER,
        hang_seconds: float = 3600.0,
        marker: str | None = None,
        **options,
    ) -> None:
        if fault not in self.FAULTS:
            raise ValueError(f"Unknown fault {fault!r}; known: {', '.join(self.FAULTS)}")
        if fault == "die_once" and not marker:
            raise ValueError("fault='die_once' needs a marker file")
        super().__init__(**options)
        self.fault, self.trigger, self.hang_seconds = fault, trigger, hang_seconds
        self.marker = marker
        #: Calls of :meth:`synthesize` in this process (tests count retries).
        self.calls = 0

    @property
    def sampling_rate(self) -> int:
        return 0 if self.fault == "bad_rate" else SR

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        self.calls += 1
        hit = [_triggered(t, self.trigger) for t in texts]
        if any(hit) and self.fault == "hang":
            _hang(self.hang_seconds)  # then answers normally
        elif any(hit) and self.fault == "die_once":
            _die_once(Path(self.marker))
        elif any(hit) and self.fault == "none":
            return None  # type: ignore[return-value]
        elif any(hit) and self.fault == "raise":
            raise RuntimeError("faulty TTS failed")
        clean = super().synthesize(texts, language=language, voice=voice)
        out: list[np.ndarray] = []
        for audio, bad in zip(clean, hit, strict=True):
            out.extend(self._damage(audio) if bad else [audio])
        return out

    def _damage(self, audio: np.ndarray) -> list[np.ndarray]:
        damaged = {
            "short_count": [],
            "extra_count": [audio, audio[::-1].copy()],
            "nan": [np.where(np.arange(audio.size) % 100 == 0, np.nan, audio).astype(np.float32)],
            "inf": [np.where(np.arange(audio.size) == 5, np.inf, audio).astype(np.float32)],
            "int16": [(audio * 32767).astype(np.int16)],
            "stereo": [np.stack([audio, audio])],
            "silent": [np.zeros_like(audio)],
            "empty": [np.zeros(0, dtype=np.float32)],
            "short": [audio[: SR // 100]],
        }
        return damaged.get(self.fault, [audio])


@register("asr", "faulty")
class FaultyASR(DummyASR):
    """:class:`DummyASR` whose output breaks the contract for audio whose transcript contains
    ``trigger`` (``None``: every one). For tests only: never use it for real data.

    :param fault: ``short_count``, ``extra_count``, ``not_text`` (a number instead of a
        transcript), ``hang``.
    """

    def __init__(
        self, fault: str = "short_count", trigger: str | None = TRIGGER, hang_seconds=3600.0
    ):
        self.fault, self.trigger, self.hang_seconds = fault, trigger, hang_seconds

    def transcribe(
        self, audios: Sequence[np.ndarray], *, languages: Sequence[str | None] = ()
    ) -> list:
        out: list = []
        for text in super().transcribe(audios, languages=languages):
            if not _triggered(text, self.trigger):
                out.append(text)
            elif self.fault == "hang":
                _hang(self.hang_seconds)
            elif self.fault == "extra_count":
                out.extend([text, text])
            elif self.fault == "not_text":
                out.append(42)
        return out


@register("embed", "faulty")
class FaultyEmbed(DummyEmbed):
    """:class:`DummyEmbed` with NaN vectors (``fault="nan"``) or one vector too few
    (``short_count``) for texts containing ``trigger``. For tests only: never use it for real
    data."""

    def __init__(self, fault: str = "nan", trigger: str | None = TRIGGER, dim: int = 512):
        super().__init__(dim)
        self.fault, self.trigger = fault, trigger

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vecs = super().encode(texts)
        hit = np.array([_triggered(t, self.trigger) for t in texts], dtype=bool)
        if self.fault == "short_count":
            return vecs[~hit]
        vecs[hit] = np.nan
        return vecs


@register("mos", "faulty")
class FaultyMOS(DummyMOS):
    """:class:`DummyMOS` that breaks the contract for audio whose dummy transcript contains
    ``trigger`` (``None``: every clip). For tests only: never use it for real data.

    :param fault: ``nan``, ``inf``, ``none`` (``None`` instead of a score), ``short_count``,
        ``extra_count``, ``hang``.
    """

    def __init__(self, fault: str = "nan", trigger: str | None = TRIGGER, hang_seconds=3600.0):
        self.fault, self.trigger, self.hang_seconds = fault, trigger, hang_seconds

    def predict(self, audios: Sequence[np.ndarray]) -> list:
        scores = super().predict(audios)
        out: list = []
        for score, text in zip(scores, _audio_texts(audios), strict=True):
            if not _triggered(text, self.trigger):
                out.append(score)
            elif self.fault == "hang":
                _hang(self.hang_seconds)
            elif self.fault in ("nan", "inf", "none"):
                out.append({"nan": float("nan"), "inf": float("inf"), "none": None}[self.fault])
            elif self.fault == "extra_count":
                out.extend([score, score])
        return out


@register("llm", "faulty")
class FaultyRephraser(RuleRephraser):
    """The rule-based rephraser, except: ``short_count`` leaves out the rewrite of texts
    containing ``trigger`` (``None``: every text), ``extra_count`` adds one, ``hang`` sleeps.
    For tests only: never use it for real data."""

    def __init__(
        self, fault: str = "short_count", trigger: str | None = TRIGGER, hang_seconds=3600.0
    ):
        self.fault, self.trigger, self.hang_seconds = fault, trigger, hang_seconds

    def rephrase(self, texts: Sequence[str], **kwargs) -> list[str | None]:
        out: list[str | None] = []
        for text, rewrite in zip(texts, super().rephrase(texts, **kwargs), strict=True):
            if not _triggered(text, self.trigger):
                out.append(rewrite)
            elif self.fault == "hang":
                _hang(self.hang_seconds)
            elif self.fault == "extra_count":
                out.extend([rewrite, rewrite])
        return out

    def fingerprint(self) -> str:
        return f"faulty:{self.fault}:{self.trigger}"
