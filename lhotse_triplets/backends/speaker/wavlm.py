"""WavLM speaker verification through transformers (``WavLMForXVector``): the x-vector head of
``microsoft/wavlm-base-plus-sv`` (512-d), the GPU path for speaker sets.

The weights come from the Hugging Face hub (or a local copy: pass ``model=`` a directory saved
with ``save_pretrained``); nothing is downloaded when ``HF_HUB_OFFLINE=1``. Clips are batched by
length and padded with an attention mask. WavLM base normalises its convolutional features over
time, so padding moves a clip's embedding slightly: ``batch_size=1`` gives each clip's own.
"""

from collections.abc import Sequence
from typing import ClassVar

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

DEFAULT_MODEL = "microsoft/wavlm-base-plus-sv"


@register("speaker", "wavlm")
class WavLMSpeaker(PicklesByOptions):
    """Speaker embeddings of 16 kHz mono clips with a WavLM x-vector model: ``(N, D)`` float32,
    L2-normalised (D = the model's ``xvector_output_dim``, 512 for the default).

    :param model: hub id or local directory of a ``WavLMForXVector`` checkpoint and its feature
        extractor.
    :param device: ``"auto"`` (a GPU when torch sees one), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    :param batch_size: clips per forward pass.
    :param threads: torch intra-op threads on CPU (process-wide); default (``None``): this
        worker's limit (``engine.threads_per_worker``), or every usable CPU outside an executor.
    :param min_seconds: shorter clips raise ``too_short``.

    Example::

        speaker = build("speaker", "wavlm", device="cuda", batch_size=32)
        vectors = speaker.embed(clips_16k)   # (N, 512)
    """

    requires: ClassVar[list[tuple[str, str]]] = [
        ("torch", "torch"),
        ("transformers", "transformers"),
    ]
    sampling_rate = 16000

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        batch_size: int = 16,
        threads: int | None = None,
        min_seconds: float = 0.5,
    ) -> None:
        self._options = {
            "model": model,
            "device": device,
            "batch_size": batch_size,
            "threads": threads,
            "min_seconds": min_seconds,
        }
        from transformers import AutoFeatureExtractor, WavLMForXVector

        self.device = torch_device(device, threads)
        self.batch_size = max(1, int(batch_size))
        self.min_seconds = min_seconds
        try:
            self._extractor = AutoFeatureExtractor.from_pretrained(model)
            self._model = WavLMForXVector.from_pretrained(model)
        except OSError as e:
            raise OSError(
                f"speaker backend wavlm cannot load {model!r} ({str(e).splitlines()[0]}); "
                "download it once with network access, or pass model= a local directory"
            ) from e
        self._model = self._model.eval().to(self.device)
        self.dimension = int(self._model.config.xvector_output_dim)

    def embed(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        """One L2-normalised row per clip (16 kHz mono float32).

        :raises ItemError: naming the first clip that is too short, silent or not finite.
        """
        import torch

        clips = checked_clips(
            audios, sampling_rate=self.sampling_rate, min_seconds=self.min_seconds, engine="wavlm"
        )
        out = np.zeros((len(clips), self.dimension), dtype=np.float32)
        for batch in length_batches([len(c) for c in clips], self.batch_size):
            inputs = self._extractor(
                [clips[i] for i in batch],
                sampling_rate=self.sampling_rate,
                padding=True,
                return_attention_mask=True,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                vectors = self._model(**inputs).embeddings
            out[batch] = vectors.float().cpu().numpy()
        check_rows(out, "wavlm")
        return unit_rows(out)
