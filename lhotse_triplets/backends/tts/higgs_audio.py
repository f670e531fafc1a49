"""Higgs Audio v2 (Boson AI, ``boson_multimodal``): an audio LLM that speaks a ChatML dialogue.

``HiggsAudioServeEngine(model_path, audio_tokenizer_path, device=...)`` then
``generate(chat_ml_sample=ChatMLSample(messages=[...]), max_new_tokens, temperature, top_p,
top_k, stop_strings)`` returns a response with ``audio`` (numpy) and ``sampling_rate``. A
cloning reference is given in context, as in Higgs-Audio's own voice-cloning example: a user
turn with the reference transcript, an assistant turn with the reference audio
(``AudioContent``, base64), then the user turn to speak. The preset ``default`` lets the model
choose a voice (the scene description sets the recording conditions). Install from the
repository (``git clone https://github.com/boson-ai/higgs-audio && pip install -e .``).
"""

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.audio import resample, to_mono_float32
from lhotse_triplets.backends._threads import torch_device
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._text import checked_audio, speakable
from lhotse_triplets.backends.tts.references import ReferenceVoices

LANGUAGES = ("en", "zh", "de", "fr", "es", "ja", "ko")

SAMPLING_RATE = 24000

SYSTEM_PROMPT = (
    "Generate audio following instruction.\n\n<|scene_desc_start|>\n"
    "Audio is recorded from a quiet room.\n<|scene_desc_end|>"
)

DEFAULT_VOICE = "default"


@register("tts", "higgs_audio")
class HiggsAudioTTS(ReferenceVoices, PicklesByOptions):
    """Higgs Audio v2 generation with in-context cloning references, 24 kHz.

    :param model_path: generation model (hub id or local folder).
    :param audio_tokenizer_path: audio tokenizer (hub id or local folder).
    :param references: cloning references (see :mod:`lhotse_triplets.voices`).
    :param languages: ISO 639-1 codes offered.
    :param cross_lingual: offer every reference in every language.
    :param device: ``cuda``/``cpu`` (default: cuda when available); on the CPU, torch uses this
        worker's thread limit (``engine.threads_per_worker``).
    :param system_prompt: the system turn (scene description).
    :param max_new_tokens, temperature, top_p, top_k: sampling settings.
    """

    engine = "higgs_audio"
    requires: ClassVar[list[tuple[str, str]]] = [
        ("boson_multimodal", "git+https://github.com/boson-ai/higgs-audio")
    ]

    def __init__(
        self,
        model_path: str = "bosonai/higgs-audio-v2-generation-3B-base",
        audio_tokenizer_path: str = "bosonai/higgs-audio-v2-tokenizer",
        references: Mapping[str, Any] | str | Path | None = None,
        languages: Sequence[str] = LANGUAGES,
        cross_lingual: bool = False,
        device: str | None = None,
        system_prompt: str = SYSTEM_PROMPT,
        max_new_tokens: int = 1024,
        temperature: float = 0.3,
        top_p: float = 0.95,
        top_k: int = 50,
    ) -> None:
        self._options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._init_voices(languages, [DEFAULT_VOICE], references, cross_lingual)
        self.model_path = model_path
        self.audio_tokenizer_path = audio_tokenizer_path
        self.device = device
        self.system_prompt = system_prompt
        self.sampling = dict(
            max_new_tokens=int(max_new_tokens),
            temperature=float(temperature),
            top_p=float(top_p),
            top_k=int(top_k),
            stop_strings=["<|end_of_text|>", "<|eot_id|>"],
        )
        self._engine: Any = None

    @property
    def sampling_rate(self) -> int:
        return SAMPLING_RATE

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform at 24 kHz per text."""
        from boson_multimodal.data_types import AudioContent, ChatMLSample, Message

        reference = self._voice(language, voice)
        engine = self._load()
        context = [Message(role="system", content=self.system_prompt)]
        if reference is not None:
            clip = base64.b64encode(Path(reference.audio).read_bytes()).decode("ascii")
            context += [
                Message(role="user", content=reference.text),
                Message(
                    role="assistant",
                    content=AudioContent(raw_audio=clip, audio_url="placeholder"),
                ),
            ]
        out = []
        for text in texts:
            text = speakable(text, "higgs_audio")
            sample = ChatMLSample(messages=[*context, Message(role="user", content=text)])
            response = engine.generate(chat_ml_sample=sample, **self.sampling)
            audio = resample(
                to_mono_float32(response.audio), int(response.sampling_rate), SAMPLING_RATE
            )
            out.append(checked_audio(audio, "higgs_audio", text))
        return out

    def _load(self) -> Any:
        if self._engine is None:
            from boson_multimodal.serve.serve_engine import HiggsAudioServeEngine

            self._engine = HiggsAudioServeEngine(
                self.model_path, self.audio_tokenizer_path, device=torch_device(self.device)
            )
        return self._engine
