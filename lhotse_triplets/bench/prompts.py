"""Benchmark prompt sets: JSONL files in the reference formats, one file per language.

Two formats are read (one object per line):

- ``tts_inputs_<lang>.jsonl``: ``{"uid": "000005", "lang": "en", "text": "<image>\\nIs ..."}``
- ``<lang>.jsonl``: ``{"sid": "q1", "text": "Is ..."}``

Placeholders such as ``<image>`` are removed; empty texts are skipped with a warning.
"""

import json
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"<\s*(image|video|audio)\s*>", re.IGNORECASE)


def clean_prompt(text: str) -> str:
    """``text`` without ``<image>``-style placeholders, whitespace collapsed."""
    return " ".join(_PLACEHOLDER.sub(" ", text).split())


def prompt_file(language: str, prompt_dir: str | Path) -> Path:
    """The prompt file of ``language`` in ``prompt_dir``: ``tts_inputs_<lang>.jsonl`` or
    ``<lang>.jsonl``."""
    prompt_dir = Path(prompt_dir)
    for name in (f"tts_inputs_{language}.jsonl", f"{language}.jsonl"):
        if (prompt_dir / name).is_file():
            return prompt_dir / name
    raise FileNotFoundError(
        f"No prompt file for {language!r} in {prompt_dir} "
        f"(looked for tts_inputs_{language}.jsonl and {language}.jsonl)"
    )


def load_prompts(
    path: str | Path, language: str, limit: int | None = None
) -> list[tuple[str, str]]:
    """``(prompt_id, text)`` pairs of a prompt file, in file order, at most ``limit``.

    :param path: a JSONL file with ``uid`` or ``sid`` and ``text`` per line.
    :param language: the language the prompts are in; a line whose ``lang`` differs is an error.
    :raises ValueError: naming the file and line of a malformed line or a duplicate id.

    Example::

        prompts = load_prompts("tts_inputs_en.jsonl", "en", limit=60)
    """
    path = Path(path)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                item = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{where}: not JSON ({e})") from None
            pid = item.get("uid", item.get("sid")) if isinstance(item, dict) else None
            if pid is None or not isinstance(item.get("text"), str):
                raise ValueError(f"{where}: needs 'uid' or 'sid' and a 'text' string")
            if item.get("lang", language) != language:
                raise ValueError(f"{where}: lang is {item['lang']!r}, expected {language!r}")
            pid = str(pid)
            if pid in seen:
                raise ValueError(f"{where}: duplicate prompt id {pid!r}")
            text = clean_prompt(item["text"])
            if not text:
                logger.warning("%s: prompt %s is empty once placeholders are removed", where, pid)
                continue
            seen.add(pid)
            out.append((pid, text))
    return out
