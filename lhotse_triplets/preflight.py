"""Checks run before any work: a run that cannot succeed fails in a second with one line."""

from pathlib import Path
from typing import Any


def preflight(cfg: Any, output_dir: str | Path | None = None) -> None:
    """Raise ``ValueError`` (one line naming the key and where it came from) when ``cfg`` cannot
    run, before anything is read or written."""
