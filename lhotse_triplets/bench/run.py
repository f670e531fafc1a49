"""``bench run``: synthesize and score every cell of an engine × language × voice × prompt grid.

Layout of a benchmark directory::

    DIR/config.yaml                          the resolved BenchConfig
    DIR/prompts/<engine>/<lang>/             prompt cuts (sharded) + grid.json (ids -> voices)
    DIR/synthesize/<engine>/<lang>/          stage shards, failed.*.jsonl, .done/
    DIR/score/<engine>/<lang>/               scored clips
    DIR/audio/<engine>/<lang>/<voice>/*.flac the clips
    DIR/clips.csv, clips.jsonl, tables/, plots/, failed.jsonl   (see :mod:`.report`)

Every stage runs through the configured executor (``engine``), so a killed run resumes where
it stopped, and a grid extended with an engine or a language only runs the new cells. Changing
the prompts or voices of an existing cell is refused (use a new DIR).

Clip ids are ``{engine}-{lang}-{prompt_id}-{voice}``, where ``prompt_id`` is the prompt's
``uid``/``sid`` made a safe file name (:func:`~lhotse_triplets.paths.safe_name`: unchanged when it
already is one; the original is kept in ``custom[fields.CONVERSATION_ID]``), and every clip path
is checked to lie under DIR before anything is synthesized.
"""

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lhotse import CutSet
from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.bench.prompts import load_prompts, prompt_file
from lhotse_triplets.config import BenchConfig, BenchEngineConfig, to_yaml
from lhotse_triplets.cuts import make_prompt_cut
from lhotse_triplets.engine import Executor, StageReport, get_executor, shard_cuts
from lhotse_triplets.errors import ItemError
from lhotse_triplets.paths import inside, safe_name
from lhotse_triplets.redact import redact
from lhotse_triplets.transforms.registry import build_stage
from lhotse_triplets.transforms.synthesize import Synthesize

logger = logging.getLogger(__name__)


class GridSynthesize(Synthesize):
    """:class:`Synthesize` with the voices of each prompt given explicitly (a rotation).

    :param warmup: ``(language, voice, text)`` spoken once per process before timing starts, so
        that the recorded ``synthesis_seconds`` (and the RTF) leave out lazy model loading.
    """

    def __init__(
        self,
        assignments: dict[str, list[str]],
        warmup: tuple[str, str, str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.assignments = dict(assignments)
        self.warmup = warmup
        self._warm = False

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_warm"] = False
        return state

    def setup(self) -> None:
        super().setup()
        if self.warmup is not None and not self._warm:
            language, voice, text = self.warmup
            _, tts = self.engine(language)
            try:
                tts.synthesize([text], language=language, voice=voice)
            except Exception as e:  # the real attempt records the failure
                logger.warning("Warm-up of %s failed: %s", self.spec_for(language).name, e)
            self._warm = True

    def pick(self, cut: Cut, language: str) -> list[str]:
        return list(self.assignments.get(cut.id, []))


@dataclass
class Cell:
    """One engine × language cell of the grid: its prompts and which voices speak each."""

    engine: str
    language: str
    spec: BackendSpec
    voices: list[str]
    #: prompt cut id -> voices
    assignments: dict[str, list[str]] = field(default_factory=dict)
    cuts: list[Cut] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.engine}/{self.language}"


def engine_label(engine: BenchEngineConfig) -> str:
    return engine.label or engine.name


def rotate_voices(num_prompts: int, voices: Sequence[str], per_prompt: int) -> list[list[str]]:
    """Voices for each prompt: prompt ``i`` gets ``per_prompt`` voices starting at ``i``
    (``per_prompt`` <= 0 or >= len(voices): every voice).

    Example::

        >>> rotate_voices(3, ["a", "b"], 1)
        [['a'], ['b'], ['a']]
    """
    if per_prompt <= 0 or per_prompt >= len(voices):
        return [list(voices) for _ in range(num_prompts)]
    return [[voices[(i + k) % len(voices)] for k in range(per_prompt)] for i in range(num_prompts)]


def plan_grid(cfg: BenchConfig) -> list[Cell]:
    """The grid's cells, checked against what each engine offers (before any work).

    :raises ValueError: on duplicate engine labels, a language or voice an engine does not
        offer, or a language without prompts.
    """
    if not cfg.engines:
        raise ValueError("The benchmark config lists no engines (engines: [{name: kokoro}, ...])")
    labels = [engine_label(e) for e in cfg.engines]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ValueError(f"Engine labels must be unique; repeated: {dupes} (set label: ...)")
    prompts: dict[str, list[tuple[str, str]]] = {}
    cells = []
    for engine in cfg.engines:
        label = engine_label(engine)
        if "-" in label or "/" in label:
            raise ValueError(f"Engine label {label!r} may not contain '-' or '/'")
        spec = BackendSpec("tts", engine.name, dict(engine.options))
        tts = spec.build()
        for language in _engine_languages(cfg, engine, tts.languages()):
            if language not in prompts:
                prompts[language] = _prompts_for(cfg, language)
            voices = _engine_voices(engine, language, tts.voices(language))
            cells.append(_cell(cfg, label, language, spec, voices, prompts[language]))
    return cells


def _engine_languages(cfg: BenchConfig, engine: BenchEngineConfig, offered: list[str]) -> list:
    """The benchmark languages ``engine`` is tried on (its own list, checked, or all it speaks)."""
    if not engine.languages:
        return [x for x in cfg.languages if x in offered]
    unknown = [x for x in engine.languages if x not in offered]
    if unknown:
        raise ValueError(
            f"TTS engine {engine_label(engine)!r} does not speak {unknown}; it speaks: "
            f"{', '.join(offered)}"
        )
    return [x for x in engine.languages if x in cfg.languages or not cfg.languages]


def _engine_voices(engine: BenchEngineConfig, language: str, available: list[str]) -> list[str]:
    """The voices of ``engine`` tried in ``language`` (its own list, checked, or all)."""
    voices = list(engine.voices.get(language) or available)
    bad = [v for v in voices if v not in available]
    if bad:
        raise ValueError(
            f"TTS engine {engine_label(engine)!r} has no voices {bad} for {language!r}; "
            f"available: {', '.join(available)}"
        )
    return voices


def _cell(
    cfg: BenchConfig,
    label: str,
    language: str,
    spec: BackendSpec,
    voices: list[str],
    prompts: list[tuple[str, str]],
) -> Cell:
    cell = Cell(label, language, spec, voices)
    per_prompt = rotate_voices(len(prompts), voices, cfg.voices_per_prompt)
    for (pid, text), vs in zip(prompts, per_prompt):
        cut_id = f"{label}-{language}-{safe_name(pid)}"
        custom = {fields.CONVERSATION_ID: pid, fields.TURN: 0, fields.USER_TEXT: text}
        cell.cuts.append(make_prompt_cut(cut_id, text, language, custom))
        cell.assignments[cut_id] = vs
    return cell


def check_clip_paths(cell: Cell, out: Path, audio_format: str) -> None:
    """Refuse a cell whose clips (``DIR/audio/<engine>/<lang>/<voice>/<clip id>.<format>``) would
    be written outside ``out`` (a language or voice name such as ``..`` or ``a/../../b``).

    :raises ValueError: naming the cell and the path.
    """
    audio_dir = out / "audio" / cell.engine / cell.language
    for cut_id, voices in cell.assignments.items():
        for voice in voices:
            clip = audio_dir / voice / f"{safe_name(f'{cut_id}-{voice}')}.{audio_format}"
            try:
                inside(clip, out, what="bench clip")
            except ItemError as e:
                raise ValueError(f"bench cell {cell.key}: {e.reason}") from None
            except (OSError, ValueError, RuntimeError) as e:
                raise ValueError(f"bench cell {cell.key}: clip path {clip} ({e})") from None


def _prompts_for(cfg: BenchConfig, language: str) -> list[tuple[str, str]]:
    if language in cfg.prompt_files:
        path = Path(cfg.prompt_files[language])
    elif cfg.prompt_dir:
        path = prompt_file(language, cfg.prompt_dir)
    else:
        raise ValueError(f"No prompts for {language!r}: set prompt_dir or prompt_files.{language}")
    prompts = load_prompts(path, language, limit=cfg.prompts_per_language)
    if not prompts:
        raise ValueError(f"{path} holds no prompts")
    return prompts


def _check_grid(prompt_dir: Path, cell: Cell) -> None:
    """Record the cell's grid; refuse a directory made with another one."""
    grid = {"engine": cell.engine, "language": cell.language, "voices": cell.voices}
    grid["assignments"] = cell.assignments
    # Redacted: grid.json is shared with reports and selections (no api_key, no references).
    grid["backend"] = {"name": cell.spec.name, "options": redact(cell.spec.options)}
    path = prompt_dir / "grid.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(grid)):
            raise ValueError(
                f"{path} was written for another grid (prompts, voices or engine options of "
                f"{cell.key} changed); use a new output directory or delete {prompt_dir.parent}"
            )
    else:
        prompt_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".tmp.grid.json")
        tmp.write_text(json.dumps(grid, indent=1, ensure_ascii=False))
        tmp.replace(path)


@dataclass
class BenchRun:
    """What :func:`run_bench` did: per cell, the stage counts and wall seconds."""

    cells: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, cell: Cell, report: StageReport, seconds: float) -> None:
        self.cells.append(
            {
                "cell": cell.key,
                "stage": report.stage,
                "in": report.cuts_in,
                "out": report.cuts_out,
                "failed": report.num_failed,
                "resumed_shards": report.shards_skipped,
                "seconds": round(seconds, 1),
            }
        )


def _synthesize_cell(
    cfg: BenchConfig, cell: Cell, out: Path, executor: Executor, result: BenchRun
) -> Path:
    """Synthesize one cell's prompts (resuming); return its stage directory."""
    prompt_dir = out / "prompts" / cell.engine / cell.language
    _check_grid(prompt_dir, cell)
    shards = shard_cuts(CutSet.from_cuts(cell.cuts), prompt_dir, cfg.shard_size)
    stage = GridSynthesize(
        cell.assignments,
        warmup=(cell.language, cell.voices[0], cell.cuts[0].supervisions[0].text),
        tts={"default": cell.spec},
        sampling_rate=cfg.sampling_rate,
        audio_dir=out / "audio" / cell.engine,
        audio_format=cfg.audio_format,
        batch_size=cfg.batch_size,
    )
    stage.item_timeout = cfg.engine.item_timeout
    t0 = time.perf_counter()
    logger.info("bench: synthesize %s (%d prompts)", cell.key, len(cell.cuts))
    synth_dir = out / "synthesize" / cell.engine / cell.language
    result.add(cell, executor.run(stage, shards, synth_dir), time.perf_counter() - t0)
    return synth_dir


def run_bench(
    cfg: BenchConfig, output_dir: str | Path, *, progress: bool = True, report: bool = True
) -> BenchRun:
    """Synthesize and score every grid cell (resuming), then write clips, tables and plots.

    Example::

        cfg = load_config("configs/bench.yaml", schema=BenchConfig)
        run_bench(cfg, "bench-out")
    """
    start = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells = plan_grid(cfg)
    for cell in cells:
        check_clip_paths(cell, out, cfg.audio_format)
    (out / "config.yaml").write_text(to_yaml(cfg))
    executor = get_executor(cfg.engine, progress=progress)
    result = BenchRun()
    synth_dirs = [(cell, _synthesize_cell(cfg, cell, out, executor, result)) for cell in cells]
    scorer = build_stage("score", cfg)
    for cell, synth_dir in synth_dirs:
        t0 = time.perf_counter()
        logger.info("bench: score %s", cell.key)
        score_dir = out / "score" / cell.engine / cell.language
        result.add(cell, executor.run(scorer, synth_dir, score_dir), time.perf_counter() - t0)
    result.seconds = time.perf_counter() - start
    runs_path = out / "runs.jsonl"
    with runs_path.open("a") as f:
        f.write(json.dumps({"seconds": round(result.seconds, 1), "cells": result.cells}) + "\n")
    if report:
        from lhotse_triplets.bench.report import write_report

        write_report(out, cfg=cfg)
    return result
