"""What running the pipeline at scale costs on this machine, measured side by side (ratios).

Six measurements (``--only`` picks some), one markdown table at the end
(measurement | value(s) | target | met?):

- ``throughput``: clips per hour of the quick-start pipeline, by stage (model loading apart);
- ``overhead``: the score stage through the executor vs the same backends called directly on the
  same clips in a loop with the same batches (target <= 1.05);
- ``batched``: a per-clip loop in the seed project's style (transcribe one file, embed, predict
  MOS, next file; same models, same clips) vs the batched score stage (target >= 2x);
- ``workers``: score stage with 2 single-thread local workers vs 1 (target >= 1.8x); the Ray
  executor vs the local one on the same work (within 10 %); ``run`` on Ray with
  ``engine.streaming`` on vs off;
- ``memory``: peak RSS of prepare (LLaVA JSONL) -> rephrase (rules, no embedder) -> manifest and
  Shar export of ``--sizes`` text-only prompts, each size in its own process
  (``benchmarks/scale_memory.py``; target <= 1 GB and flat);
- ``resume``: ``kill -9`` of ``lhotse-triplets run`` at 10 seeded random times, rerun each time;
  shards redone per stage (target: at most one per stage and kill).

The clips are the quick-start pipeline's own (sample corpus, Kokoro/espeak, 5 languages), about
``--clips`` of them. Run (about 15 minutes on 2 CPU cores with the defaults)::

    .venv/bin/python benchmarks/scale.py
    .venv/bin/python benchmarks/scale.py --only memory --sizes 100000,1000000
"""

import argparse
import json
import math
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "configs/quickstart.yaml")
MEASUREMENTS = ("throughput", "overhead", "batched", "workers", "memory", "resume")
#: Clips one conversation of the sample corpus gives in the quick start (8 prompts from 6
#: conversations, 5 languages, 1 voice each).
CLIPS_PER_CONVERSATION = 40 / 6
STAGES = ("rephrase", "synthesize", "score", "gate")


# --- helpers --------------------------------------------------------------------------------


def config(clips: int, *overrides: str):
    """The quick-start config for about ``clips`` clips, with ``overrides``."""
    from lhotse_triplets.config import load_config

    conversations = max(1, math.ceil(clips / CLIPS_PER_CONVERSATION))
    return load_config(
        QUICKSTART, overrides=[f"prepare.options.num_conversations={conversations}", *overrides]
    )


def in_child(function, *args):
    """``function(*args)`` (a function of this module, JSON arguments and result) in a fresh
    Python process: its own threads, heap and Ray (``ray.init`` hangs in a multiprocessing
    worker)."""
    command = [sys.executable, __file__, "--child", json.dumps([function.__name__, args])]
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def child_main(call: str) -> None:
    """The ``--child`` entry point of :func:`in_child`: print the function's result as JSON."""
    name, args = json.loads(call)
    print(json.dumps(globals()[name](*args)))


def row(measurement: str, value: str, target: str, met: bool | None) -> dict:
    return {
        "measurement": measurement,
        "value(s)": value,
        "target": target,
        "met?": "n/a" if met is None else ("yes" if met else "**no**"),
    }


def ray_available() -> str | None:
    """Why the Ray measurements cannot run (``None`` when they can)."""
    try:
        import ray  # noqa: F401

        from lhotse_triplets.engine import available_executors
    except ImportError as e:
        return f"ray is not installed ({e})"
    if "ray" not in available_executors():
        return "no `ray` executor registered"
    return None


# --- the clips and throughput (6) -----------------------------------------------------------


def run_stages(cfg, out: Path) -> dict:
    """The pipeline stage by stage into ``out`` (local executor, as configured); per stage its
    model loading and run seconds and its counts."""
    from lhotse_triplets.engine import get_executor
    from lhotse_triplets.pipeline import run_pipeline
    from lhotse_triplets.transforms.registry import build_stage

    start = time.perf_counter()
    run_pipeline(cfg, out, progress=False, until="prepare")
    timings = {"prepare": {"run_s": time.perf_counter() - start}}
    executor = get_executor(cfg.engine, progress=False)
    previous = out / "prompts"
    for name in STAGES:
        stage = build_stage(name, cfg, out)
        start = time.perf_counter()
        stage.setup()
        setup = time.perf_counter() - start
        start = time.perf_counter()
        report = executor.run(stage, previous, out / name)
        timings[name] = {
            "setup_s": setup,
            "run_s": time.perf_counter() - start,
            "cuts_in": report.cuts_in,
            "cuts_out": report.cuts_out,
            "failed": report.num_failed,
        }
        previous = out / name
    return timings


def throughput_rows(timings: dict) -> list[dict]:
    rows = []
    for name in STAGES:
        t = timings[name]
        clips = t["cuts_out"] if name == "rephrase" else t["cuts_in"]
        rate = 3600 * clips / max(t["run_s"], 1e-9)
        rows.append(
            row(
                f"6. throughput: {name} (CPU)",
                f"{rate:,.0f} clips/h ({clips} clips in {t['run_s']:.2f} s; "
                f"models load {t['setup_s']:.1f} s)",
                "measured",
                None,
            )
        )
    total = sum(t.get("setup_s", 0) + t["run_s"] for t in timings.values())
    clips = timings["gate"]["cuts_in"]
    rows.append(
        row(
            "6. throughput: whole pipeline (CPU)",
            f"{3600 * clips / total:,.0f} clips/h ({clips} clips in {total:.1f} s, models "
            f"loading included; {timings['gate']['cuts_out']} gated, kept or rejected)",
            "measured",
            None,
        )
    )
    rows.append(row("6. throughput: GPU", "no GPU was lent to this task", "measured", None))
    return rows


# --- overhead (1) and batched vs per clip (2) -----------------------------------------------


def score_backends(cfg, per_clip: bool = False) -> tuple:
    """The quick start's ASR, embedder and MOS backends (ASR one clip at a time: ``per_clip``)."""
    from lhotse_triplets.backends.registry import BackendSpec

    asr = cfg.score.asr.spec("asr")
    if per_clip:
        asr = BackendSpec(asr.kind, asr.name, {**asr.options, "batch_size": 1})
    return asr.build(), cfg.score.embed.spec("embed").build(), cfg.score.mos.spec("mos").build()


def score_clips(backends: tuple, cuts: list) -> list[dict]:
    """What the score stage computes for ``cuts``, calling the backends directly."""
    from lhotse_triplets.audio import load_cut_audio
    from lhotse_triplets.metrics import cosine, error_rate

    asr, embed, mos = backends
    audios = [load_cut_audio(c, asr.sampling_rate) for c in cuts]
    languages = [c.supervisions[0].language for c in cuts]
    hyps = asr.transcribe(audios, languages=languages)
    refs = embed.encode([c.supervisions[0].text for c in cuts])
    vecs = embed.encode([h if h.strip() else " " for h in hyps])
    if mos.sampling_rate != asr.sampling_rate:
        audios = [load_cut_audio(c, mos.sampling_rate) for c in cuts]
    scores = mos.predict(audios)
    return [
        {"wer": error_rate(c.supervisions[0].text, h, lang), "sim": cosine(r, v), "mos": m}
        for c, h, lang, r, v, m in zip(cuts, hyps, languages, refs, vecs, scores, strict=True)
    ]


def score_directly(cfg, shards: list[Path], per_clip: bool) -> float:
    """Seconds to score the cuts of ``shards`` in a plain loop (models loaded beforehand): in the
    stage's batches (per shard, ``score.batch_size``), or one clip at a time."""
    from lhotse import CutSet

    backends = score_backends(cfg, per_clip=per_clip)
    size = 1 if per_clip else cfg.score.batch_size
    start = time.perf_counter()
    for shard in shards:
        cuts = list(CutSet.from_jsonl_lazy(shard))
        for i in range(0, len(cuts), size):
            score_clips(backends, cuts[i : i + size])
    return time.perf_counter() - start


def score_stage(cfg, shards: list[Path], out: Path) -> float:
    """Seconds the executor of ``cfg.engine`` takes for the score stage over ``shards`` (models
    loaded beforehand)."""
    from lhotse_triplets.engine import get_executor
    from lhotse_triplets.transforms.registry import build_stage

    stage = build_stage("score", cfg, out)
    stage.setup()
    start = time.perf_counter()
    get_executor(cfg.engine, progress=False).run(stage, shards, out / "score")
    return time.perf_counter() - start


def score_inputs(source: Path, folder: Path, clips_per_shard: int) -> list[Path]:
    """The synthesized clips of ``source`` split into shards of ``clips_per_shard``."""
    from lhotse_triplets.engine import read_cuts, shard_cuts

    return shard_cuts(read_cuts(source), folder, clips_per_shard)


def overhead_rows(cfg, shards: list[Path], work: Path, per_clip: bool) -> list[dict]:
    clips = sum(1 for _ in _cuts(shards))
    direct = score_directly(cfg, shards, per_clip=False)
    staged = score_stage(cfg, shards, work / "overhead")
    rows = [
        row(
            "1. overhead: score stage via executor / direct loop",
            f"{staged / direct:.3f} ({staged:.1f} s vs {direct:.1f} s, {clips} clips, "
            f"batch {cfg.score.batch_size})",
            "<= 1.05",
            staged / direct <= 1.05,
        )
    ]
    if per_clip:
        single = score_directly(cfg, shards, per_clip=True)
        rows.append(
            row(
                "2. batched score stage vs per-clip loop (speed-up)",
                f"{single / staged:.2f}x ({single:.1f} s per clip loop vs {staged:.1f} s)",
                ">= 2x",
                single / staged >= 2,
            )
        )
    return rows


def _cuts(shards: list[Path]):
    from lhotse import CutSet

    for shard in shards:
        yield from CutSet.from_jsonl_lazy(shard)


# --- workers, Ray, streaming (3) ------------------------------------------------------------


def timed_score_stage(clips: int, overrides: list[str], shards: list[str], out: str) -> float:
    """(In a child process.) Seconds of the score stage run by the executor ``overrides``
    configure, each worker loading its models (included)."""
    from lhotse_triplets.engine import get_executor
    from lhotse_triplets.threads import set_worker_threads
    from lhotse_triplets.transforms.registry import build_stage

    cfg = config(clips, *overrides)
    if cfg.engine.num_workers == 1 and cfg.engine.threads_per_worker:
        set_worker_threads(cfg.engine.threads_per_worker)
    _start_ray(cfg)
    start = time.perf_counter()
    executor = get_executor(cfg.engine, progress=False)
    executor.run(
        build_stage("score", cfg, Path(out)), [Path(p) for p in shards], Path(out) / "score"
    )
    seconds = time.perf_counter() - start
    _ray_shutdown()
    return seconds


def score_load_seconds(clips: int) -> float:
    """(In a child process.) Seconds one single-thread worker takes to load the score stage's
    models (what every worker of :func:`timed_score_stage` does before its first shard)."""
    from lhotse_triplets.threads import set_worker_threads
    from lhotse_triplets.transforms.registry import build_stage

    set_worker_threads(1)
    stage = build_stage("score", config(clips), ROOT)
    start = time.perf_counter()
    stage.setup()
    return time.perf_counter() - start


def timed_pipeline(clips: int, overrides: list[str], out: str) -> float:
    """(In a child process.) Seconds of ``run`` up to the gate with ``overrides``."""
    from lhotse_triplets.pipeline import run_pipeline

    cfg = config(clips, *overrides)
    _start_ray(cfg)
    start = time.perf_counter()
    run_pipeline(cfg, out, progress=False, until="gate")
    seconds = time.perf_counter() - start
    _ray_shutdown()
    return seconds


def _start_ray(cfg) -> None:
    """Start a local Ray before the clock starts when ``cfg`` runs on Ray: a cluster is up
    before a run on it, and starting one is not the executor's cost (about 5-10 s here)."""
    if cfg.engine.name == "ray":
        import ray

        ray.init(address="local", include_dashboard=False, logging_level="WARNING")


def _ray_shutdown() -> None:
    if "ray" in sys.modules:
        import ray

        ray.shutdown()


def even_shards(shards: list[Path], folder: Path, per_shard: int = 8, workers: int = 2) -> list:
    """The clips of ``shards`` cut to a multiple of ``per_shard x workers`` and split into
    shards of ``per_shard``: every worker gets the same work (9 shards on 2 workers would cap
    the speed-up at 9 / 5 = 1.8x before anything else)."""
    from lhotse import CutSet

    from lhotse_triplets.engine import shard_cuts

    cuts = list(_cuts(shards))
    keep = len(cuts) // (per_shard * workers) * per_shard * workers
    return shard_cuts(CutSet.from_cuts(cuts[:keep]), folder, per_shard)


def workers_rows(clips: int, shards: list[Path], work: Path, ray: bool) -> list[dict]:
    one = ["engine.num_workers=1", "engine.threads_per_worker=1"]
    two = ["engine.num_workers=2", "engine.threads_per_worker=1"]
    shards = [str(p) for p in even_shards(shards, work / "even_input")]
    clips = sum(1 for _ in _cuts([Path(p) for p in shards]))
    t1 = in_child(timed_score_stage, clips, one, shards, str(work / "w1"))
    t2 = in_child(timed_score_stage, clips, two, shards, str(work / "w2"))
    load = in_child(score_load_seconds, clips)
    steady = (t1 - load) / (t2 - load)
    rows = [
        row(
            "3. workers: 2 vs 1 single-thread local workers, score stage",
            f"{t1 / t2:.2f}x with model loading ({t2:.1f} s vs {t1:.1f} s, {clips} clips in "
            f"{len(shards)} equal shards); {steady:.2f}x without it (each worker loads the score "
            f"models in {load:.1f} s on its thread)",
            ">= 1.8x",
            steady >= 1.8,
        )
    ]
    if not ray:
        return rows
    tr = in_child(timed_score_stage, clips, ["engine.name=ray", *two], shards, str(work / "ray"))
    rows.append(
        row(
            "3. Ray / local executor, score stage (2 workers x 1 thread)",
            f"{tr / t2:.2f} ({tr:.1f} s vs {t2:.1f} s; a running local Ray, actors loading "
            "models included)",
            "within 10 %",
            abs(tr / t2 - 1) <= 0.10,
        )
    )
    return rows


def streaming_rows(clips: int, work: Path) -> list[dict]:
    base = ["engine.name=ray"]
    off = in_child(timed_pipeline, clips, [*base, "engine.streaming=false"], str(work / "s0"))
    on = in_child(timed_pipeline, clips, [*base, "engine.streaming=true"], str(work / "s1"))
    return [
        row(
            "3. Ray streaming on vs off, run up to gate (speed-up)",
            f"{off / on:.2f}x ({on:.1f} s on vs {off:.1f} s off)",
            "measured (> 1 pays)",
            None,
        )
    ]


# --- memory (4) -----------------------------------------------------------------------------


def peak_rss(size: int, work: Path) -> dict:
    """Run one size of ``scale_memory.py`` in its own process; its timings and peak RSS (MB)."""
    script = Path(__file__).with_name("scale_memory.py")
    command = [sys.executable, str(script), "--size", str(size), "--workdir", str(work)]
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        output = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            errors.seek(0)
            tail = errors.read()[-3000:]
            raise RuntimeError(f"{' '.join(command)} exited with {child.returncode}:\n{tail}")
    result = json.loads(output.strip().splitlines()[-1])
    # The child's own VmHWM (its ru_maxrss would include this process's size: kept over exec).
    result["rusage_maxrss_mb"] = usage.ru_maxrss / 1024
    return result


def memory_rows(sizes: list[int], work: Path) -> list[dict]:
    results = [peak_rss(size, work / f"mem{size}") for size in sizes]
    peaks = [r["peak_rss_mb"] for r in results]
    values = "; ".join(
        f"{r['size']:,}: {r['peak_rss_mb']:.0f} MB ({r['prompts']:,} prompts, prepare+rephrase "
        f"{r['prepare_rephrase_s']:.0f} s, manifest {r['manifest_s']:.0f} s, Shar "
        f"{r['shar_s']:.0f} s)"
        for r in results
    )
    flat = max(peaks) / min(peaks)
    return [
        row(
            "4. memory: peak RSS, prepare -> rephrase -> manifest + Shar",
            f"{values}; largest / smallest {flat:.2f}",
            "<= 1024 MB, flat (<= 1.2x)",
            max(peaks) <= 1024 and flat <= 1.2,
        )
    ]


# --- resume (5) -----------------------------------------------------------------------------


def marker_times(out: Path) -> dict[str, dict[str, int]]:
    """Per stage, done marker name -> mtime (ns)."""
    return {
        name: {p.name: p.stat().st_mtime_ns for p in (out / name / ".done").glob("*.json")}
        for name in STAGES
    }


def in_progress(out: Path) -> Counter:
    """Per stage, the shards a killed run was writing (temporary manifests left): lost work."""
    return Counter({name: len(list((out / name).glob(".tmp.cuts.*"))) for name in STAGES})


def rewritten(first_seen: dict, now: dict) -> Counter:
    """Per stage, the finished shards written again since they were first seen finished."""
    return Counter(
        {
            name: sum(1 for shard, t in first_seen[name].items() if now[name].get(shard, t) != t)
            for name in STAGES
        }
    )


def resume_run(clips: int, out: Path, kill_after: float | None) -> bool:
    """``lhotse-triplets run`` into ``out``, killed with SIGKILL after ``kill_after`` seconds;
    whether it was killed (``False``: it finished first)."""
    cli = Path(sys.executable).with_name("lhotse-triplets")
    conversations = max(1, math.ceil(clips / CLIPS_PER_CONVERSATION))
    command = [str(cli), "run", QUICKSTART, "-o", str(out)]
    command += [f"prepare.options.num_conversations={conversations}", "shard_size=1"]
    child = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        child.wait(timeout=kill_after)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        return True


def resume_rows(clips: int, work: Path, seed: int, kills: int = 10) -> list[dict]:
    out = work / "resume"
    rng = random.Random(seed)
    delays = [rng.uniform(4, 16) for _ in range(kills)]
    first_seen: dict[str, dict[str, int]] = {name: {} for name in STAGES}
    worst, killed = Counter(), 0
    for delay in [*delays, None]:
        was_killed = resume_run(clips, out, delay)
        for name, markers in marker_times(out).items():
            first_seen[name] = {**markers, **first_seen[name]}
        if not was_killed:
            break
        killed += 1
        worst |= in_progress(out)
    again = rewritten(first_seen, marker_times(out))
    summary = json.loads((out / "summary.json").read_text())
    gate = next((s for s in summary.get("stages", []) if s["stage"] == "gate"), {})
    per_stage = ", ".join(f"{name} {worst[name]}" for name in STAGES)
    return [
        row(
            f"5. resume: shards redone after kill -9 ({killed} kills, seed {seed})",
            f"most in progress at a kill (redone): {per_stage}; finished shards written again: "
            f"{sum(again.values())}; finished with {gate.get('cuts_out', '?')} clips past the gate",
            "<= 1 per stage",
            killed > 0 and not sum(again.values()) and all(worst[name] <= 1 for name in STAGES),
        )
    ]


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=30, help="about this many clips")
    parser.add_argument("--only", default=",".join(MEASUREMENTS), help="comma-separated")
    parser.add_argument(
        "--sizes", default="10000,100000", help="prompts per memory point (comma-sep.)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the resume kill times")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child)
    only = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = sorted(set(only) - set(MEASUREMENTS))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(MEASUREMENTS)}")
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        work = args.workdir or Path(tmp)
        rows = measure(args, only, work)
    print(tabulate(rows, headers="keys", tablefmt="github"))


def measure(args: argparse.Namespace, only: list[str], work: Path) -> list[dict]:
    rows: list[dict] = []
    started = time.perf_counter()
    ray_missing = ray_available()
    if set(only) & {"throughput", "overhead", "batched", "workers"}:
        cfg = config(args.clips, "engine.name=local", "engine.num_workers=1")
        timings = run_stages(cfg, work / "quickstart")
        if "throughput" in only:
            rows += throughput_rows(timings)
        shards = score_inputs(work / "quickstart" / "synthesize", work / "score_input", 8)
        if "overhead" in only or "batched" in only:
            rows += overhead_rows(cfg, shards, work, per_clip="batched" in only)
        if "workers" in only:
            rows += workers_rows(args.clips, shards, work, ray=ray_missing is None)
            if ray_missing is None:
                rows += streaming_rows(args.clips, work)
            else:
                rows.append(row("3. Ray executor", f"not measured: {ray_missing}", "-", None))
        _progress(rows, started)
    if "memory" in only:
        rows += memory_rows([int(s) for s in args.sizes.split(",")], work)
        _progress(rows, started)
    if "resume" in only:
        rows += resume_rows(args.clips, work, args.seed)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"{time.perf_counter() - started:.0f} s in all; CPU: {os.cpu_count()} cores; "
        f"child CPU {children.ru_utime + children.ru_stime:.0f} s",
        file=sys.stderr,
    )
    return rows


def _progress(rows: list[dict], started: float) -> None:
    """Print the rows measured so far to stderr (a long run shows what it has)."""
    print(f"[{time.perf_counter() - started:.0f} s]", file=sys.stderr)
    for r in rows:
        print(f"  {r['measurement']}: {r['value(s)']}", file=sys.stderr)


if __name__ == "__main__":
    main()
