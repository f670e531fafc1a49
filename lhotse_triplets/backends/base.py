"""The small Protocols every backend implements. Batch APIs everywhere: lists in, lists out."""

from typing import List, Optional, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class TTSBackend(Protocol):
    """Text to speech. ``synthesize`` returns one float32 mono waveform per text."""

    @property
    def sampling_rate(self) -> int: ...

    def languages(self) -> List[str]: ...

    def voices(self, language: str) -> List[str]: ...

    def synthesize(
        self, texts: Sequence[str], *, language: str, voice: str
    ) -> List[np.ndarray]: ...


@runtime_checkable
class ASRBackend(Protocol):
    """Speech to text. Audio is float32 mono at ``sampling_rate`` (16 kHz)."""

    sampling_rate: int

    def transcribe(
        self, audios: Sequence[np.ndarray], *, languages: Sequence[Optional[str]]
    ) -> List[str]: ...


@runtime_checkable
class EmbedBackend(Protocol):
    """Sentence embeddings; :func:`lhotse_triplets.metrics.cosine` compares them."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class MOSBackend(Protocol):
    """Reference-free naturalness (MOS, 1..5) of float32 mono audio at ``sampling_rate``."""

    sampling_rate: int

    def predict(self, audios: Sequence[np.ndarray]) -> List[float]: ...


@runtime_checkable
class RephraseBackend(Protocol):
    """Rewrite user turns in spoken style, in the target language.

    Each returned item is the rewrite, or ``None`` when the backend has none for that item
    (e.g. no translation into that language); the stage then records the item as failed.
    """

    def rephrase(
        self,
        texts: Sequence[str],
        *,
        language: str,
        source_language: str,
        contexts: Sequence[Optional[str]],
        translations: Sequence[Optional[dict]],
    ) -> List[Optional[str]]: ...
