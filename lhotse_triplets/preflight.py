"""Checks run before any work: a run that cannot succeed fails in a second with one line.

:func:`preflight` takes a loaded :class:`~lhotse_triplets.config.PipelineConfig` (or a
:class:`~lhotse_triplets.config.BenchConfig`) and checks what :func:`~lhotse_triplets.config.
validate_config` cannot check on the values alone:

- every name is registered: the recipe, the executor, every backend section, export formats;
- every ``options:`` mapping is accepted by what it configures (the recipe function, the
  executor or backend class's ``__init__``), unknown names listed against the accepted ones;
- the export options hold together (``lhotse_triplets.export.base.check_export_options``);
- every configured TTS speaks the run's languages and offers the voices the config lists: TTS
  constructors are cheap by contract (no model is loaded before the first ``synthesize``,
  :class:`~lhotse_triplets.backends.base.TTSBackend`), so each configured one is built here;
  ASR, embedding, MOS and LLM backends (which load models when built) are only checked by name
  and options;
- files that must exist do (``rephrase.translation_files``, ``synthesize.selection``,
  ``gate.calibrated``, a benchmark's prompts), and read;
- the output directory and its ``audio/`` can be written (a probe file, removed at once).

Each problem is a :class:`~lhotse_triplets.config.ConfigError`: one line naming the key, the
problem and where the value came from. Nothing is read from the corpus and nothing is written
but the probe.

Example::

    cfg = load_config("configs/quickstart.yaml", ["synthesize.voices.en=[nobody]"])
    preflight(cfg, "out")
    # ConfigError: synthesize.voices.en: TTS 'kokoro' does not offer nobody for 'en'; it
    #   offers: af_heart, ... (got ['nobody'], from override synthesize.voices.en=[nobody])
"""

import dataclasses
import errno
import os
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from lhotse_triplets.backends.registry import available, build, get_class, option_problem
from lhotse_triplets.config import (
    BenchConfig,
    ConfigError,
    EngineConfig,
    config_error,
    origin_of,
    validate_config,
)

#: Parameters of an executor class that come from ``engine`` keys, not ``engine.options``.
_EXECUTOR_FIXED = (*(f.name for f in dataclasses.fields(EngineConfig)), "progress")


#: The steps of a run, each with its own checks (``preflight(..., steps=[...])``).
STEPS = ("prepare", "rephrase", "synthesize", "score", "gate", "export")


def preflight(
    cfg: Any, output_dir: str | Path | None = None, *, steps: Collection[str] | None = None
) -> None:
    """Raise ``ValueError`` (one line naming the key and where it came from) when ``cfg`` cannot
    run, before anything is read or written.

    :param output_dir: the run (or benchmark, or stage) directory: it must be writable, and its
        ``audio/`` too when the synthesize step is checked.
    :param steps: check only what these steps of :data:`STEPS` use (a stage command passes its
        own name, so that ``rephrase`` does not need the TTS installed); default: every step. A
        :class:`~lhotse_triplets.config.BenchConfig` is always checked whole.
    :raises ConfigError: (a ``ValueError``) for the first problem found.
    :raises ImportError: when a configured TTS backend's dependency is missing (naming the
        ``pip install``).
    """
    validate_config(cfg)
    check_executor(cfg)
    check_resources(cfg)
    if isinstance(cfg, BenchConfig):
        check_backends(cfg)
        check_files(cfg)
        check_bench_voices(cfg)
        wanted = {"synthesize"}
    else:
        wanted = set(STEPS if steps is None else steps)
        unknown = sorted(wanted - set(STEPS))
        if unknown:
            raise ValueError(f"preflight: unknown steps {unknown}; known: {', '.join(STEPS)}")
        check_backends(cfg, wanted)
        check_files(cfg, wanted)
        for step, check in _STEP_CHECKS:
            if step in wanted:
                check(cfg)
    if output_dir is not None:
        check_output_dir(output_dir, ("audio",) if "synthesize" in wanted else ())


# -- names and options ------------------------------------------------------------------------
def _registered(cfg: Any, key: str, name: str, known: list[str], what: str) -> None:
    """A :class:`ConfigError` for ``key`` unless ``name`` is among the ``known`` names of the
    registry of ``what`` (worded as the registry words it)."""
    if name not in known:
        problem = f"unknown {what} {name!r}; known {what}s: {', '.join(known) or '-'}"
        raise config_error(cfg, key, problem)


def _options(cfg: Any, key: str, fn: Any, options: Mapping[str, Any], what: str, **kw) -> None:
    problem = option_problem(fn, options, **kw)
    if problem is not None:
        raise config_error(cfg, key, f"{what}: {problem}")


def check_recipe(cfg: Any) -> None:
    """``prepare.recipe`` is registered and takes ``prepare.options``."""
    from lhotse_triplets.recipes import RECIPES

    _registered(cfg, "prepare.recipe", cfg.prepare.recipe, RECIPES.names(), "recipe")
    recipe = RECIPES.get(cfg.prepare.recipe)
    what = f"recipe {cfg.prepare.recipe!r}"
    _options(cfg, "prepare.options", recipe, cfg.prepare.options, what, fixed=("output_dir",))


def check_executor(cfg: Any) -> None:
    """``engine.name`` is a registered executor that takes ``engine.options``."""
    from lhotse_triplets.engine import EXECUTORS, unsupported_engine_key

    _registered(cfg, "engine.name", cfg.engine.name, EXECUTORS.names(), EXECUTORS.kind)
    cls = EXECUTORS.get(cfg.engine.name)
    what = f"executor {cfg.engine.name!r}"
    _options(cfg, "engine.options", cls, cfg.engine.options, what, fixed=_EXECUTOR_FIXED)
    if (unsupported := unsupported_engine_key(cls, cfg.engine)) is not None:
        key, problem = unsupported
        raise config_error(cfg, f"engine.{key}", problem)
    try:
        cls.check_available()
    except ImportError as e:
        raise config_error(cfg, "engine.name", str(e)) from None


def check_resources(cfg: Any) -> None:
    """Every backend's ``num_gpus`` is >= 0 and its ``num_cpus`` > 0 (or unset)."""
    if isinstance(cfg, BenchConfig):
        return
    for key, *_ in backend_sections(cfg):
        node: Any = cfg
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else getattr(node, part, None)
        gpus, cpus = getattr(node, "num_gpus", 0.0), getattr(node, "num_cpus", None)
        if gpus is None or gpus < 0:
            raise config_error(cfg, f"{key}.num_gpus", f"must be >= 0 (got {gpus})")
        if cpus is not None and cpus <= 0:
            raise config_error(cfg, f"{key}.num_cpus", f"must be > 0 or null (got {cpus})")


def backend_sections(cfg: Any) -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    """``(key, kind, name, options)`` of every backend a config names (``null`` ones skipped)."""
    if isinstance(cfg, BenchConfig):
        for i, engine in enumerate(cfg.engines):
            yield f"engines[{i}]", "tts", engine.name, engine.options
    else:
        yield "rephrase.backend", "llm", cfg.rephrase.backend.name, cfg.rephrase.backend.options
        if cfg.rephrase.embed is not None:
            yield "rephrase.embed", "embed", cfg.rephrase.embed.name, cfg.rephrase.embed.options
        for language, backend in cfg.synthesize.tts.items():
            yield f"synthesize.tts.{language}", "tts", backend.name, backend.options
        if cfg.export.duplex_tts is not None:
            yield "export.duplex_tts", "tts", cfg.export.duplex_tts, cfg.export.duplex_tts_options
    for kind in ("asr", "embed", "mos"):
        backend = getattr(cfg.score, kind)
        if backend is not None:
            yield f"score.{kind}", kind, backend.name, backend.options


def check_backends(cfg: Any, steps: Collection[str] = STEPS) -> None:
    """Every backend section (of ``steps``) names a registered backend of its kind that takes
    its options."""
    for key, kind, name, options in backend_sections(cfg):
        if not isinstance(cfg, BenchConfig) and key.split(".")[0] not in steps:
            continue
        name_key = key if key == "export.duplex_tts" else f"{key}.name"
        _registered(cfg, name_key, name, available(kind), f"{kind} backend")
        options_key = "export.duplex_tts_options" if name_key == key else f"{key}.options"
        _options(cfg, options_key, get_class(kind, name), options, f"{kind} backend {name!r}")


def check_rephrase(cfg: Any) -> None:
    from lhotse_triplets.transforms.rephrase import FALLBACKS

    if cfg.rephrase.fallback not in FALLBACKS:
        raise config_error(
            cfg,
            "rephrase.fallback",
            f"must be one of {', '.join(FALLBACKS)}",
            cfg.rephrase.fallback,
        )


# -- export -----------------------------------------------------------------------------------
def _export_key(cfg: Any, message: str) -> tuple[str, str]:
    """``(key, problem)`` of an export-option message (``"export.image_mode: must be ..."``); the
    key is the ``export.<field>`` the message names, ``export`` when none."""
    if (m := re.match(r"(export\.[\w.\[\]-]+): (.*)", message)) is not None:
        return m.group(1), m.group(2)
    names = sorted((f.name for f in dataclasses.fields(cfg.export)), key=len, reverse=True)
    return next((f"export.{n}" for n in names if n in message), "export"), message


def check_export(cfg: Any) -> None:
    """Every ``export.formats`` entry is registered and the export options hold together."""
    from lhotse_triplets.export import available_formats
    from lhotse_triplets.export import base as export_base

    known = available_formats()
    for i, name in enumerate(cfg.export.formats):
        _registered(cfg, f"export.formats[{i}]", name, known, "export format")
    # The export package's own option checks (image_mode, index formats, duplex needs...).
    check_export_options = getattr(export_base, "check_export_options", None)
    if check_export_options is None:  # pragma: no cover - older export package
        return
    try:
        check_export_options(cfg.export)
    except ConfigError:
        raise
    except ValueError as e:
        key, problem = _export_key(cfg, str(e))
        raise ConfigError(key, problem, origin_of(cfg, key)) from None


# -- files ------------------------------------------------------------------------------------
def _must_exist(cfg: Any, key: str, path: str | Path | None, what: str = "file") -> None:
    if path is not None and not Path(path).exists():
        raise config_error(cfg, key, f"no such {what}", str(path))


def _readable(cfg: Any, key: str, read: Any, path: str | None) -> Any:
    """``read(path)``, a ``ValueError`` of it turned into a :class:`ConfigError` for ``key``."""
    if path is None:
        return None
    _must_exist(cfg, key, path)
    try:
        return read(path)
    except (ValueError, OSError) as e:
        problem = str(e).replace(str(path), "").strip(" :") or "unreadable"
        raise config_error(cfg, key, problem, path) from None


def check_files(cfg: Any, steps: Collection[str] = STEPS) -> None:
    """Files a config names (for ``steps``) exist, and the small ones read."""
    from lhotse_triplets.transforms.gate import CalibratedGate

    if isinstance(cfg, BenchConfig) or "gate" in steps:
        _readable(cfg, "gate.calibrated", CalibratedGate.load, cfg.gate.calibrated)
    if isinstance(cfg, BenchConfig):
        _check_prompts(cfg)
    elif "rephrase" in steps:
        for i, path in enumerate(cfg.rephrase.translation_files):
            _must_exist(cfg, f"rephrase.translation_files[{i}]", path, "file or folder")


def _check_prompts(cfg: BenchConfig) -> None:
    from lhotse_triplets.bench.prompts import prompt_file

    for language, path in cfg.prompt_files.items():
        _must_exist(cfg, f"prompt_files.{language}", path)
    for language in cfg.languages:
        if language in cfg.prompt_files:
            continue
        if cfg.prompt_dir is None:
            raise config_error(cfg, "prompt_dir", f"no prompts for {language!r}: set prompt_dir")
        try:
            prompt_file(language, cfg.prompt_dir)
        except (FileNotFoundError, ValueError) as e:
            raise config_error(cfg, "prompt_dir", str(e), cfg.prompt_dir) from None


# -- TTS languages and voices -----------------------------------------------------------------
class _Engines:
    """Each configured TTS built once (by name and options), build errors named by key."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self._built: dict[str, Any] = {}

    def get(self, key: str, name: str, options: Mapping[str, Any]) -> Any:
        ident = f"{name}:{sorted(dict(options).items())!r}"
        if ident not in self._built:
            try:
                self._built[ident] = build("tts", name, **dict(options))
            except (ValueError, TypeError) as e:
                raise config_error(self.cfg, f"{key}.options", f"TTS {name!r}: {e}") from None
        return self._built[ident]


def _offered(
    cfg: Any, key: str, tts: Any, name: str, language: str, blame: str | None = None
) -> list[str]:
    """The voices ``tts`` offers for ``language``; a :class:`ConfigError` when it does not
    speak it, for the key ``blame`` (default ``key``, the TTS section)."""
    try:
        voices = list(tts.voices(language))
    except Exception as e:  # ItemError / ValueError: the language is not spoken
        if blame is None:
            raise config_error(cfg, key, f"cannot speak {language!r}: {e}") from None
        problem = f"not spoken by {key} ({origin_of(cfg, key) or 'as configured'}): {e}"
        raise config_error(cfg, blame, problem, language) from None
    if not voices:
        raise config_error(cfg, key, f"TTS {name!r} offers no voice for {language!r}")
    return voices


def _check_wanted(cfg: Any, key: str, wanted: Any, offered: list[str], name: str, lang: str):
    unknown = [v for v in wanted or [] if v not in offered]
    if unknown:
        raise config_error(
            cfg,
            key,
            f"TTS {name!r} does not offer {', '.join(map(str, unknown))} for {lang!r}; it offers: "
            f"{', '.join(offered)}",
            list(wanted),
        )


def check_voices(cfg: Any) -> None:
    """Every run language has a TTS that speaks it, with the voices ``synthesize`` lists (or a
    ``synthesize.selection`` chose)."""
    from lhotse_triplets.selection import read_selection

    s = cfg.synthesize
    selection = _readable(cfg, "synthesize.selection", read_selection, s.selection) or {}
    engines = _Engines(cfg)
    for i, language in enumerate(cfg.languages):
        if language in selection:
            _check_choice(cfg, engines, language, selection[language])
            continue
        entry = language if language in s.tts else "default"
        if entry not in s.tts:
            problem = f"no TTS for it: add synthesize.tts.{language} or synthesize.tts.default"
            raise config_error(cfg, f"languages[{i}]", problem, language)
        key, backend = f"synthesize.tts.{entry}", s.tts[entry]
        tts = engines.get(key, backend.name, backend.options)
        offered = _offered(cfg, key, tts, backend.name, language, blame=f"languages[{i}]")
        wanted = s.voices.get(language)
        _check_wanted(cfg, f"synthesize.voices.{language}", wanted, offered, backend.name, language)


def _check_choice(cfg: Any, engines: _Engines, language: str, choice: Any) -> None:
    """The engine and voices a selection file chose for ``language``."""
    key = "synthesize.selection"
    _registered(cfg, f"{key} ({language})", choice.engine, available("tts"), "tts backend")
    tts = engines.get(key, choice.engine, choice.options)
    offered = _offered(cfg, key, tts, choice.engine, language)
    _check_wanted(cfg, key, choice.voices, offered, choice.engine, language)


def check_bench_voices(cfg: BenchConfig) -> None:
    """Every benchmark engine speaks the languages it lists and offers the voices it lists."""
    engines = _Engines(cfg)
    for i, engine in enumerate(cfg.engines):
        key = f"engines[{i}]"
        tts = engines.get(key, engine.name, engine.options)
        for language in engine.languages:
            _offered(cfg, f"{key}.languages", tts, engine.name, language)
        for language, wanted in engine.voices.items():
            offered = _offered(cfg, f"{key}.voices", tts, engine.name, language)
            _check_wanted(cfg, f"{key}.voices.{language}", wanted, offered, engine.name, language)


#: Checks of one step (besides its backends and files).
_STEP_CHECKS = (
    ("prepare", check_recipe),
    ("rephrase", check_rephrase),
    ("synthesize", check_voices),
    ("export", check_export),
)


# -- the output directory ---------------------------------------------------------------------
def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def probe_writable(directory: Path) -> None:
    """Create and remove a file where ``directory`` is (or would be created).

    :raises OSError: (``PermissionError``, ``ENOSPC``, ``EROFS``...) when that fails.
    """
    target = _nearest_existing(directory)
    if not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(target))
    fd, name = tempfile.mkstemp(prefix=".preflight-", dir=target)
    os.close(fd)
    os.unlink(name)


def check_output_dir(output_dir: str | Path, subdirs: tuple[str, ...] = ("audio",)) -> None:
    """``output_dir`` and its ``subdirs`` can be created and written.

    :raises ValueError: one line naming the directory and the reason.
    """
    out = Path(output_dir)
    for directory in (out, *(out / d for d in subdirs)):
        try:
            probe_writable(directory)
        except OSError as e:
            reason = e.strerror or str(e)
            raise ValueError(
                f"output directory {directory}: cannot write there ({reason}; from -o {out})"
            ) from None
