"""Supplied translations of user turns, read from JSONL files and joined to cuts by id.

One JSON object per line, with the text and the conversation id under any of the usual names:

- ``hf_id`` / ``uid`` / ``id`` / ``conversation_id``: the source conversation id (the corpus'
  own ``id``, e.g. CLEVR's ``"000123"``: in the reference ``tts_inputs_<lang>.jsonl`` files
  ``hf_id == uid == `` the CLEVR row's ``id``, while ``idx``/``row_idx`` are positions and are
  not used);
- ``lang`` / ``language``, else the file name's ``_<lang>.jsonl`` suffix;
- ``text`` (``<image>`` placeholders are removed later, by the rephraser);
- ``turn`` (0-based user turn), default 0: such files translate first user turns.

Example::

    table = read_translation_files(["tts_inputs/"])      # a folder: every *.jsonl inside
    table[("000000", 0)]["fr"]  # '<image>\\nCombien de cylindres sont faits de métal ...'
"""

import json
import re
from collections.abc import Iterable
from pathlib import Path

_ID_KEYS = ("hf_id", "uid", "conversation_id", "id")
_LANG_IN_NAME = re.compile(r"[_.-]([a-z]{2})(?:[_-][A-Za-z]+)?\.jsonl$")


def read_translation_files(
    paths: Iterable[str | Path], skip_languages: Iterable[str] = ()
) -> dict[tuple[str, int], dict[str, str]]:
    """``(conversation id, turn) -> {language: text}`` from JSONL files (or folders of them).

    :param skip_languages: languages not to read (e.g. the source language).
    :raises ValueError: naming the file and line of a row without id, language or text.
    """
    skip = set(skip_languages)
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        files.extend(sorted(p.glob("*.jsonl")) if p.is_dir() else [p])
    table: dict[tuple[str, int], dict[str, str]] = {}
    for path in files:
        m = _LANG_IN_NAME.search(path.name)
        file_language = m.group(1) if m else None
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise ValueError(f"{path}:{n}: invalid JSON ({e})") from None
                cid = next((str(row[k]) for k in _ID_KEYS if row.get(k) is not None), None)
                language = row.get("lang") or row.get("language") or file_language
                text = row.get("text")
                if cid is None or language is None or not isinstance(text, str):
                    raise ValueError(
                        f"{path}:{n}: a translation needs an id ({'/'.join(_ID_KEYS)}), a "
                        f"language (lang, or _<lang>.jsonl in the file name) and a text"
                    )
                if language in skip:
                    continue
                table.setdefault((cid, int(row.get("turn", 0))), {})[language] = text
    return table
