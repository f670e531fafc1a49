"""Turning listed clips into kept clips: read and check the audio, run the ASR checks, the
optional IndexTTS extraction and the speaker encoder, a batch of clips at a time.

A clip failing a step is excluded with its reason (:mod:`.checks`, plus ``asr_failed``,
``indextts_failed`` and ``embedding_failed`` when a backend fails on that clip); the others go on.

Example::

    processor = ClipProcessor(build("speaker", "dummy"), language="en")
    kept, excluded = processor.run(clips)
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from lhotse import Recording

from lhotse_triplets.audio import resample
from lhotse_triplets.errors import ItemError, failure_reason
from lhotse_triplets.paths import safe_name
from lhotse_triplets.recipes.speakers.audio_list import Excluded, ListedClip
from lhotse_triplets.recipes.speakers.checks import (
    LoadedClip,
    check_transcript,
    load_clip,
    transcript_mismatch,
)

#: Clips read, transcribed and embedded together.
BATCH_SIZE = 16


@dataclass
class KeptClip:
    """A clip that passed every check: its transcript, recording, embedding, IndexTTS files."""

    clip: ListedClip
    text: str
    recording: Recording
    embedding: np.ndarray
    extracted: dict[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return float(self.recording.duration)


@dataclass
class _Pending:
    clip: ListedClip
    loaded: LoadedClip
    text: str
    extracted: dict[str, str] = field(default_factory=dict)


class ClipProcessor:
    """Checks, transcribes, extracts and embeds clips (see the module docstring).

    :param embedder: a ``speaker`` backend (``sampling_rate``, ``embed``).
    :param asr: an ``asr`` backend for ``transcript_mismatch`` and ``transcribe``, or ``None``.
    :param extractor: an IndexTTS extractor (``extract``), or ``None``.
    :param output_dir: where the extractor writes (``<output_dir>/<speaker>/``).
    :param transcribe: fill in missing transcripts with ``asr``.
    """

    def __init__(
        self,
        embedder: Any,
        *,
        language: str,
        min_duration: float = 1.0,
        max_duration: float = 20.0,
        asr: Any = None,
        max_error_rate: float = 0.5,
        transcribe: bool = False,
        extractor: Any = None,
        output_dir: Path | None = None,
    ) -> None:
        self.embedder = embedder
        self.language = language
        self.min_duration = min_duration
        self.max_duration = max_duration
        self.asr = asr
        self.max_error_rate = max_error_rate
        self.transcribe = transcribe
        self.extractor = extractor
        self.output_dir = output_dir

    def run(
        self, clips: Iterable[ListedClip], on_done: Callable[[int], None] | None = None
    ) -> tuple[list[KeptClip], list[Excluded]]:
        """The kept clips (in list order) and the excluded ones.

        :param on_done: called with the number of clips of each finished batch (progress).
        """
        kept: list[KeptClip] = []
        excluded: list[Excluded] = []
        for batch in _batches(clips, BATCH_SIZE):
            pending = self._load(batch, excluded)
            pending = self._check_transcripts(pending, excluded)
            pending = self._extract(pending, excluded)
            kept += self._embed(pending, excluded)
            if on_done is not None:
                on_done(len(batch))
        return kept, excluded

    def _load(self, batch: Sequence[ListedClip], excluded: list[Excluded]) -> list[_Pending]:
        out = []
        for clip in batch:
            try:
                loaded = load_clip(
                    clip.path,
                    clip.clip_id,
                    min_duration=self.min_duration,
                    max_duration=self.max_duration,
                )
                if not (self.transcribe and self.asr is not None):
                    check_transcript(clip.text)
            except ItemError as e:
                excluded.append(Excluded.of(clip, e))
                continue
            out.append(_Pending(clip, loaded, clip.text))
        return out

    def _check_transcripts(
        self, pending: list[_Pending], excluded: list[Excluded]
    ) -> list[_Pending]:
        """With ASR: fill in missing transcripts (``transcribe``), exclude mismatching ones."""
        if self.asr is None or not pending:
            return pending
        audios = [
            resample(p.loaded.audio, p.loaded.sampling_rate, self.asr.sampling_rate)
            for p in pending
        ]
        heard = _call_per_item(
            lambda items: self.asr.transcribe(items, languages=[self.language] * len(items)),
            audios,
        )
        out = []
        for p, text in zip(pending, heard, strict=True):
            error = self._transcript_error(p, text)
            if error is None:
                out.append(p)
            else:
                excluded.append(Excluded.of(p.clip, error))
        return out

    def _transcript_error(self, p: _Pending, heard: Any) -> ItemError | str | None:
        if isinstance(heard, BaseException):
            return f"asr_failed: {failure_reason(heard)}"
        heard = " ".join(str(heard).split())
        if not p.text.strip():
            p.text = heard
            return ItemError("empty_transcript: ASR heard nothing either") if not heard else None
        return transcript_mismatch(p.text, heard, self.language, self.max_error_rate)

    def _extract(self, pending: list[_Pending], excluded: list[Excluded]) -> list[_Pending]:
        """With the IndexTTS extractor: codes, mels and conditioning of each clip."""
        if self.extractor is None:
            return pending
        out = []
        for p in pending:
            target = self.output_dir / safe_name(p.clip.speaker)
            try:
                files = self.extractor.extract(
                    p.loaded.audio, p.loaded.sampling_rate, target, safe_name(p.clip.clip_id)
                )
                p.extracted = {k: str(files[k]) for k in ("codes", "mels", "condition")}
            except Exception as e:  # noqa: BLE001 - one clip failing never stops the set
                excluded.append(Excluded.of(p.clip, f"indextts_failed: {failure_reason(e)}"))
                continue
            out.append(p)
        return out

    def _embed(self, pending: list[_Pending], excluded: list[Excluded]) -> list[KeptClip]:
        rate = self.embedder.sampling_rate
        audios = [resample(p.loaded.audio, p.loaded.sampling_rate, rate) for p in pending]
        vectors = _call_per_item(self._embed_checked, audios)
        out = []
        for p, vector in zip(pending, vectors, strict=True):
            if isinstance(vector, BaseException):
                reason = f"embedding_failed: {failure_reason(vector)}"
                excluded.append(Excluded.of(p.clip, reason))
                continue
            out.append(KeptClip(p.clip, p.text, p.loaded.recording, vector, p.extracted))
        return out

    def _embed_checked(self, audios: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The embeddings of ``audios``; ``ValueError`` unless one finite row per clip."""
        vectors = np.asarray(self.embedder.embed(audios), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(audios):
            raise ValueError(
                f"speaker backend returned shape {vectors.shape} for {len(audios)} clips"
            )
        if not np.isfinite(vectors).all():
            raise ValueError("speaker backend returned NaN or infinite values")
        return list(vectors)


def _call_per_item(
    function: Callable[[Sequence[Any]], Sequence[Any]], items: Sequence[Any]
) -> list[Any]:
    """``function(items)``; when it raises or returns the wrong count, each item on its own,
    an item that fails alone giving its exception."""
    if not items:
        return []
    try:
        out = list(function(items))
        if len(out) == len(items):
            return out
    except Exception:  # noqa: BLE001 - retried per item below, which names the culprit
        pass
    results: list[Any] = []
    for item in items:
        try:
            single = list(function([item]))
            if len(single) != 1:
                raise ValueError(f"returned {len(single)} results for 1 clip")
            results.append(single[0])
        except Exception as e:  # noqa: BLE001
            results.append(e)
    return results


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
