"""The selection file: per language, the TTS engine (with its options) and the voices to use.

``lhotse-triplets bench select`` writes it; the synthesize stage reads it
(``synthesize.selection`` in a config)::

    languages:
      en:
        engine: kokoro            # registry name
        label: kokoro             # the benchmark's label for it
        options: {}               # constructor options used in the benchmark
        voices: [jf_alpha, jm_kumo, jf_nezumi]
        good_ratio: 0.95          # ... and what the benchmark measured (informative)

Example::

    choices = read_selection("selection.yaml")
    choices["en"].engine, choices["en"].voices
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Choice:
    """The engine and voices chosen for one language."""

    engine: str
    voices: list[str]
    options: dict[str, Any] = field(default_factory=dict)


def write_selection(path: str | Path, selection: dict[str, Any], header: str | None = None) -> Path:
    """Write a selection (``{"languages": {lang: {engine, options, voices, ...}}, ...}``) as YAML,
    with ``header`` as a comment line; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    comment = f"# {header}\n" if header else ""
    path.write_text(comment + yaml.safe_dump(selection, sort_keys=False, allow_unicode=True))
    return path


def read_selection(path: str | Path) -> dict[str, Choice]:
    """language -> :class:`Choice` from a selection YAML (see the module doc).

    :raises ValueError: naming the file and the language of a malformed entry.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"Cannot read selection {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("languages"), dict):
        raise ValueError(f"{path} is not a selection file: it needs a 'languages:' mapping")
    out = {}
    for lang, entry in data["languages"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("engine"), str):
            raise ValueError(f"{path}: languages.{lang} needs an 'engine' name")
        voices = entry.get("voices") or []
        if not isinstance(voices, list) or not all(isinstance(v, str) for v in voices):
            raise ValueError(f"{path}: languages.{lang}.voices must be a list of voice ids")
        options = entry.get("options") or {}
        if not isinstance(options, dict):
            raise ValueError(f"{path}: languages.{lang}.options must be a mapping")
        out[str(lang)] = Choice(entry["engine"], list(voices), dict(options))
    return out
