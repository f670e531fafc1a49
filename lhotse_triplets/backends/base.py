"""The small Protocols every backend implements. Batch APIs everywhere: lists in, lists out."""

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TTSBackend(Protocol):
    """Text to speech. ``synthesize`` returns one float32 mono waveform per text.

    The constructor must be cheap: it checks its options and sets up the voice list, but loads
    no model and makes no request (load on the first ``synthesize``). Before a run does any
    work, :func:`lhotse_triplets.preflight.preflight` builds every configured TTS backend to
    check that it speaks the run's languages and offers the voices the config names.
    """

    @property
    def sampling_rate(self) -> int: ...

    def languages(self) -> list[str]: ...

    def voices(self, language: str) -> list[str]: ...

    def synthesize(
        self, texts: Sequence[str], *, language: str, voice: str
    ) -> list[np.ndarray]: ...


@runtime_checkable
class ASRBackend(Protocol):
    """Speech to text. Audio is float32 mono at ``sampling_rate`` (16 kHz)."""

    sampling_rate: int

    def transcribe(
        self, audios: Sequence[np.ndarray], *, languages: Sequence[str | None]
    ) -> list[str]: ...


@runtime_checkable
class EmbedBackend(Protocol):
    """Sentence embeddings; :func:`lhotse_triplets.metrics.cosine` compares them."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class SpeakerBackend(Protocol):
    """Speaker embeddings: one vector per clip, close for clips of the same speaker.

    ``embed`` takes mono float32 clips at :attr:`sampling_rate` and returns an ``(N, D)`` float32
    array, one row per clip, L2-normalised (so cosine similarity is a dot product).
    """

    @property
    def sampling_rate(self) -> int: ...

    def embed(self, audios: Sequence[np.ndarray]) -> np.ndarray: ...


@runtime_checkable
class MOSBackend(Protocol):
    """Reference-free naturalness (MOS, 1..5) of float32 mono audio at ``sampling_rate``."""

    sampling_rate: int

    def predict(self, audios: Sequence[np.ndarray]) -> list[float]: ...


@runtime_checkable
class RephraseBackend(Protocol):
    """Rewrite user turns in spoken style, in the target language.

    A batch of (context, user text, target language) in, one rewrite per text out. ``contexts``
    are the earlier turns of each conversation (``"role: text"`` lines); the assistant's answer
    to the turn being rewritten is never passed. ``translations`` are supplied per-language
    texts (``{language: text}``) that a backend may use instead of translating.

    Each returned item is the rewrite (``str``), ``None`` when the backend has none for that
    item (e.g. no translation into that language), or the ``Exception`` that made that item
    fail (e.g. a request that failed after its retries). The rephrase stage validates every
    rewrite and records the reasons and the fallback it used.

    Optional: ``fingerprint() -> str`` (model, options and prompt template: the stage's cache
    key) and ``cacheable = False`` for backends not worth caching (rule-based).
    """

    def rephrase(
        self,
        texts: Sequence[str],
        *,
        language: str,
        source_language: str,
        contexts: Sequence[str | None],
        translations: Sequence[dict | None],
    ) -> list[str | None | Exception]: ...


class PicklesByOptions:
    """Mixin: a backend pickles as the options it was built with and rebuilds when unpickled.

    The subclass stores its constructor's keyword arguments in ``self._options``.
    """

    _options: dict

    def __getstate__(self) -> dict:
        return self._options

    def __setstate__(self, options: dict) -> None:
        self.__init__(**options)
