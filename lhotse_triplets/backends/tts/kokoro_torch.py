"""Kokoro-82M in PyTorch (hexgrad's ``kokoro`` package): the official voices per language.

``KPipeline(lang_code, repo_id, model=KModel)`` per language, sharing one ``KModel``; the
pipeline yields one result per chunk of text, whose ``audio`` (24 kHz) is joined. Weights come
from the Hugging Face repo ``hexgrad/Kokoro-82M`` (or local ``config_path`` / ``model_path``;
voices as ``<voices_dir>/<voice>.pt``). For the packaged int8 ONNX model that runs offline here,
use the ``kokoro`` backend.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.backends._threads import torch_device
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._gpu import joined
from lhotse_triplets.backends.tts._text import (
    check_voice,
    check_voice_ids,
    checked_audio,
    speakable,
    unsupported_language,
)
from lhotse_triplets.errors import ItemError

#: ISO 639-1 code -> Kokoro's ``lang_code``.
LANG_CODES = {
    "en": "a",
    "fr": "f",
    "ja": "j",
    "zh": "z",
    "es": "e",
    "hi": "h",
    "it": "i",
    "pt": "p",
}

#: The official Kokoro-82M v1.0 voices (VOICES.md), per language.
VOICES: dict[str, tuple[str, ...]] = {
    "en": (
        "af_heart", "af_alloy", "af_aoede", "af_bella", "af_jessica", "af_kore", "af_nicole",
        "af_nova", "af_river", "af_sarah", "af_sky", "am_adam", "am_echo", "am_eric",
        "am_fenrir", "am_liam", "am_michael", "am_onyx", "am_puck", "am_santa",
        "bf_alice", "bf_emma", "bf_isabella", "bf_lily", "bm_daniel", "bm_fable", "bm_george",
        "bm_lewis",
    ),
    "fr": ("ff_siwis",),
    "ja": ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"),
    "zh": (
        "zf_xiaobei", "zf_xiaoni", "zf_xiaoxiao", "zf_xiaoyi", "zm_yunjian", "zm_yunxi",
        "zm_yunxia", "zm_yunyang",
    ),
    "es": ("ef_dora", "em_alex", "em_santa"),
    "hi": ("hf_alpha", "hf_beta", "hm_omega", "hm_psi"),
    "it": ("if_sara", "im_nicola"),
    "pt": ("pf_dora", "pm_alex", "pm_santa"),
}  # fmt: skip

SAMPLING_RATE = 24000


@register("tts", "kokoro_torch")
class KokoroTorchTTS(PicklesByOptions):
    """Kokoro-82M (PyTorch, ``pip install kokoro``) with its official voices, 24 kHz.

    :param repo_id: Hugging Face repo of the weights and voices.
    :param voices: override the voices offered, ``{language: [voice, ...]}``. A British
        English voice (``bf_*``/``bm_*``) is spoken by the British pipeline.
    :param speed: speaking speed.
    :param device: ``cuda``/``cpu`` (default: cuda when available).
    :param threads: torch intra-op threads on CPU (process-wide); default (``None``): this
        worker's limit (``engine.threads_per_worker``), or every usable CPU outside an executor.
    :param config_path: local ``config.json`` (with ``model_path``: no download).
    :param model_path: local ``kokoro-v1_0.pth``.
    :param voices_dir: local folder of ``<voice>.pt`` files.

    Example::

        tts = build("tts", "kokoro_torch", device="cuda")
        [audio] = tts.synthesize(["Quelle est la couleur du cube ?"], language="fr",
                                 voice="ff_siwis")
    """

    requires: ClassVar[list[tuple[str, str]]] = [("kokoro", "kokoro"), ("torch", "torch")]

    def __init__(
        self,
        repo_id: str = "hexgrad/Kokoro-82M",
        voices: Mapping[str, Sequence[str]] | None = None,
        speed: float = 1.0,
        device: str | None = None,
        config_path: str | None = None,
        model_path: str | None = None,
        voices_dir: str | None = None,
        threads: int | None = None,
    ) -> None:
        self._options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        chosen = {k: check_voice_ids(v) for k, v in dict(voices or VOICES).items()}
        unknown = sorted(set(chosen) - set(LANG_CODES))
        if unknown:
            raise ValueError(f"Kokoro does not speak {unknown}; it speaks: {', '.join(LANG_CODES)}")
        self._voices = chosen
        self.repo_id = repo_id
        self.speed = float(speed)
        self.device = device
        self.config_path = config_path
        self.model_path = model_path
        self.voices_dir = voices_dir
        self.threads = threads
        self._model: Any = None
        self._pipelines: dict[str, Any] = {}

    @property
    def sampling_rate(self) -> int:
        return SAMPLING_RATE

    def languages(self) -> list[str]:
        """ISO 639-1 codes offered."""
        return list(self._voices)

    def voices(self, language: str) -> list[str]:
        """The official voices of ``language``."""
        if language not in self._voices:
            raise unsupported_language("kokoro_torch", language, self.languages())
        return list(self._voices[language])

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform at 24 kHz per text."""
        check_voice(self, "kokoro_torch", language, voice)
        lang_code = LANG_CODES[language]
        if language == "en" and voice[:1] == "b":
            lang_code = "b"
        pipeline = self._pipeline(lang_code)
        pack = str(Path(self.voices_dir) / f"{voice}.pt") if self.voices_dir else voice
        out = []
        for text in texts:
            text = speakable(text, "kokoro_torch")
            chunks = [r.audio for r in pipeline(text, voice=pack, speed=self.speed)]
            chunks = [c for c in chunks if c is not None]
            if not chunks:
                raise ItemError(f"TTS kokoro_torch produced no audio for {text!r}")
            out.append(checked_audio(joined(chunks), "kokoro_torch", text))
        return out

    def _pipeline(self, lang_code: str) -> Any:
        if lang_code not in self._pipelines:
            from kokoro import KModel, KPipeline

            if self._model is None:
                try:
                    model = KModel(
                        repo_id=self.repo_id, config=self.config_path, model=self.model_path
                    )
                except Exception as e:
                    raise RuntimeError(
                        f"Cannot load Kokoro weights from {self.repo_id!r} (offline? pass "
                        f"config_path/model_path/voices_dir to local files): {e}"
                    ) from e
                self._model = model.to(torch_device(self.device, self.threads)).eval()
            self._pipelines[lang_code] = KPipeline(
                lang_code=lang_code, repo_id=self.repo_id, model=self._model
            )
        return self._pipelines[lang_code]
