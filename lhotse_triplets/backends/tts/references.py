"""Cloning references for the engines that clone: which reference a voice id names.

A cloning backend takes ``references`` (a mapping ``{name: {audio, text, language}}`` or the
path of a voice catalog YAML, see :mod:`lhotse_triplets.voices`) and offers each reference as a
voice of its language (of every language with ``cross_lingual``). The reference clip is only
read to condition the engine; it is never part of the output.

Where reference audio may lie:

- listed in a **references file** (a catalog YAML, or JSON): a relative ``audio`` path is read
  relative to the file's folder, and every path (relative, absolute, ``~``, or through a
  symlink) must resolve inside that folder; one that leaves it is refused
  (``outside_root: reference audio ...``), unless the file says ``allow_outside: true`` (or the
  caller passes ``allow_outside=True``);
- given **inline** (a ``references:`` mapping in the run config or a backend's options): the
  paths are the user's own, written in their own config, so they are resolved (relative ones
  against the working directory) but not confined.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lhotse_triplets.backends.tts._text import check_voice, unsupported_language
from lhotse_triplets.errors import ItemError
from lhotse_triplets.paths import inside

#: What a voice id may contain (it becomes part of file names and cut ids).
SAFE_VOICE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
#: An ISO 639-1 code (two lowercase letters).
ISO_639_1 = re.compile(r"^[a-z]{2}$")

PRESET = "preset"
REFERENCE = "reference"


@dataclass(frozen=True)
class Voice:
    """One voice of the catalog.

    :param name: the voice id.
    :param language: ISO 639-1 code it is offered for.
    :param kind: ``"preset"`` (the engine's own voice) or ``"reference"`` (a cloning reference).
    :param engine: the engine of a preset; ``None`` for a reference (any cloning engine).
    :param audio: the reference clip (absolute path); ``None`` for a preset.
    :param text: the reference clip's transcript; ``None`` for a preset.
    """

    name: str
    language: str
    kind: str = PRESET
    engine: str | None = None
    audio: str | None = None
    text: str | None = None

    @property
    def is_reference(self) -> bool:
        return self.kind == REFERENCE


def reference_voice(
    name: str,
    spec: Mapping[str, Any],
    base_dir: Path | None = None,
    *,
    allow_outside: bool = False,
) -> Voice:
    """A reference :class:`Voice` from ``{audio, text, language}``; ``ValueError`` naming it.

    :param base_dir: the folder of the references file the entry comes from: a relative
        ``audio`` path is read relative to it, and the audio must lie inside it. ``None`` (an
        inline reference): the path is resolved but not confined.
    :param allow_outside: accept audio outside ``base_dir``.
    """
    name = str(name)
    if not SAFE_VOICE_ID.match(name):
        raise ValueError(f"Reference name {name!r} may only use [A-Za-z0-9_.-]")
    if not isinstance(spec, Mapping):
        raise ValueError(f"Reference {name!r} must be {{audio, text, language}}, got {spec!r}")
    unknown = sorted(set(spec) - {"audio", "text", "language"})
    if unknown:
        raise ValueError(
            f"Reference {name!r}: unknown keys {unknown}; known: audio, text, language"
        )
    audio, text, language = spec.get("audio"), spec.get("text"), spec.get("language")
    if not audio:
        raise ValueError(f"Reference {name!r} has no audio path")
    path = _audio_path(name, str(audio), base_dir, allow_outside)
    if not path.is_file():
        raise ValueError(f"Reference {name!r}: audio file {str(path)!r} does not exist")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"Reference {name!r} needs the transcript of its audio as 'text'")
    if not isinstance(language, str) or not ISO_639_1.match(language):
        raise ValueError(
            f"Reference {name!r} needs 'language' as an ISO 639-1 code (e.g. en), got {language!r}"
        )
    return Voice(name, language, REFERENCE, None, str(path.resolve()), text.strip())


def _audio_path(name: str, audio: str, base_dir: Path | None, allow_outside: bool) -> Path:
    """The reference's audio path, resolved; confined to ``base_dir`` when there is one."""
    path = Path(audio).expanduser()
    try:
        if base_dir is None:
            return path.resolve()
        return inside(path, base_dir, what="reference audio", allow_outside=allow_outside)
    except ItemError as e:
        raise ValueError(f"Reference {name!r}: {e.reason}") from None
    except (OSError, ValueError, RuntimeError) as e:  # NUL byte, symlink loop, name too long
        raise ValueError(
            f"Reference {name!r}: audio path {audio[:200]!r} cannot be resolved ({e})"
        ) from None


def read_catalog_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Voice catalog {str(path)!r} does not exist")
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"Voice catalog {str(path)!r} must be a mapping")
    return dict(data)


def load_references(
    references: Mapping[str, Any] | str | Path | None,
    base_dir: Path | None = None,
    *,
    allow_outside: bool = False,
) -> dict[str, Voice]:
    """Cloning references by name, from a mapping or a catalog YAML/JSON file (its
    ``references:``; audio confined to the file's folder unless the file says
    ``allow_outside: true``).

    :param base_dir: the folder a mapping's relative audio paths are read from and confined to
        (the folder of the file it came from); ``None`` for an inline mapping (not confined).
    :param allow_outside: accept reference audio outside ``base_dir`` (or the file's folder).
    :raises ValueError: for a bad entry, naming it and what is wrong.
    """
    if references is None:
        return {}
    if isinstance(references, (str, Path)):
        path = Path(references)
        data = read_catalog_yaml(path)
        allow_outside = allow_outside or data.get("allow_outside") is True
        return load_references(data.get("references", {}), path.parent, allow_outside=allow_outside)
    if not isinstance(references, Mapping):
        raise ValueError(f"references must be a mapping or a YAML path, got {references!r}")
    return {
        str(k): reference_voice(k, v, base_dir, allow_outside=allow_outside)
        for k, v in references.items()
    }


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
        allow_outside: bool = False,
    ) -> None:
        self.references: dict[str, Voice] = load_references(references, allow_outside=allow_outside)
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
        check_voice(self, self.engine, language, voice)
        return self.references.get(voice)
