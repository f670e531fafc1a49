"""ECAPA-TDNN speaker embeddings through SpeechBrain (``speechbrain/spkrec-ecapa-voxceleb``,
192-d), a GPU path for speaker sets.

Install with ``pip install speechbrain`` (not part of any extra: it pulls torchaudio). The
weights come from the Hugging Face hub into ``savedir`` (or ``source=`` a local directory).
Clips are batched by length, zero-padded, with their relative lengths passed as ``wav_lens``.
"""

import importlib.util
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.backends._threads import torch_device
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.speaker._clips import (
    check_rows,
    checked_clips,
    length_batches,
)
from lhotse_triplets.metrics import unit_rows

DEFAULT_SOURCE = "speechbrain/spkrec-ecapa-voxceleb"
INSTALL = "pip install speechbrain"


def _encoder_classifier() -> Any:
    """SpeechBrain's ``EncoderClassifier`` (``speechbrain.inference.speaker`` since 1.0,
    ``speechbrain.pretrained`` before); ``ImportError`` naming the install when absent."""
    if importlib.util.find_spec("speechbrain") is None:
        raise ImportError(f"EcapaSpeaker (ecapa) needs speechbrain: {INSTALL}")
    try:
        from speechbrain.inference.speaker import EncoderClassifier
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("speechbrain.inference"):
            raise
        from speechbrain.pretrained import EncoderClassifier  # SpeechBrain < 1.0
    return EncoderClassifier


@register("speaker", "ecapa")
class EcapaSpeaker(PicklesByOptions):
    """Speaker embeddings of 16 kHz mono clips with SpeechBrain's ECAPA-TDNN: ``(N, 192)``
    float32, L2-normalised.

    :param source: hub id or local directory of a SpeechBrain speaker-embedding model.
    :param savedir: where SpeechBrain keeps the downloaded model; default: its own choice.
    :param device: ``"auto"`` (a GPU when torch sees one), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    :param batch_size: clips per forward pass.
    :param threads: torch intra-op threads on CPU (process-wide); default (``None``): this
        worker's limit (``engine.threads_per_worker``), or every usable CPU outside an executor.
    :param min_seconds: shorter clips raise ``too_short``.

    Example::

        speaker = build("speaker", "ecapa", device="cuda")
        vectors = speaker.embed(clips_16k)   # (N, 192)
    """

    # speechbrain is checked in __init__, so that the error names its own install (no extra)
    requires: ClassVar[list[tuple[str, str]]] = [("torch", "torch")]
    sampling_rate = 16000

    def __init__(
        self,
        source: str = DEFAULT_SOURCE,
        savedir: str | None = None,
        device: str = "auto",
        batch_size: int = 16,
        threads: int | None = None,
        min_seconds: float = 0.5,
    ) -> None:
        self._options = {
            "source": source,
            "savedir": savedir,
            "device": device,
            "batch_size": batch_size,
            "threads": threads,
            "min_seconds": min_seconds,
        }
        encoder_classifier = _encoder_classifier()
        self.device = torch_device(device, threads)
        self.batch_size = max(1, int(batch_size))
        self.min_seconds = min_seconds
        self._model = encoder_classifier.from_hparams(
            source=source, savedir=savedir, run_opts={"device": self.device}
        )
        self._model.eval()

    def embed(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        """One L2-normalised row per clip (16 kHz mono float32).

        :raises ItemError: naming the first clip that is too short, silent or not finite.
        """
        import torch

        clips = checked_clips(
            audios, sampling_rate=self.sampling_rate, min_seconds=self.min_seconds, engine="ecapa"
        )
        rows: dict[int, np.ndarray] = {}
        for batch in length_batches([len(c) for c in clips], self.batch_size):
            longest = max(len(clips[i]) for i in batch)
            wavs = np.zeros((len(batch), longest), dtype=np.float32)
            for row, i in enumerate(batch):
                wavs[row, : len(clips[i])] = clips[i]
            lengths = torch.tensor([len(clips[i]) / longest for i in batch])
            with torch.inference_mode():
                vectors = self._model.encode_batch(torch.from_numpy(wavs), wav_lens=lengths)
            vectors = vectors.reshape(len(batch), -1).float().cpu().numpy()
            rows.update(zip(batch, vectors, strict=True))
        if not rows:
            return np.zeros((0, 192), dtype=np.float32)
        out = np.stack([rows[i] for i in range(len(clips))]).astype(np.float32)
        check_rows(out, "ecapa")
        return unit_rows(out)
