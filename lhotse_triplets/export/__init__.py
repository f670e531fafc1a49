"""Exports of triplet cuts: Lhotse Shar (read by NeMo as ``sqa_as_conversation``), NeMo tarred
``multimodal_conversation`` shards, the NeMo data configs that point at them, DuplexS2S Shar,
plain triplet files, a Hugging Face dataset, a flat triplet index (JSONL/CSV) and a report; and
:func:`open_export` to read any of them back.

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
from lhotse_triplets.export.duplex import export_duplex
from lhotse_triplets.export.hf import export_hf
from lhotse_triplets.export.nemo_config import (
    estimate_token_bins,
    nemo_data_config,
    shar_lengths,
    write_nemo_config,
)
from lhotse_triplets.export.nemo_conversation import (
    export_nemo_conversations,
    write_conversation_config,
)
from lhotse_triplets.export.reading import conversation_image, detect_export, open_export
from lhotse_triplets.export.report import read_failures, write_report
from lhotse_triplets.export.shar import (
    DEFAULT_QUESTION,
    Triplet,
    check_export_path,
    export_shar,
    iter_triplets,
    read_shar,
)
from lhotse_triplets.export.triplet_files import export_triplet_files
from lhotse_triplets.export.triplets import cut_metadata, export_triplets, triplet_row

logger = logging.getLogger(__name__)

#: Names of the files/directories :func:`export_formats` writes inside its output directory.
SHAR_DIR = "shar"
NEMO_CONFIG_FILE = "nemo_data.yaml"
TRIPLETS_FILE = "triplets.jsonl"
NEMO_DIR = "nemo"
TRIPLET_FILES_DIR = "files"
HF_DIR = "hf"
DUPLEX_DIR = "duplex"
REPORT_DIR = "report"

#: Formats :func:`export_formats` knows. ``shar`` also writes the NeMo config; ``nemo`` writes
#: its own ``nemo/nemo_data.yaml``.
FORMATS = ("shar", "nemo_config", "triplets", "nemo", "triplet_files", "hf", "duplex", "report")


def export_formats(
    cuts: Iterable[Cut],
    output_dir: Pathlike,
    *,
    formats: Sequence[str] = ("shar", "triplets"),
    shard_size: int | None = 1000,
    shard_hours: float | None = None,
    question: str | None = None,
    include_rejected: bool = False,
    sampling_rate: int | None = None,
    audio_format: str = "flac",
    weights: dict[str, float] | None = None,
    num_buckets: int = 30,
    image_mode: str = "embed",
    duplex_tts: str | None = None,
    settings: dict | None = None,
    failures: Iterable[Failure] = (),
    progress: bool = False,
    on_failure: Callable[[Failure], None] | None = None,
) -> dict[str, str]:
    """Write the requested export formats of ``cuts`` into ``output_dir``; return name -> path.

    ``shar`` writes ``<output_dir>/shar`` (replacing an earlier export there) and the NeMo data
    config ``<output_dir>/nemo_data.yaml`` (``sqa_as_conversation``, bucket bins estimated from
    the cuts); ``nemo_config`` alone writes the config for an existing ``<output_dir>/shar``;
    ``triplets`` writes ``<output_dir>/triplets.jsonl``; ``nemo`` the multi-turn
    ``multimodal_conversation`` shards ``<output_dir>/nemo/<lang>/`` and their
    ``nemo/nemo_data.yaml``; ``triplet_files`` WAVs + metadata under ``<output_dir>/files``;
    ``hf`` a Hugging Face dataset under ``<output_dir>/hf``; ``duplex`` DuplexS2S Shar under
    ``<output_dir>/duplex`` (needs ``duplex_tts`` or ``target_audio`` on the cuts); ``report``
    ``<output_dir>/report/report.{md,html}``. Each format is one streaming pass over ``cuts``
    (``nemo`` and ``duplex`` hold the cut manifests to group conversations), so pass a CutSet
    (re-iterable), not a generator.

    :param sampling_rate: resample the audio to this rate; also the configs' ``sample_rate``
        (default 16000).
    :param weights: language -> blend weight of the ``nemo`` config's ``input_cfg`` entries.
    :param failures: failed items listed in the report (e.g. the pipeline's).
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
    rate = sampling_rate or 16000
    if "shar" in formats:
        paths = export_shar(
            cuts,
            shar_dir,
            shard_size=shard_size,
            shard_hours=shard_hours,
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
        bins = estimate_token_bins(shar_lengths(cuts, question, include_rejected), num_buckets)
        path = write_nemo_config(
            shar_dir, output_dir / NEMO_CONFIG_FILE, sample_rate=rate, bucket_duration_bins=bins
        )
        outputs["nemo_config"] = str(path)
    if "triplets" in formats:
        path = Path(output_dir) / TRIPLETS_FILE
        export_triplets(cuts, path, include_rejected=include_rejected)
        outputs["triplets"] = str(path)
    if "nemo" in formats:
        result = export_nemo_conversations(
            cuts,
            output_dir / NEMO_DIR,
            shard_size=shard_size,
            shard_hours=shard_hours,
            question=question,
            image_mode=image_mode,
            sampling_rate=rate,
            include_rejected=include_rejected,
            overwrite=True,
            progress=progress,
            on_failure=on_failure,
        )
        outputs["nemo"] = str(result.output_dir)
        if result.shards:
            path = write_conversation_config(
                result, weights=weights, num_buckets=num_buckets, sample_rate=rate
            )
            outputs["nemo_conversation_config"] = str(path)
    if "triplet_files" in formats:
        files = export_triplet_files(
            cuts,
            output_dir / TRIPLET_FILES_DIR,
            sampling_rate=rate,
            overwrite=True,
            progress=progress,
            on_failure=on_failure,
        )
        outputs["triplet_files"] = str(files.output_dir)
    if "hf" in formats:
        hf = export_hf(
            cuts,
            output_dir / HF_DIR,
            sampling_rate=rate,
            settings=settings,
            include_rejected=include_rejected,
            overwrite=True,
            on_failure=on_failure,
        )
        outputs["hf"] = str(hf.output_dir)
    if "duplex" in formats:
        export_duplex(
            cuts,
            output_dir / DUPLEX_DIR,
            tts=duplex_tts,
            sampling_rate=rate,
            shard_size=shard_size or 1000,
            overwrite=True,
            progress=progress,
            on_failure=on_failure,
        )
        outputs["duplex"] = str(output_dir / DUPLEX_DIR)
    if "report" in formats:
        report = write_report(cuts, output_dir / REPORT_DIR, failures=failures)
        outputs["report"] = report["markdown"]
    return outputs


__all__ = [
    "DEFAULT_QUESTION",
    "FORMATS",
    "Triplet",
    "conversation_image",
    "cut_metadata",
    "detect_export",
    "estimate_token_bins",
    "export_duplex",
    "export_formats",
    "export_hf",
    "export_nemo_conversations",
    "export_shar",
    "export_triplet_files",
    "export_triplets",
    "open_export",
    "read_failures",
    "write_conversation_config",
    "write_report",
    "iter_triplets",
    "nemo_data_config",
    "read_shar",
    "triplet_row",
    "write_nemo_config",
]
