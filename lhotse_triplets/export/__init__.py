"""Exports of triplet cuts: Lhotse Shar (read by NeMo as ``sqa_as_conversation``), the NeMo data
config that points at it, and a flat triplet index (JSONL/CSV).

Example::

    >>> outputs = export_formats(cuts, "out/export", formats=["shar", "triplets"])
    >>> outputs
    {'shar': 'out/export/shar', 'nemo_config': 'out/export/nemo_data.yaml',
     'triplets': 'out/export/triplets.jsonl'}
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from lhotse.cut import Cut
from lhotse.utils import Pathlike

from lhotse_triplets.errors import Failure
from lhotse_triplets.export.nemo_config import nemo_data_config, write_nemo_config
from lhotse_triplets.export.shar import (
    DEFAULT_QUESTION,
    Triplet,
    check_export_path,
    export_shar,
    iter_triplets,
    read_shar,
)
from lhotse_triplets.export.triplets import cut_metadata, export_triplets, triplet_row

logger = logging.getLogger(__name__)

#: Names of the files/directories :func:`export_formats` writes inside its output directory.
SHAR_DIR = "shar"
NEMO_CONFIG_FILE = "nemo_data.yaml"
TRIPLETS_FILE = "triplets.jsonl"

#: Formats :func:`export_formats` knows. ``shar`` also writes the NeMo config.
FORMATS = ("shar", "nemo_config", "triplets")


def export_formats(
    cuts: Iterable[Cut],
    output_dir: Pathlike,
    *,
    formats: Sequence[str] = ("shar", "triplets"),
    shard_size: int | None = 1000,
    question: str | None = None,
    include_rejected: bool = False,
    sampling_rate: int | None = None,
    audio_format: str = "flac",
    on_failure: Callable[[Failure], None] | None = None,
) -> dict[str, str]:
    """Write the requested export formats of ``cuts`` into ``output_dir``; return name -> path.

    ``shar`` writes ``<output_dir>/shar`` (replacing an earlier export there) and the NeMo data
    config ``<output_dir>/nemo_data.yaml``; ``nemo_config`` alone writes the config for an
    existing ``<output_dir>/shar``; ``triplets`` writes ``<output_dir>/triplets.jsonl``. Each
    format is one streaming pass over ``cuts``, so pass a CutSet (re-iterable), not a generator.

    :param sampling_rate: resample the Shar audio to this rate; also the config's
        ``sample_rate`` (default 16000).
    :raises ValueError: for an unknown format name (the known ones are listed).

    Example::

        >>> export_formats(cuts, "out/export", formats=["shar"], question="")["nemo_config"]
        'out/export/nemo_data.yaml'
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"Unknown export format(s) {unknown}; known formats: {list(FORMATS)}")
    output_dir = check_export_path(output_dir)
    outputs: dict[str, str] = {}
    shar_dir = output_dir / SHAR_DIR
    write_config = "nemo_config" in formats
    if "shar" in formats:
        paths = export_shar(
            cuts,
            shar_dir,
            shard_size=shard_size,
            audio_format=audio_format,
            question=question,
            include_rejected=include_rejected,
            sampling_rate=sampling_rate,
            overwrite=True,
            on_failure=on_failure,
        )
        outputs["shar"] = str(shar_dir)
        write_config = bool(paths.get("cuts"))
        if not write_config:
            logger.warning("No cuts were exported to %s: no NeMo config written", shar_dir)
    if write_config:
        path = write_nemo_config(
            shar_dir, output_dir / NEMO_CONFIG_FILE, sample_rate=sampling_rate or 16000
        )
        outputs["nemo_config"] = str(path)
    if "triplets" in formats:
        path = Path(output_dir) / TRIPLETS_FILE
        export_triplets(cuts, path, include_rejected=include_rejected)
        outputs["triplets"] = str(path)
    return outputs


__all__ = [
    "DEFAULT_QUESTION",
    "FORMATS",
    "Triplet",
    "cut_metadata",
    "export_formats",
    "export_shar",
    "export_triplets",
    "iter_triplets",
    "nemo_data_config",
    "read_shar",
    "triplet_row",
    "write_nemo_config",
]
