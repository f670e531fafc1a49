"""CosyVoice 2 / 3 (FunAudioLLM): zero-shot voice cloning from a reference clip + transcript.

A reference in the prompt's language is spoken with ``inference_zero_shot(text, prompt_text,
prompt_wav)``; one in another language (``cross_lingual``) with ``inference_cross_lingual(text,
prompt_wav)``; ``instruct`` (e.g. "Speak slowly and calmly.") switches to
``inference_instruct2(text, instruct_text, prompt_wav)``. SFT speakers of a ``-SFT`` model are
presets (``inference_sft``). Each call yields ``{"tts_speech": (1, T) tensor}`` chunks at
``model.sample_rate``. CosyVoice is not on PyPI: clone the repository, ``pip install -r
requirements.txt`` and put it and ``third_party/Matcha-TTS`` on ``PYTHONPATH``. CosyVoice picks
its own device (a GPU when there is one); torch's CPU threads are held to this worker's limit.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.backends._threads import limit_torch_threads
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._gpu import joined
from lhotse_triplets.backends.tts._text import checked_audio, speakable
from lhotse_triplets.backends.tts.references import ReferenceVoices

#: CosyVoice 3 languages (CosyVoice 2: zh, en, ja, ko).
LANGUAGES = ("zh", "en", "ja", "ko", "de", "es", "fr", "it", "ru")

#: The system prompt CosyVoice 3 expects before the prompt text / instruction.
COSYVOICE3_PREFIX = "You are a helpful assistant.<|endofprompt|>"

INSTALL = "-r https://github.com/FunAudioLLM/CosyVoice (requirements.txt; repo on PYTHONPATH)"


@register("tts", "cosyvoice")
class CosyVoiceTTS(ReferenceVoices, PicklesByOptions):
    """CosyVoice 2/3 with cloning references (and SFT speakers as presets).

    :param model_dir: local model folder or ModelScope/HF id, e.g.
        ``pretrained_models/Fun-CosyVoice3-0.5B`` or ``pretrained_models/CosyVoice2-0.5B``.
    :param references: cloning references (see :mod:`lhotse_triplets.voices`).
    :param speakers: SFT speaker ids offered as presets in every language.
    :param languages: ISO 639-1 codes offered.
    :param cross_lingual: offer references in every language (spoken cross-lingually).
    :param instruct: an instruction for ``inference_instruct2`` (``None``: zero-shot).
    :param prompt_prefix: put before prompt text/instruction; default: CosyVoice 3's system
        prompt when ``model_dir`` names CosyVoice3, else nothing.
    :param speed: speaking speed.
    :param fp16: half precision (GPU).
    """

    engine = "cosyvoice"
    requires: ClassVar[list[tuple[str, str]]] = [("cosyvoice", INSTALL)]

    def __init__(
        self,
        model_dir: str = "pretrained_models/Fun-CosyVoice3-0.5B",
        references: Mapping[str, Any] | str | Path | None = None,
        speakers: Sequence[str] = (),
        languages: Sequence[str] = LANGUAGES,
        cross_lingual: bool = True,
        instruct: str | None = None,
        prompt_prefix: str | None = None,
        speed: float = 1.0,
        fp16: bool = False,
    ) -> None:
        self._options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._init_voices(languages, list(speakers), references, cross_lingual)
        self.model_dir = model_dir
        self.instruct = instruct
        if prompt_prefix is None:
            prompt_prefix = COSYVOICE3_PREFIX if "cosyvoice3" in model_dir.lower() else ""
        self.prompt_prefix = prompt_prefix
        self.speed = float(speed)
        self.fp16 = bool(fp16)
        self._model: Any = None
        self._takes_paths = True

    @property
    def sampling_rate(self) -> int:
        return int(self._load().sample_rate)

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform at the model's rate per text."""
        reference = self._voice(language, voice)
        model = self._load()
        out = []
        for text in texts:
            text = speakable(text, "cosyvoice")
            if reference is None:
                chunks = model.inference_sft(text, voice, stream=False, speed=self.speed)
            else:
                prompt = self._prompt_wav(reference.audio)
                if self.instruct or reference.language == language:
                    # instruct2 conditions on the instruction, zero-shot on the transcript
                    infer, prompt_text = (
                        (model.inference_instruct2, self.instruct)
                        if self.instruct
                        else (model.inference_zero_shot, reference.text)
                    )
                    chunks = infer(
                        text,
                        self.prompt_prefix + prompt_text,
                        prompt,
                        stream=False,
                        speed=self.speed,
                    )
                else:
                    chunks = model.inference_cross_lingual(
                        self.prompt_prefix + text, prompt, stream=False, speed=self.speed
                    )
            audio = joined(chunk["tts_speech"] for chunk in chunks)
            out.append(checked_audio(audio, "cosyvoice", text))
        return out

    def _prompt_wav(self, path: str) -> Any:
        """The prompt as the installed CosyVoice takes it: a path (AutoModel), else 16 kHz."""
        if self._takes_paths:
            return path
        from cosyvoice.utils.file_utils import load_wav

        return load_wav(path, 16000)

    def _load(self) -> Any:
        if self._model is None:
            from cosyvoice.cli import cosyvoice as cli

            limit_torch_threads()
            if hasattr(cli, "AutoModel"):
                self._model = cli.AutoModel(model_dir=self.model_dir, fp16=self.fp16)
            else:  # releases before AutoModel take a loaded 16 kHz prompt
                self._model = cli.CosyVoice2(self.model_dir, fp16=self.fp16)
                self._takes_paths = False
        return self._model
