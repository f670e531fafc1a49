"""Exports of triplet cuts, one registered format each (:mod:`~lhotse_triplets.export.base`):

- ``shar``: Lhotse Shar + the NeMo ``sqa_as_conversation`` YAML (``shar/``, ``nemo_data.yaml``);
- ``nemo``: NeMo tarred ``multimodal_conversation`` shards + their YAML (``nemo/``);
- ``triplets``: a flat triplet index (``triplets.jsonl``);
- ``triplet_files``: WAVs, metadata and failure logs per language, an index (``files/``);
- ``hf``: a Hugging Face dataset (``hf/``);
- ``duplex``: DuplexS2S Shar (``duplex/``);
- ``ttt``: per-turn rows for long-context TTT training, a Hugging Face dataset (``ttt/``);
- ``report``: Markdown + self-contained HTML report with plots and, with ``samples=N``, a gallery
  of clips (``report/``);

and :func:`open_export` to read them back. Importing this package imports no format module (nor
``datasets``/``matplotlib``): formats are loaded on the first registry lookup, and the
``export_<format>`` functions below on first use.

Example::

    >>> results = export_formats(cuts, "out/export", formats=["shar", "triplets"])
    >>> {name: result.paths for name, result in results.items()}
    {'shar': {'shar': 'out/export/shar', 'nemo_config': 'out/export/nemo_data.yaml'},
     'triplets': {'triplets': 'out/export/triplets.jsonl'}}
"""

from collections.abc import Iterable
from typing import Any

from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.utils import Pathlike

from lhotse_triplets.errors import read_failures
from lhotse_triplets.export.base import (
    ExportOptions,
    ExportResult,
    available_formats,
    check_export_options,
    exporter,
    get_exporter,
    resolve_options,
)
from lhotse_triplets.export.common import (
    DEFAULT_QUESTION,
    ExportCounts,
    check_export_dir,
    cut_metadata,
)
from lhotse_triplets.export.nemo_config import (
    estimate_token_bins,
    nemo_data_config,
    write_conversation_config,
    write_nemo_config,
)
from lhotse_triplets.export.reading import (
    Triplet,
    conversation_image,
    detect_export,
    iter_triplets,
    open_export,
    read_shar,
    reader,
)
from lhotse_triplets.registry import lazy_attributes

#: Names importable from this package that live in a format module (imported on first use).
_FORMAT_NAMES = {
    "export_shar": "shar",
    "export_triplets": "triplets",
    "triplet_row": "triplets",
    "write_triplet_index": "triplets",
    "export_nemo": "nemo",
    "export_triplet_files": "triplet_files",
    "export_hf": "hf",
    "export_duplex": "duplex",
    "export_ttt": "ttt",
    "export_report": "report",
}


__getattr__ = lazy_attributes(__name__, _FORMAT_NAMES)


def export_formats(
    cuts: Iterable[Cut],
    output_dir: Pathlike,
    options: ExportOptions | None = None,
    **overrides: Any,
) -> dict[str, ExportResult]:
    """Write ``options.formats`` of ``cuts`` into the export directory ``output_dir``, in order.

    Every format is looked up in the registry first, so an unknown name fails before anything is
    written. Each format is one pass over ``cuts`` (``nemo`` and ``duplex`` hold the cut
    manifests to group conversations), so the cuts are passed on as a re-iterable CutSet (a
    one-shot iterator is read into memory first, manifests only).

    :param options: the options (default :class:`ExportOptions`); ``overrides`` replace fields
        of it (``formats=["shar"]``, ``shard_size=500``, ...).
    :return: format name -> :class:`ExportResult`.
    :raises ValueError: for an unknown format or option, or a wrong option value
        (:func:`~lhotse_triplets.export.base.check_export_options`), before anything is written.

    Example::

        >>> results = export_formats(cuts, "out/export", formats=["shar"], question="")
        >>> results["shar"].paths["nemo_config"]
        'out/export/nemo_data.yaml'
    """
    options = resolve_options(options, overrides)
    check_export_options(options)
    exporters = {name: get_exporter(name) for name in options.formats}
    output_dir = check_export_dir(output_dir)
    if iter(cuts) is cuts:
        cuts = list(cuts)
    cuts = cuts if isinstance(cuts, CutSet) else CutSet(cuts)
    return {name: run(cuts, output_dir, options) for name, run in exporters.items()}


__all__ = [
    "DEFAULT_QUESTION",
    "ExportCounts",
    "ExportOptions",
    "ExportResult",
    "Triplet",
    "available_formats",
    "check_export_options",
    "conversation_image",
    "cut_metadata",
    "detect_export",
    "estimate_token_bins",
    "export_duplex",
    "export_formats",
    "export_hf",
    "export_nemo",
    "export_report",
    "export_shar",
    "export_triplet_files",
    "export_triplets",
    "export_ttt",
    "exporter",
    "get_exporter",
    "iter_triplets",
    "nemo_data_config",
    "open_export",
    "read_failures",
    "read_shar",
    "reader",
    "triplet_row",
    "write_conversation_config",
    "write_nemo_config",
    "write_triplet_index",
]
