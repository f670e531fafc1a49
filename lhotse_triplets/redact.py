"""Secrets and cloning references kept out of everything a run writes for people to read or share.

:func:`redact` is applied to every configuration or option mapping before it is written
(``config.yaml``, dataset cards, NeMo YAML comments, reports, logs):

- a value under a key named like a secret (``api_key``, ``token``, ``secret``, ``password``,
  ``authorization``, ``credentials``...) becomes ``"<redacted>"``;
- a value under a key naming a voice-cloning reference (``references``, ``ref_audio``,
  ``ref_text``, ``prompt_wav``, ``speaker_wav``...) becomes ``"<reference sha1:...>"``: a digest,
  so that a changed reference is still noticed when two configurations are compared, while the
  paths, transcripts and audio never appear.

Example::

    >>> redact({"tts": {"name": "openai_speech", "options": {"api_key": "sk-1",
    ...         "references": {"anna": {"audio": "anna.wav", "text": "Hello"}}}}})
    {'tts': {'name': 'openai_speech', 'options': {'api_key': '<redacted>',
     'references': '<reference sha1:2a1f...>'}}}
"""

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

#: Keys whose values are secrets (matched anywhere in the key, case-insensitively).
SECRET_KEY = re.compile(
    r"api[_-]?key|(?:^|[_-])token(?:$|[_-])|secret|passw(or)?d|authori[sz]ation|^auth$|credential|bearer|"
    r"private[_-]?key|access[_-]?key|cookie",
    re.IGNORECASE,
)
#: Keys whose values name or hold voice-cloning references (audio paths, transcripts).
REFERENCE_KEY = re.compile(
    r"^references?$|^ref_|_ref$|reference_(audio|text|wav|path)|^prompt_(audio|text|wav|speech)$|"
    r"^speaker_(wav|audio)$|^audio_prompt",
    re.IGNORECASE,
)
REDACTED = "<redacted>"


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY.search(key))


def is_reference_key(key: object) -> bool:
    return isinstance(key, str) and bool(REFERENCE_KEY.search(key))


def reference_digest(value: Any) -> str:
    """``"<reference sha1:XXXXXXXXXXXX>"``: stands for a reference without showing it."""
    text = json.dumps(value, sort_keys=True, default=str)
    return f"<reference sha1:{hashlib.sha1(text.encode()).hexdigest()[:12]}>"


def redact(value: Any) -> Any:
    """A copy of ``value`` (mappings and lists, recursively) with secrets and references hidden.

    Values that are not mappings or lists are returned as they are.
    """
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if item is not None and is_secret_key(key):
                out[key] = REDACTED
            elif item is not None and is_reference_key(key):
                out[key] = reference_digest(item)
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value


def is_redacted(value: Any) -> bool:
    """Whether ``value`` is what :func:`redact` put in place of a secret or a reference."""
    return isinstance(value, str) and (value == REDACTED or value.startswith("<reference sha1:"))


def without_redacted(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` without the entries :func:`redact` hid (a backend then reads its secret from
    its environment variable; references must be given again, e.g. through a voice catalog)."""
    return {k: v for k, v in options.items() if not is_redacted(v)}
