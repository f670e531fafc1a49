"""What a path given to ``validate`` is: a manifest, a stage directory, one export, or a run's
export directory (every export inside it).

=================  ==========================================================================
kind               recognised by
=================  ==========================================================================
``manifest``       a ``*.jsonl.gz`` file of cuts
``stage``          a folder of ``cuts.NNNNNN.jsonl.gz`` shards and no tar
``shar``           ``cuts.*.jsonl.gz`` + ``recording.*.tar`` (Lhotse Shar)
``duplex``         Shar with ``target_audio.*.tar`` (DuplexS2S)
``nemo``           ``<lang>/manifest_N.jsonl`` + ``audio_N.tar``
``ttt``            ``ttt.json`` next to a ``save_to_disk`` dataset
``hf``             ``state.json`` or ``arrow/state.json`` (``datasets``)
``triplet_files``  ``metadata_<lang>.jsonl`` (the WAV tree)
``triplets``       the triplets index file ``triplets.jsonl`` / ``.csv`` / ``.jsonl.gz``
=================  ==========================================================================

Example::

    >>> find_targets("out/export")
    [Target(kind='duplex', path=PosixPath('out/export/duplex')), ...]
"""

from pathlib import Path
from typing import NamedTuple

from lhotse.utils import Pathlike

from lhotse_triplets.engine.base import list_shards
from lhotse_triplets.export.common import TRIPLETS_FORMATS
from lhotse_triplets.export.reading import TTT_METADATA

#: The TTT export's declaration file (``{"format": "ttt", "pad_multiple", "pad_id", ...}``).
TTT_FILE = TTT_METADATA
#: Name of the triplets index file (``triplets.<ext>``).
TRIPLETS_STEM = "triplets"

KINDS = (
    "manifest",
    "stage",
    "shar",
    "duplex",
    "nemo",
    "ttt",
    "hf",
    "triplet_files",
    "triplets",
)


class Target(NamedTuple):
    """One thing to validate: its kind (one of :data:`KINDS`) and path."""

    kind: str
    path: Path


def _is_index(path: Path) -> bool:
    return path.is_file() and any(path.name == f"{TRIPLETS_STEM}.{e}" for e in TRIPLETS_FORMATS)


def folder_kind(path: Path) -> str | None:
    """The kind of the folder ``path`` (``None`` when it is none of them)."""
    if (path / TTT_FILE).is_file():
        return "ttt"
    if list_shards(path) or any(path.glob("cuts.*.jsonl")):
        if any(path.glob("target_audio.*.tar")):
            return "duplex"
        return "shar" if any(path.glob("*.tar")) else "stage"
    if any(path.glob("*/manifest_*.jsonl")) or any(path.glob("manifest_*.jsonl")):
        return "nemo"
    if (path / "state.json").is_file() or (path / "arrow" / "state.json").is_file():
        return "hf"
    if any(path.glob("metadata_*.jsonl")):
        return "triplet_files"
    return None


def find_targets(path: Pathlike) -> list[Target]:
    """The targets to validate under ``path``: itself when it is one kind, else every export
    inside it (a run's ``export`` folder; a run folder's ``export/`` too) or every recipe
    manifest in it (``prepare``'s output folder: ``<corpus>_cuts_<part>.jsonl.gz``).

    :raises FileNotFoundError: when ``path`` does not exist.
    :raises ValueError: when nothing under ``path`` is a known kind (listing them).

    Example::

        >>> find_targets("out/gate")
        [Target(kind='stage', path=PosixPath('out/gate'))]
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file or directory: {path}")
    if path.is_file():
        if _is_index(path):
            return [Target("triplets", path)]
        if path.name.endswith((".jsonl.gz", ".jsonl")):
            return [Target("manifest", path)]
        raise ValueError(f"{path}: not a manifest (*.jsonl.gz) nor a triplets index")
    kind = folder_kind(path)
    if kind is not None:
        return [Target(kind, path)]
    root = path / "export" if (path / "export").is_dir() else path
    targets = [Target(k, p) for p in sorted(root.iterdir()) if (k := _entry_kind(p)) is not None]
    if not targets:
        raise ValueError(
            f"{path}: nothing to validate: expected a manifest, a stage directory or an export "
            f"({', '.join(KINDS)}), or a folder of exports"
        )
    return targets


def _entry_kind(path: Path) -> str | None:
    if path.name.startswith("."):
        return None
    if path.is_dir():
        return folder_kind(path)
    if _is_index(path):
        return "triplets"
    return "manifest" if _is_recipe_manifest(path) else None


def _is_recipe_manifest(path: Path) -> bool:
    """A recipe's manifest (``<corpus>_cuts_<part>.jsonl.gz``, as Lhotse recipes name them)."""
    return "_cuts_" in path.name and path.name.endswith(".jsonl.gz")
