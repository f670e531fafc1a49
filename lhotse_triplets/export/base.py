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
and ``nemo_data.yaml``, ``nemo/``, ``triplets.jsonl``, ``files/``, ``hf/``, ``duplex/``, ``ttt/``,
``report/``) and replaces only those. Callers pass ``options=None, **overrides`` or an
:class:`ExportOptions`; the decorator turns either into the :class:`ExportOptions` the function
receives, checks the options (:func:`check_export_options`) and the export directory before
anything is written.

An export that writes nothing (every cut rejected or failed) is still a valid, empty export of
its format (each format module says what that is) and says so: ``ExportResult.empty``,
``details["note"]`` (printed by the CLI) and a warning.
"""

import dataclasses
import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lhotse.cut import Cut
from lhotse.utils import Pathlike

from lhotse_triplets.config import ExportConfig
from lhotse_triplets.dialogues import role_names
from lhotse_triplets.errors import Failure, log_failure
from lhotse_triplets.export import common
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
    "lhotse_triplets.export.ttt",
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


#: ``ExportResult.details`` keys of an export that wrote nothing (see ``say_empty``).
EMPTY = "empty"
NOTE = "note"


@dataclass
class ExportResult:
    """What one format wrote: the same type for every format.

    :param format: the format's registry name.
    :param paths: the named outputs a run summary prints (e.g. ``{"shar": ..., "nemo_config":
        ...}``).
    :param counts: items written / rejected / failed, seconds of audio, per language.
    :param details: format-specific facts (shard lists, lengths, parquet files, plots, ...);
        ``empty`` and ``note`` when nothing was exported (:meth:`say_empty`).
    """

    format: str
    paths: dict[str, str] = field(default_factory=dict)
    counts: ExportCounts = field(default_factory=ExportCounts)
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.format}: {self.counts}"]
        lines += [f"  {name}: {path}" for name, path in self.paths.items()]
        if self.details.get(NOTE):
            lines.append(f"  note: {self.details[NOTE]}")
        return "\n".join(lines)

    @property
    def empty(self) -> bool:
        """Whether nothing was exported (the export is valid, and empty)."""
        return bool(self.details.get(EMPTY))

    def say_empty(self, what: str, consequence: str = "") -> None:
        """Record (``details["empty"]``, ``details["note"]``) and log as a warning that the
        export is empty: ``what`` names the items (``cuts``, ``conversations``), ``consequence``
        what follows (e.g. ``no NeMo config written``).

        Example::

            >>> result.say_empty("cuts", "no NeMo config written")
            >>> result.details["note"]
            'empty export: no cuts written (3 rejected, 0 failed); no NeMo config written'
        """
        c = self.counts
        note = f"empty export: no {what} written ({c.rejected} rejected, {c.failed} failed)"
        self.details[EMPTY] = True
        self.details[NOTE] = f"{note}; {consequence}" if consequence else note
        logger.warning("%s export: %s", self.format, self.details[NOTE])


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
            check_export_options(options, formats=[name])
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
        ['duplex', 'hf', 'nemo', 'report', 'shar', 'triplet_files', 'triplets', 'ttt']
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


#: Options that are counts (at least 1 when set).
_COUNTS = ("shard_size", "num_buckets", "hf_num_shards", "hf_max_shard_rows", "pad_multiple")
#: Options that are counts that may be 0 (0: none).
_COUNTS_OR_ZERO = ("samples",)
#: Options that are positive numbers when set.
_POSITIVE = ("shard_hours", "sampling_rate")


def check_export_options(export_cfg: ExportConfig, formats: Iterable[str] | None = None) -> None:
    """Check an ``export`` config section (or :class:`ExportOptions`) before any work: the
    format names, the choices (``image_mode``, ``audio_format``, ``triplets_format``,
    ``index_format``), counts >= 1 (``samples`` >= 0), positive hours and rate, weights >= 0.

    :param formats: the formats that will run (default ``export_cfg.formats``, which are then
        checked to be registered); ``audio_format`` must suit every one of them.
    :raises ValueError: one line naming the first wrong key, its value and what is accepted.

    Example::

        >>> check_export_options(ExportConfig(formats=["nemoo"]))
        Traceback (most recent call last):
        ValueError: export.formats: unknown format 'nemoo' (known: duplex, hf, nemo, ...)
    """
    if formats is None:
        formats = _check_formats(export_cfg.formats)
    for name in _COUNTS:
        _check_number(name, getattr(export_cfg, name), minimum=1, integer=True)
    for name in _COUNTS_OR_ZERO:
        _check_number(name, getattr(export_cfg, name), minimum=0, integer=True)
    for name in _POSITIVE:
        _check_number(name, getattr(export_cfg, name), minimum=0, strict=True)
    _check_number("duplex_gap", export_cfg.duplex_gap, minimum=0)
    weights = export_cfg.weights
    if not isinstance(weights, Mapping):
        raise ValueError(f"export.weights: must map languages to weights, got {weights!r}")
    for language, weight in weights.items():
        _check_number(f"weights.{language}", weight, minimum=0)
    _check_choices(export_cfg, list(formats))
    try:
        role_names(export_cfg.role_names or None, default={})
    except ValueError as e:
        raise ValueError(f"export.role_names: {e}") from None


def _check_formats(formats: Any) -> list[str]:
    if isinstance(formats, str) or not isinstance(formats, Iterable):
        raise ValueError(f"export.formats: a list of format names, got {formats!r}")
    known = available_formats()
    for name in formats:
        if name not in known:
            raise ValueError(f"export.formats: unknown format {name!r} (known: {', '.join(known)})")
    return list(formats)


def _check_number(
    name: str, value: Any, minimum: float, integer: bool = False, strict: bool = False
) -> None:
    if value is None and name != "duplex_gap" and not name.startswith("weights."):
        return
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"export.{name}: must be {kind} {bound}, got {value!r}")


def _check_choices(export_cfg: ExportConfig, formats: list[str]) -> None:
    choices = {
        "image_mode": common.IMAGE_MODES,
        "triplets_format": common.TRIPLETS_FORMATS,
        "index_format": common.FILES_INDEX_FORMATS,
        "audio_format": common.NEMO_AUDIO_FORMATS
        if "nemo" in formats
        else common.SHAR_AUDIO_FORMATS,
    }
    for name, accepted in choices.items():
        value = getattr(export_cfg, name)
        if value not in accepted:
            why = " (format nemo)" if name == "audio_format" and "nemo" in formats else ""
            raise ValueError(
                f"export.{name}: unknown value {value!r}{why} (known: {', '.join(accepted)})"
            )
