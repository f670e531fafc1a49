"""``run``: the whole pipeline from one config — prepare, rephrase, synthesize, score, gate, export.

Each stage reads the previous stage's shards and writes its own under the output directory::

    DIR/config.yaml           the resolved configuration (secrets redacted)
    DIR/steps.json            per step, the configuration keys its outputs were made with
    DIR/prepare/              the recipe's manifest and its failed log
    DIR/prompts/              prompt cuts, sharded
    DIR/rephrase/ synthesize/ score/ gate/   stage shards (+ failed.*.jsonl, .done/)
    DIR/audio/<lang>/<voice>/<id>.flac
    DIR/export/               one entry per export format (shar/, nemo_data.yaml, triplets.jsonl...)
    DIR/failed.jsonl          every failed item: cut id, stage, reason
    DIR/summary.json          the summary (also printed)

Stages are built from the config by :func:`~lhotse_triplets.transforms.registry.build_stage` and
run by the executor ``engine`` names; a rerun with the same DIR resumes (finished shards are
skipped, torn ones and the temporary files of a killed run are cleaned up), whichever executor
ran them.

A rerun whose configuration changed a step's outputs (:data:`STEP_KEYS`, and the content of the
files of :data:`FILE_KEYS`; ``engine.*`` never does, the export is always redone) refuses with
:class:`ConfigChanged`, naming the keys, unless ``force_recompute`` names that step or an earlier
one: that step and every later one are then recomputed (only the files the run wrote for them
are deleted). ``retry_failed`` redoes the
shards that have failed items in a stage (whole shards, each replaced atomically, and the same
shards in the later stages); items the recipe could not use are bad data, never retried.

Whatever stops a run, ``summary.json`` (with ``stopped``: the step and the reason) and
``failed.jsonl`` are written before the error propagates.
"""

import hashlib
import json
import logging
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from gzip import BadGzipFile
from pathlib import Path
from typing import Any

from lhotse import CutSet
from lhotse.lazy import LazyIteratorChain

from lhotse_triplets.config import PipelineConfig, to_yaml
from lhotse_triplets.engine import (
    RunError,
    StageReport,
    get_executor,
    list_shards,
    not_writable,
    read_cuts,
    remove_temporary,
    shard_cuts,
    unmark_failed_shards,
)
from lhotse_triplets.errors import Failure, count_failures, read_failures, write_failures
from lhotse_triplets.preflight import preflight
from lhotse_triplets.redact import redact
from lhotse_triplets.summary import Summary, summarize_cuts
from lhotse_triplets.transforms.registry import STAGES, build_stage
from lhotse_triplets.transforms.rephrase import rephrase_report

logger = logging.getLogger(__name__)

#: What ``run --until`` may stop after, in order.
STEPS = ("prepare", *STAGES, "export")
#: The configuration each step's outputs depend on (sections or top-level keys); a rerun compares
#: them with those stored in ``steps.json``. ``engine.*`` changes no output; the export is redone.
STEP_KEYS: dict[str, tuple[str, ...]] = {
    "prepare": ("prepare", "shard_size"),
    "rephrase": ("languages", "rephrase"),
    "synthesize": ("synthesize",),
    "score": ("score",),
    "gate": ("gate",),
}
#: Keys naming files whose content a step's outputs depend on (step of each).
FILE_KEYS = {
    "rephrase.translation_files": "rephrase",
    "synthesize.selection": "synthesize",
    "gate.calibrated": "gate",
}
#: Keys (last part of the dotted name) that change how work is batched or placed, never its
#: outputs.
NEUTRAL_KEYS = frozenset({"batch_size", "concurrency", "num_gpus", "num_cpus"})
#: Where a run directory stores the keys of the steps it started.
STATE_FILE = "steps.json"
_UNSET = "(unset)"


class ConfigChanged(ValueError):
    """A rerun's configuration changes the outputs of steps already (partly) done."""


def prepare(cfg: PipelineConfig, output_dir: Path) -> CutSet:
    """Run the configured recipe into ``output_dir`` (skipped when already done); a recipe that
    returns one CutSet per split (the dialogue recipes) gives their chain, splits in order."""
    from lhotse_triplets.recipes import get_recipe

    recipe = get_recipe(cfg.prepare.recipe)
    result = recipe(output_dir=output_dir, **dict(cfg.prepare.options))
    if isinstance(result, Mapping):
        return CutSet(LazyIteratorChain(*result.values()))
    return result


def export(
    cfg: PipelineConfig, cuts: CutSet, output_dir: Path, failures: list[Failure]
) -> dict[str, str]:
    """Write the configured export formats of gated ``cuts`` into ``output_dir`` (replacing what
    an earlier run wrote there); export failures are appended to ``failures``.

    :return: name -> path of every output the formats name (for the summary).
    """
    from lhotse_triplets.export import ExportOptions, export_formats

    options = ExportOptions.for_run(
        cfg,
        overwrite=True,
        # The dataset card shows these: secrets and cloning references are redacted.
        settings=redact(
            {
                "languages": list(cfg.languages),
                "synthesize": _plain(cfg.synthesize),
                "score": _plain(cfg.score),
                "gate": _plain(cfg.gate),
            }
        ),
        failures=failures,
        on_failure=failures.append,
    )
    results = export_formats(cuts, output_dir, options)
    return {name: path for result in results.values() for name, path in result.paths.items()}


def _plain(section: Any) -> Any:
    """A config section as plain dicts/lists (for the dataset card)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(section))


# --- what each step was made with ---------------------------------------------------------------


def step_settings(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """Per step of :data:`STEP_KEYS`, its configuration as dotted keys -> (redacted) values.

    Example::

        >>> step_settings(load_config(overrides=["gate.min_mos=3"]))["gate"]["gate.min_mos"]
        3.0
    """
    plain = json.loads(json.dumps(redact(_plain(cfg)), default=str))
    settings = {
        step: dict(_flatten({key: plain[key] for key in keys})) for step, keys in STEP_KEYS.items()
    }
    for key, step in FILE_KEYS.items():
        value = settings[step].get(key)
        if value:  # the file's content counts, not only its name
            paths = value if isinstance(value, list) else [value]
            settings[step][f"{key} (content)"] = [_content_digest(Path(p)) for p in paths]
    return settings


def _content_digest(path: Path) -> str:
    """SHA-1 (12 hex digits) of a file's bytes, or of a folder's files (names and bytes)."""
    digest = hashlib.sha1()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        try:
            digest.update(file.read_bytes())
        except OSError:
            return "(unreadable)"
    return digest.hexdigest()[:12]


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}{key}.")
    elif prefix.rstrip(".").rsplit(".", 1)[-1] not in NEUTRAL_KEYS:
        yield prefix.rstrip("."), value


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every key whose value differs (values as JSON)."""
    return [
        f"{key}: {_show(old, key)} -> {_show(new, key)}"
        for key in sorted(set(old) | set(new))
        if old.get(key, _UNSET) != new.get(key, _UNSET)
    ]


def _show(values: dict[str, Any], key: str) -> str:
    return json.dumps(values[key], ensure_ascii=False) if key in values else _UNSET


def _load_state(out: Path) -> dict[str, dict[str, Any]]:
    try:
        state = json.loads((out / STATE_FILE).read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        logger.warning("%s is unreadable; not comparing configurations", out / STATE_FILE)
        return {}
    return state if isinstance(state, dict) else {}


def _save_state(out: Path, state: dict[str, dict[str, Any]]) -> None:
    tmp = out / f".tmp.{STATE_FILE}"
    tmp.write_text(json.dumps(state, indent=1, ensure_ascii=False))
    tmp.replace(out / STATE_FILE)


def check_rerun(
    out: Path, settings: dict[str, dict[str, Any]], force: str | None, last: str
) -> str | None:
    """The first step to recompute in ``out`` (``force``, or ``None``).

    :param last: the last step this run goes to (steps after it are not compared).
    :raises ConfigChanged: when a step up to ``last`` was started with other keys and ``force``
        is not that step or an earlier one (one line naming the keys, old -> new).
    """
    stored = _load_state(out)
    until = STEPS.index(last)
    changed = {
        step: diff
        for step in STEP_KEYS
        if step in stored
        and STEPS.index(step) <= until
        and (diff := changed_keys(stored[step], settings[step]))
    }
    if not changed:
        return force
    first = next(iter(changed))
    if force is not None and STEPS.index(force) <= STEPS.index(first):
        return force
    keys = "; ".join(line for lines in changed.values() for line in lines)
    raise ConfigChanged(
        f"{out} was made with another configuration ({keys}): rerun with --force-recompute "
        f"{first} (Python: force_recompute={first!r}) to recompute {first} and the steps after "
        "it, or use a new output directory"
    )


def forget_steps(out: Path, first: str) -> None:
    """Delete what the run wrote for step ``first`` and every later one (shards, failed logs,
    done markers, temporary files, synthesized audio; the recipe's completion marker), so that
    they are recomputed. Other files are left alone."""
    state = _load_state(out)
    for step in STEPS[STEPS.index(first) : STEPS.index("export")]:
        if step == "prepare":
            for marker in (out / "prepare").glob(".*.completed"):
                marker.unlink()
            _remove_shards(out / "prompts")
            (out / "prompts" / ".completed").unlink(missing_ok=True)
        else:
            if step == "synthesize":
                _remove_audio(out / "synthesize", out / "audio")
            _remove_shards(out / step)
        state.pop(step, None)
        logger.info("Recomputing %s: removed its outputs from %s", step, out)
    if (out / STATE_FILE).exists():
        _save_state(out, state)


def _remove_shards(stage_dir: Path) -> None:
    remove_temporary(stage_dir)
    patterns = ("cuts.*.jsonl.gz", "failed.*.jsonl", ".done/*.json")
    for path in [p for pattern in patterns for p in stage_dir.glob(pattern)]:
        path.unlink()


def _remove_audio(stage_dir: Path, audio_dir: Path) -> None:
    """Delete the audio files the synthesize shards in ``stage_dir`` point to (only those inside
    ``audio_dir``)."""
    root = audio_dir.resolve()
    if not list_shards(stage_dir):
        return
    for cut in read_cuts(stage_dir):
        for source in getattr(cut.recording, "sources", None) or []:
            path = Path(source.source).resolve() if source.type == "file" else None
            if path is not None and path.is_relative_to(root):
                path.unlink(missing_ok=True)
    remove_temporary(audio_dir, recursive=True)


def check_stage_dir(out: Path, name: str, cfg: PipelineConfig, force: bool = False) -> None:
    """What a stage command does before it runs ``name`` into its own directory ``out``: refuse
    (:class:`ConfigChanged`, naming the keys) when ``out`` was made with other keys of the stage,
    unless ``force``: then the stage's outputs in ``out`` (and the audio they point to) are
    deleted and redone. The stage's keys are recorded in ``out/steps.json``."""
    settings = step_settings(cfg)[name]
    state = _load_state(out)
    diff = changed_keys(state[name], settings) if name in state else []
    if diff and not force:
        raise ConfigChanged(
            f"{out} was made with another configuration ({'; '.join(diff)}): rerun with "
            "--force-recompute to redo it, or use a new output directory"
        )
    if force and out.is_dir():
        if name == "synthesize":
            _remove_audio(out, out / "audio")
        _remove_shards(out)
        logger.info("Recomputing %s: removed its outputs from %s", name, out)
    out.mkdir(parents=True, exist_ok=True)
    state[name] = settings
    _save_state(out, state)


def retry_failed_shards(out: Path) -> dict[str, list[str]]:
    """Unmark the finished shards with failed items in every stage of ``out``, and the same
    shards in the stages after it; return stage -> shard names unmarked."""
    names: set[str] = set()
    unmarked = {}
    for name in STAGES:
        if (out / name).is_dir() and (shards := unmark_failed_shards(out / name, also=names)):
            names.update(shards)
            unmarked[name] = shards
    for name, shards in unmarked.items():
        logger.info("%s: retrying %d shards with failed items", name, len(shards))
    return unmarked


# --- the run ------------------------------------------------------------------------------------


class _Run:
    """One invocation of :func:`run_pipeline`: the steps, and the summary written at the end."""

    def __init__(self, cfg: PipelineConfig, out: Path, progress: bool, until: str | None) -> None:
        self.cfg = cfg
        self.out = out
        self.progress = progress
        self.until = until
        self.summary = Summary()
        self.failures: list[Failure] = []
        self.step = "prepare"
        #: stages started / finished in this invocation
        self.started: list[str] = []
        self.finished: list[str] = []

    def start(self, step: str, settings: dict[str, dict[str, Any]]) -> None:
        self.step = step
        if step in settings:
            state = _load_state(self.out)
            state[step] = settings[step]
            _save_state(self.out, state)

    def steps(self, settings: dict[str, dict[str, Any]]) -> None:
        """Run the steps (up to ``until``); raise :class:`RunError` when a step leaves nothing."""
        self.start("prepare", settings)
        shards = self.prompts()
        self.summary.prompts = sum(1 for _ in read_cuts(self.out / "prompts")) if shards else 0
        if not self.summary.prompts:
            failed = read_failures(self.out / "prepare") if (self.out / "prepare").is_dir() else []
            raise RunError(f"prepare: no prompts ({_most_common(failed)}); see failed.jsonl")
        if self.until == "prepare":
            return
        executor = get_executor(self.cfg.engine, progress=self.progress)
        names = list(STAGES)
        if self.until in STAGES:
            names = names[: names.index(self.until) + 1]
        chain = [(build_stage(name, self.cfg, self.out), self.out / name) for name in names]

        def on_start(stage: Any) -> None:
            self.start(stage.name, settings)
            if stage.name == "synthesize":
                remove_temporary(self.out / "audio", recursive=True)
            self.started.append(stage.name)

        def on_report(report: StageReport) -> None:
            self.step = report.stage
            self.summary.stages.append(report.row())
            self.finished.append(report.stage)
            _check_output(report)

        executor.run_chain(self.out / "prompts", chain, on_start, on_report)
        if self.until in STAGES:
            return
        self.step = "export"
        if self.until in (None, "export"):
            gated = read_cuts(self.out / "gate")
            self.summary.outputs = export(self.cfg, gated, self.out / "export", self.failures)

    def prompts(self) -> list:
        """The prompt shards; a torn recipe manifest is prepared again (once)."""
        cuts = prepare(self.cfg, self.out / "prepare")
        try:
            return shard_cuts(cuts, self.out / "prompts", self.cfg.shard_size)
        except (EOFError, zlib.error, BadGzipFile) as e:
            path = getattr(getattr(cuts, "data", None), "path", self.out / "prepare")
            logger.warning("%s is torn (%s); preparing it again", path, e)
            for marker in (self.out / "prepare").glob(".*.completed"):
                marker.unlink()
            cuts = prepare(self.cfg, self.out / "prepare")
            return shard_cuts(cuts, self.out / "prompts", self.cfg.shard_size)

    def stopped(self, error: BaseException) -> None:
        """Record in the summary that ``error`` stopped the run (and attach the summary to it)."""
        reason = str(error) if isinstance(error, RunError) else f"{type(error).__name__}: {error}"
        self.summary.stopped = {
            "step": self.step,
            "reason": reason.splitlines()[0] if reason else "",
        }
        try:
            error.summary = self.summary  # type: ignore[attr-defined]
        except AttributeError:
            pass

    def finish(self, start: float) -> None:
        """Fill the summary and write ``summary.json`` and ``failed.jsonl`` (as far as the disk
        allows: an error writing them is logged, not raised over the run's own)."""
        try:
            self._collect()
        except Exception as e:  # a torn manifest must not cost the summary
            logger.error("The summary is incomplete: %s: %s", type(e).__name__, e)
        self.summary.failed = count_failures(self.failures)
        self.summary.seconds = time.perf_counter() - start
        failed, tmp = self.out / "failed.jsonl", self.out / ".tmp.failed.jsonl"
        try:
            write_failures(tmp, self.failures).replace(failed)
            self.summary.outputs["failed"] = str(failed)
        except OSError as e:
            logger.error("Could not write %s: %s", failed, e)
        finally:
            tmp.unlink(missing_ok=True)
        try:
            self.summary.save(self.out / "summary.json")
        except OSError as e:
            logger.error("Could not write %s: %s", self.out / "summary.json", e)

    def _collect(self) -> None:
        failures = read_failures(self.out / "prepare") if (self.out / "prepare").is_dir() else []
        for name in self.started:
            if (self.out / name).is_dir():
                failures.extend(read_failures(self.out / name))
        self.failures[:0] = failures
        if "rephrase" in self.finished:
            rephrased = rephrase_report(read_cuts(self.out / "rephrase"), num_examples=0)
            self.summary.rephrase = {
                "text_from": dict(rephrased.kept_by.most_common()),
                "rejected_rewrites": dict(rephrased.reasons.most_common()),
            }
        if "gate" in self.finished:
            summarize_cuts(read_cuts(self.out / "gate"), self.summary)


def _most_common(failures: list[Failure]) -> str:
    reasons = Counter(f.reason for f in failures)
    common = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
    return f"{len(failures)} items failed" + (f", most common: {common}" if common else "")


def _check_output(report: StageReport) -> None:
    """Raise :class:`RunError` when every item of a stage failed (nothing to go on with)."""
    if report.cuts_out == 0 and report.num_failed:
        common = "; ".join(f"{n} x {reason}" for reason, n in report.failed.most_common(3))
        raise RunError(
            f"{report.stage}: every item failed ({report.num_failed} failed, most common: "
            f"{common}); nothing to export"
        )


def run_pipeline(
    cfg: PipelineConfig,
    output_dir: str | Path,
    *,
    progress: bool = True,
    until: str | None = None,
    force_recompute: str | None = None,
    retry_failed: bool = False,
) -> Summary:
    """Run (or resume) the pipeline into ``output_dir`` and return its :class:`Summary`.

    :param until: stop after this step (one of :data:`STEPS`).
    :param force_recompute: recompute this step (one of :data:`STEP_KEYS`) and every later one,
        deleting only what the run wrote for them: needed when the configuration of a step
        already (partly) done changed.
    :param retry_failed: redo the shards that have failed items in a stage (and the same shards
        in the later stages).
    :raises ConfigChanged: when a step's configuration changed since it ran (keys named).
    :raises RunError: when a stage stops early or leaves nothing, or an output cannot be written
        (:class:`~lhotse_triplets.engine.StageStopped`, ``NotWritable``). Whatever the error,
        ``summary.json`` and ``failed.jsonl`` are written first; the error's ``summary``
        attribute holds the summary (with ``stopped``).

    Example::

        cfg = load_config("configs/quickstart.yaml")
        summary = run_pipeline(cfg, "out/quickstart")
        print(summary)
    """
    if until is not None and until not in STEPS:
        raise ValueError(f"until={until!r}; expected one of {', '.join(STEPS)}")
    if force_recompute is not None and force_recompute not in STEP_KEYS:
        raise ValueError(
            f"force_recompute={force_recompute!r}; expected one of {', '.join(STEP_KEYS)}"
        )
    preflight(cfg, output_dir)
    start = time.perf_counter()
    out = Path(output_dir)
    settings = step_settings(cfg)
    recompute = check_rerun(out, settings, force_recompute, until or STEPS[-1])
    run = _Run(cfg, out, progress, until)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if recompute is not None:
            forget_steps(out, recompute)
        if retry_failed:
            retry_failed_shards(out)
        (out / "config.yaml").write_text(to_yaml(cfg))
        run.steps(settings)
    except OSError as e:
        wrapped = not_writable(e, run.step, out)
        run.stopped(wrapped or e)
        if wrapped is None:
            raise
        raise wrapped from e
    except BaseException as e:
        run.stopped(e)
        raise
    finally:
        if out.is_dir():
            run.finish(start)
    return run.summary
