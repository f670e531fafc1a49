"""The export registry: one options type, one result type and one signature for every format.

A format is one function registered with :func:`exporter`; the CLI command, the ``formats`` key
of the pipeline config and :func:`~lhotse_triplets.export.export_formats` all go through
:func:`get_exporter`, as NeMo registers its data types (``@data_type_parser``)::

    @exporter("my_format")
    def export_my_format(cuts, output_dir, options):
        \"\"\"One line: what the format is (the CLI help).\"\"\"
        ...
        return ExportResult("my_format", paths={"my_format": str(output_dir / "mine")})

``output_dir`` is an *export directory*: each format writes its own entries inside it (``shar/``
and ``nemo_data.yaml``, ``nemo/``, ``triplets.jsonl``, ``files/``, ``hf/``, ``duplex/``,
``report/``) and replaces only those. Callers pass ``options=None, **overrides`` or an
:class:`ExportOptions`; the decorator turns either into the :class:`ExportOptions` the function
receives, and checks the export directory.
"""

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lhotse.cut import Cut
from lhotse.utils import Pathlike

from lhotse_triplets.config import ExportConfig
from lhotse_triplets.errors import Failure, log_failure
from lhotse_triplets.export.common import ExportCounts, check_export_dir
from lhotse_triplets.registry import Registry

logger = logging.getLogger(__name__)

#: Modules that hold the built-in formats; imported on the first lookup, so importing the
#: package never imports a format (nor ``datasets``/``matplotlib``, which formats import late).
_BUILTIN_MODULES = (
    "lhotse_triplets.export.shar",
    "lhotse_triplets.export.triplets",
    "lhotse_triplets.export.nemo",
    "lhotse_triplets.export.triplet_files",
    "lhotse_triplets.export.hf",
    "lhotse_triplets.export.duplex",
    "lhotse_triplets.export.report",
)


@dataclass
class ExportOptions(ExportConfig):
    """Every export option: the ``export`` section of the pipeline config
    (:class:`~lhotse_triplets.config.ExportConfig`, where the defaults live) plus what only a
    running export has.

    Example::

        >>> options = ExportOptions.from_config(cfg.export, settings={"tts": "kokoro"})
        >>> ExportOptions(shard_size=500).shard_size
        500
    """

    #: Generation settings listed in the ``hf`` dataset card (e.g. the pipeline config).
    settings: dict[str, Any] = field(default_factory=dict)
    #: Failed items of earlier stages, listed by the ``report``.
    failures: list[Failure] = field(default_factory=list)
    #: Called with each item that cannot be exported (the export goes on).
    on_failure: Callable[[Failure], None] | None = log_failure
    #: Show progress bars.
    progress: bool = False

    @classmethod
    def from_config(cls, export_cfg: ExportConfig | None = None, **runtime: Any) -> "ExportOptions":
        """Options from an ``export`` config section (``None``: the defaults) and runtime values.

        :raises ValueError: for a runtime key that is not an option (naming it).

        Example::

            >>> ExportOptions.from_config(load_config("run.yaml").export, progress=True)
        """
        values = {}
        if export_cfg is not None:
            values = {f.name: getattr(export_cfg, f.name) for f in dataclasses.fields(export_cfg)}
        return resolve_options(cls(**values), runtime)

    @classmethod
    def for_run(cls, cfg: Any, **runtime: Any) -> "ExportOptions":
        """The options of a run configuration's ``export`` section, its ``sampling_rate`` (when
        ``null``) taken from the synthesize stage's, as ``run`` and the export commands use.

        Example::

            >>> ExportOptions.for_run(load_config("run.yaml")).sampling_rate
            16000
        """
        options = cls.from_config(cfg.export, **runtime)
        if options.sampling_rate is None:
            options.sampling_rate = cfg.synthesize.sampling_rate
        return options


def option_names() -> list[str]:
    """The names :class:`ExportOptions` accepts."""
    return [f.name for f in dataclasses.fields(ExportOptions)]


def resolve_options(options: ExportOptions | None, overrides: Mapping[str, Any]) -> ExportOptions:
    """``options`` (default: :class:`ExportOptions` defaults) with ``overrides`` applied, as a
    new object (the given one is not modified).

    :raises ValueError: for an override that is not an option (naming it and the known ones).

    Example::

        >>> resolve_options(None, {"shard_size": 10}).shard_size
        10
    """
    unknown = sorted(set(overrides) - set(option_names()))
    if unknown:
        raise ValueError(
            f"Unknown export option(s) {unknown}; known options: {', '.join(option_names())}"
        )
    if options is None:
        return ExportOptions(**overrides)
    return dataclasses.replace(options, **overrides)


@dataclass
class ExportResult:
    """What one format wrote: the same type for every format.

    :param format: the format's registry name.
    :param paths: the named outputs a run summary prints (e.g. ``{"shar": ..., "nemo_config":
        ...}``).
    :param counts: items written / rejected / failed, seconds of audio, per language.
    :param details: format-specific facts (shard lists, lengths, parquet files, plots, ...).
    """

    format: str
    paths: dict[str, str] = field(default_factory=dict)
    counts: ExportCounts = field(default_factory=ExportCounts)
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.format}: {self.counts}"]
        lines += [f"  {name}: {path}" for name, path in self.paths.items()]
        return "\n".join(lines)


class Exporter(Protocol):
    """The signature of every registered format."""

    def __call__(
        self,
        cuts: Iterable[Cut],
        output_dir: Pathlike,
        options: ExportOptions | None = None,
        **overrides: Any,
    ) -> ExportResult: ...


#: The export formats: name -> exporter (a read-only mapping, always current).
EXPORTERS: Registry[Exporter] = Registry("export format", _BUILTIN_MODULES)


def exporter(name: str) -> Callable[[Callable[..., ExportResult]], Exporter]:
    """Register ``fn(cuts, output_dir: Path, options: ExportOptions) -> ExportResult`` as the
    format ``name``.

    The registered function is called as ``fn(cuts, output_dir, options=None, **overrides)``:
    the overrides are applied to ``options`` (default :class:`ExportOptions`), and
    ``output_dir`` is checked (:func:`~lhotse_triplets.export.common.check_export_dir`) first.
    A later registration of the same name replaces the earlier one.

    Example::

        >>> @exporter("csv_only")
        ... def export_csv_only(cuts, output_dir, options):
        ...     \"\"\"A CSV of ids.\"\"\"
        ...     return ExportResult("csv_only")
        >>> export_csv_only(cuts, "out", shard_size=10).format
        'csv_only'
    """

    def register(fn: Callable[..., ExportResult]) -> Exporter:
        @functools.wraps(fn)
        def run(
            cuts: Iterable[Cut],
            output_dir: Pathlike,
            options: ExportOptions | None = None,
            **overrides: Any,
        ) -> ExportResult:
            options = resolve_options(options, overrides)
            result = fn(cuts, check_export_dir(output_dir), options)
            logger.info("%s export to %s: %s", name, output_dir, result.counts)
            return result

        run.format_name = name
        return EXPORTERS.register(name)(run)

    return register


def available_formats() -> list[str]:
    """The registered format names, sorted.

    Example::

        >>> available_formats()
        ['duplex', 'hf', 'nemo', 'report', 'shar', 'triplet_files', 'triplets']
    """
    return EXPORTERS.names()


def get_exporter(name: str) -> Exporter:
    """The exporter registered as ``name``.

    :raises ValueError: for an unknown name, listing the known formats.

    Example::

        >>> result = get_exporter("shar")(cuts, "out/export", shard_size=500)
        >>> result.paths["shar"]
        'out/export/shar'
    """
    return EXPORTERS.get(name)
