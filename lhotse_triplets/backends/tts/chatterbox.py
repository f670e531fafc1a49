"""Chatterbox Multilingual (Resemble AI, ``pip install chatterbox-tts``): 23 languages, cloning.

``ChatterboxMultilingualTTS.from_pretrained(device)`` (or ``from_local(ckpt_dir, device)``) then
``generate(text, language_id=..., audio_prompt_path=...)`` returns a ``(1, T)`` tensor at
``model.sr`` (24 kHz). A reference voice passes its clip as ``audio_prompt_path`` (Chatterbox
needs no transcript); the preset ``default`` uses the model's built-in voice. For a reference
in another language than the text, ``cfg_weight`` 0 reduces accent transfer (Chatterbox's
advice): set ``cross_lingual_cfg_weight``.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.backends._threads import torch_device
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._gpu import as_float32
from lhotse_triplets.backends.tts._text import checked_audio, speakable
from lhotse_triplets.backends.tts.references import ReferenceVoices

#: ``chatterbox.mtl_tts.SUPPORTED_LANGUAGES`` (0.1.x).
LANGUAGES = (
    "ar", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "it", "ja", "ko", "ms", "nl",
    "no", "pl", "pt", "ru", "sv", "sw", "tr", "zh",
)  # fmt: skip

DEFAULT_VOICE = "default"


@register("tts", "chatterbox")
class ChatterboxTTS(ReferenceVoices, PicklesByOptions):
    """Chatterbox Multilingual with cloning references; ``default`` is its built-in voice.

    :param references: cloning references (see :mod:`lhotse_triplets.voices`).
    :param languages: ISO 639-1 codes offered.
    :param cross_lingual: offer references in every language.
    :param device: ``cuda``/``cpu``/``mps`` (default: cuda when available); on the CPU, torch
        uses this worker's thread limit (``engine.threads_per_worker``).
    :param ckpt_dir: local checkpoint folder (``from_local``) instead of the hub.
    :param exaggeration: emotion exaggeration (0.5 neutral).
    :param cfg_weight: classifier-free guidance weight (pace).
    :param temperature: sampling temperature.
    :param cross_lingual_cfg_weight: ``cfg_weight`` when the reference's language differs.
    """

    engine = "chatterbox"
    requires: ClassVar[list[tuple[str, str]]] = [("chatterbox", "chatterbox-tts")]

    def __init__(
        self,
        references: Mapping[str, Any] | str | Path | None = None,
        languages: Sequence[str] = LANGUAGES,
        cross_lingual: bool = False,
        device: str | None = None,
        ckpt_dir: str | None = None,
        exaggeration: float = 0.5,
        cfg_weight: float = 0.5,
        temperature: float = 0.8,
        cross_lingual_cfg_weight: float = 0.0,
    ) -> None:
        self._options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._init_voices(languages, [DEFAULT_VOICE], references, cross_lingual)
        self.device = device
        self.ckpt_dir = ckpt_dir
        self.exaggeration = float(exaggeration)
        self.cfg_weight = float(cfg_weight)
        self.temperature = float(temperature)
        self.cross_lingual_cfg_weight = float(cross_lingual_cfg_weight)
        self._model: Any = None

    @property
    def sampling_rate(self) -> int:
        return int(self._load().sr)

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform at the model's rate (24 kHz) per text."""
        reference = self._voice(language, voice)
        model = self._load()
        cfg = self.cfg_weight
        if reference is not None and reference.language != language:
            cfg = self.cross_lingual_cfg_weight
        out = []
        for text in texts:
            text = speakable(text, "chatterbox")
            wav = model.generate(
                text,
                language_id=language,
                audio_prompt_path=reference.audio if reference else None,
                exaggeration=self.exaggeration,
                cfg_weight=cfg,
                temperature=self.temperature,
            )
            out.append(checked_audio(as_float32(wav), "chatterbox", text))
        return out

    def _load(self) -> Any:
        if self._model is None:
            from chatterbox.mtl_tts import ChatterboxMultilingualTTS

            device = torch_device(self.device)
            if self.ckpt_dir:
                self._model = ChatterboxMultilingualTTS.from_local(self.ckpt_dir, device)
            else:
                self._model = ChatterboxMultilingualTTS.from_pretrained(device=device)
        return self._model
