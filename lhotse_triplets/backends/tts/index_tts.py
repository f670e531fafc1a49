"""Index-TTS 2 (bilibili, ``indextts``): zero-shot cloning with emotion control, zh and en.

``IndexTTS2(cfg_path=<model_dir>/config.yaml, model_dir=...)`` then ``infer(spk_audio_prompt=
<reference clip>, text=..., output_path=<wav>)`` writes a WAV that is read back. Every voice is
a cloning reference (Index-TTS has no preset voices); the reference's timbre carries across
languages, so references are offered in every language by default. Install from the repository
(``git clone https://github.com/index-tts/index-tts && uv sync``) and download the checkpoints.
torch's CPU threads are held to this worker's limit (``engine.threads_per_worker``).
"""

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.audio import resample, to_mono_float32
from lhotse_triplets.backends._threads import limit_torch_threads
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._text import checked_audio, speakable
from lhotse_triplets.backends.tts.references import ReferenceVoices
from lhotse_triplets.errors import ItemError

LANGUAGES = ("zh", "en")

SAMPLING_RATE = 22050


@register("tts", "index_tts")
class IndexTTS2TTS(ReferenceVoices, PicklesByOptions):
    """Index-TTS 2 over cloning references, 22.05 kHz.

    :param model_dir: the checkpoints folder (holds ``config.yaml``).
    :param references: cloning references (see :mod:`lhotse_triplets.voices`).
    :param languages: ISO 639-1 codes offered.
    :param cross_lingual: offer every reference in every language.
    :param use_fp16: half precision (GPU).
    :param device: e.g. ``cuda:0`` (default: Index-TTS's choice).
    :param emo_alpha: emotion strength; ``emo_text`` an emotion description (``use_emo_text``).
    """

    engine = "index_tts"
    requires: ClassVar[list[tuple[str, str]]] = [
        ("indextts", "git+https://github.com/index-tts/index-tts")
    ]

    def __init__(
        self,
        model_dir: str = "checkpoints",
        references: Mapping[str, Any] | str | Path | None = None,
        languages: Sequence[str] = LANGUAGES,
        cross_lingual: bool = True,
        use_fp16: bool = False,
        device: str | None = None,
        emo_alpha: float = 1.0,
        emo_text: str | None = None,
    ) -> None:
        self._options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._init_voices(languages, [], references, cross_lingual)
        self.model_dir = model_dir
        self.use_fp16 = bool(use_fp16)
        self.device = device
        self.emo_alpha = float(emo_alpha)
        self.emo_text = emo_text
        self._model: Any = None

    @property
    def sampling_rate(self) -> int:
        return SAMPLING_RATE

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform at 22.05 kHz per text."""
        import soundfile as sf

        reference = self._voice(language, voice)
        model = self._load()
        extra: dict[str, Any] = {"emo_alpha": self.emo_alpha}
        if self.emo_text:
            extra.update(use_emo_text=True, emo_text=self.emo_text)
        out = []
        with tempfile.TemporaryDirectory(prefix="index_tts_") as tmp:
            for i, text in enumerate(texts):
                text = speakable(text, "index_tts")
                path = Path(tmp) / f"{i}.wav"
                model.infer(
                    spk_audio_prompt=reference.audio,
                    text=text,
                    output_path=str(path),
                    verbose=False,
                    **extra,
                )
                if not path.is_file():
                    raise ItemError(f"TTS index_tts wrote no audio for {text!r}")
                audio, rate = sf.read(path, dtype="float32")
                audio = resample(to_mono_float32(audio), rate, SAMPLING_RATE)
                out.append(checked_audio(audio, "index_tts", text))
        return out

    def _load(self) -> Any:
        if self._model is None:
            from indextts.infer_v2 import IndexTTS2

            limit_torch_threads()
            options: dict[str, Any] = {"use_fp16": self.use_fp16}
            if self.device:
                options["device"] = self.device
            self._model = IndexTTS2(
                cfg_path=str(Path(self.model_dir) / "config.yaml"),
                model_dir=self.model_dir,
                **options,
            )
        return self._model
