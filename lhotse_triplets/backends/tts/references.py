"""Cloning references for the engines that clone: which reference a voice id names.

A cloning backend takes ``references`` (a mapping ``{name: {audio, text, language}}`` or the
path of a voice catalog YAML, see :mod:`lhotse_triplets.voices`) and offers each reference as a
voice of its language (of every language with ``cross_lingual``). The reference clip is only
read to condition the engine; it is never part of the output.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lhotse_triplets.backends.tts._text import unknown_voice, unsupported_language
from lhotse_triplets.voices import Voice, load_references


class ReferenceVoices:
    """Mixin: preset voices per language plus cloning references as voices.

    The subclass calls :meth:`_init_voices` in ``__init__`` and :meth:`_voice` in
    ``synthesize``; it sets ``engine`` (its registry name, for messages).
    """

    clones = True
    engine = "tts"

    def _init_voices(
        self,
        languages: Sequence[str],
        presets: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
        references: Mapping[str, Any] | str | Path | None = None,
        cross_lingual: bool = False,
    ) -> None:
        self.references: dict[str, Voice] = load_references(references)
        self.cross_lingual = bool(cross_lingual)
        self._languages = list(languages)
        if isinstance(presets, Mapping):
            self._presets = {str(k): [str(v) for v in vs] for k, vs in presets.items()}
        else:
            self._presets = {lang: [str(v) for v in (presets or [])] for lang in self._languages}
        clash = sorted(set(self.references) & {v for vs in self._presets.values() for v in vs})
        if clash:
            raise ValueError(f"{self.engine}: reference names {clash} clash with preset voices")
        outside = [r.name for r in self.references.values() if r.language not in self._languages]
        if outside and not self.cross_lingual:
            raise ValueError(
                f"{self.engine}: references {outside} are in languages it does not speak; "
                f"it speaks: {', '.join(self._languages)}"
            )

    def languages(self) -> list[str]:
        """ISO 639-1 codes this engine speaks."""
        return list(self._languages)

    def voices(self, language: str) -> list[str]:
        """Preset voices of ``language``, then the references recorded in it (all references
        when ``cross_lingual``)."""
        if language not in self._languages:
            raise unsupported_language(self.engine, language, self._languages)
        refs = [
            r.name for r in self.references.values() if self.cross_lingual or r.language == language
        ]
        return [*self._presets.get(language, []), *refs]

    def _voice(self, language: str, voice: str) -> Voice | None:
        """The reference ``voice`` names, ``None`` for a preset; ``ValueError`` if unknown."""
        voices = self.voices(language)
        if voice not in voices:
            raise unknown_voice(self.engine, voice, language, voices)
        return self.references.get(voice)
