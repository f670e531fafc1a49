"""The voice catalog: each engine's preset voices per language, plus cloning references.

A *voice* is a voice id string (it becomes ``supervision.speaker`` and part of the cut id). An
engine offers preset voices of its own (Kokoro's ``af_heart``, espeak's ``f2``, ...); engines
that clone a voice from a short recording (CosyVoice, Chatterbox, Index-TTS, FishSpeech,
Higgs-Audio) also offer every **cloning reference** of the catalog as a voice named after it.

A reference is a clip and its transcript, given in config::

    references:
      anna_en: {audio: refs/anna.wav, text: "The quick brown fox jumps.", language: en}
      kenji_ja: {audio: refs/kenji.wav, text: "今日はいい天気ですね。", language: ja}

either inline as a cloning engine's ``references:`` option, or in a catalog YAML file (a
``references:`` mapping, optionally ``engines: {name: options}`` for the preset side) passed as
the option's value. **Reference audio is an input only**: engines read it to condition the
voice; nothing of it (bytes or path) is written to cuts or exports, only the voice id.

Example::

    catalog = VoiceCatalog.from_yaml("configs/voices.yaml")
    for voice in catalog.voices_for("fishspeech", "en"):
        print(voice.name, voice.kind)
"""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lhotse_triplets.backends.registry import available, build, get_class
from lhotse_triplets.backends.tts.references import (
    PRESET,
    Voice,
    load_references,
    read_catalog_yaml,
)


def clones(engine: str) -> bool:
    """Whether TTS ``engine`` clones voices from references (its class says ``clones = True``)."""
    return bool(getattr(get_class("tts", engine), "clones", False))


class VoiceCatalog:
    """Preset voices of the engines and cloning references, per language.

    :param references: cloning references by name.
    :param engines: engine name -> the options to build it with (for its presets); engines not
        listed are built with their defaults.
    """

    def __init__(
        self,
        references: Mapping[str, Voice] | None = None,
        engines: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.references = dict(references or {})
        self.engines = {str(k): dict(v or {}) for k, v in (engines or {}).items()}
        self._presets: dict[tuple[str, str], list[str]] = {}
        self._built: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], base_dir: Path | None = None) -> "VoiceCatalog":
        """From ``{references: {...}, engines: {name: options}}``."""
        known = ("references", "engines", "allow_outside")
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"Voice catalog: unknown keys {unknown}; known: {', '.join(known)}")
        references = load_references(
            config.get("references"), base_dir, allow_outside=config.get("allow_outside") is True
        )
        return cls(references, config.get("engines"))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "VoiceCatalog":
        """From a catalog YAML file (relative audio paths are relative to the file)."""
        return cls.from_config(read_catalog_yaml(path), Path(path).parent)

    def options_for(self, engine: str) -> dict[str, Any]:
        """The options to build ``engine`` with: its configured ones, plus the references when
        it clones."""
        options = dict(self.engines.get(engine, {}))
        if clones(engine) and self.references and "references" not in options:
            options["references"] = {
                v.name: {"audio": v.audio, "text": v.text, "language": v.language}
                for v in self.references.values()
            }
        return options

    def presets(self, engine: str, language: str) -> list[str]:
        """The preset voice ids ``engine`` offers for ``language`` (``[]`` where it has none or
        cannot be built here)."""
        key = (engine, language)
        if key not in self._presets:
            try:
                tts = self._engine(engine)
                names = list(tts.voices(language))
            except Exception:  # not installed, no weights, language not spoken
                names = []
            refs = set(self.references)
            self._presets[key] = [n for n in names if n not in refs]
        return self._presets[key]

    def references_for(self, language: str) -> list[Voice]:
        """The cloning references recorded in ``language``."""
        return [v for v in self.references.values() if v.language == language]

    def voices_for(self, engine: str, language: str) -> list[Voice]:
        """Presets of ``engine`` in ``language``, then the references if ``engine`` clones."""
        out = [Voice(n, language, PRESET, engine) for n in self.presets(engine, language)]
        if clones(engine):
            out.extend(self.references_for(language))
        return out

    def rows(
        self, engines: Iterable[str] | None = None, languages: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """One row per (engine, language, voice): for listing the catalog."""
        engines = list(engines or available("tts"))
        rows = []
        for engine in engines:
            langs = list(languages) if languages else self._languages(engine)
            for language in langs:
                for voice in self.voices_for(engine, language):
                    rows.append(
                        {
                            "engine": engine,
                            "language": language,
                            "voice": voice.name,
                            "kind": voice.kind,
                            "reference": voice.audio or "",
                        }
                    )
        return rows

    def _languages(self, engine: str) -> list[str]:
        langs: set[str] = set()
        try:
            langs.update(self._engine(engine).languages())
        except Exception:
            pass
        if clones(engine):
            langs.update(v.language for v in self.references.values())
        return sorted(langs)

    def _engine(self, engine: str) -> Any:
        if engine not in self._built:
            self._built[engine] = build("tts", engine, **self.options_for(engine))
        return self._built[engine]
