"""The Ray executor on a real local Ray (``ray.init(num_cpus=2)``, and a ``ray start --head`` on
127.0.0.1 for the ``address`` path): the same outputs and failures as the local executor, with
and without streaming; a killed worker, a hanging item, an early stop; resumption across
executors."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from lhotse import CutSet

from lhotse_triplets.config import load_config
from lhotse_triplets.engine import (
    LocalExecutor,
    StageStopped,
    TornManifest,
    get_executor,
    list_shards,
    read_cuts,
    shard_cuts,
)
from lhotse_triplets.errors import read_failures
from lhotse_triplets.pipeline import run_pipeline
from lhotse_triplets.testing.configs import DUMMY_RUN as CONFIG
from lhotse_triplets.testing.cuts import dummy_prompt_cuts
from lhotse_triplets.testing.stages import ThreadProbe
from lhotse_triplets.transforms.registry import build_stage

ray = pytest.importorskip("ray")
from lhotse_triplets.engine.ray import RayExecutor  # noqa: E402

pytestmark = pytest.mark.slow

#: The dummy-backend run of the reliability tests; FAULTY makes its TTS give no audio for prompts
#: that say "cubes", so the runs compared have failures (and the gate rejects some clips).
FAULTY = ("synthesize.tts.default.name=faulty", "synthesize.tts.default.options.trigger=cubes")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module (2 CPUs), shut down afterwards."""
    # address="local": a new Ray for the tests, never one that happens to run on the machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def config(tmp_path: Path, *overrides: str, **changes):
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **changes}))
    return load_config(path, list(overrides))


def outputs(out: Path) -> dict:
    """What a run made, order-free: per stage the cuts (id -> JSON, the run directory's path
    written as RUN) and the failures; the triplets."""
    made = {}
    for stage in ("rephrase", "synthesize", "score", "gate"):
        cuts = {c.id: _content(c, out) for c in read_cuts(out / stage)}
        failed = sorted((f.cut_id, f.stage, f.reason) for f in read_failures(out / stage))
        made[stage] = (cuts, failed)
    lines = (out / "export" / "triplets.jsonl").read_text().replace(str(out), "RUN")
    made["triplets"] = sorted(lines.splitlines())
    return made


def _content(cut, root: Path) -> str:
    data = cut.to_dict()
    data.get("custom", {}).pop("synthesis_seconds", None)  # wall-clock time, differs per run
    return json.dumps(data, sort_keys=True, default=str).replace(str(root), "RUN")


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the same run on the local executor."""
    tmp = tmp_path_factory.mktemp("local")
    out = tmp / "run"
    summary = run_pipeline(config(tmp, *FAULTY), out, progress=False)
    return out, summary


def test_ray_run_equals_local_run(local_run, tmp_path):
    local_out, local_summary = local_run
    out = tmp_path / "run"
    cfg = config(tmp_path, *FAULTY, "engine.name=ray")
    summary = run_pipeline(cfg, out, progress=False)
    assert outputs(out) == outputs(local_out)
    assert summary.stages == local_summary.stages
    assert summary.failed == local_summary.failed and sum(summary.failed.values()) > 0
    assert summary.kept == local_summary.kept


def test_streaming_run_equals_local_run(local_run, tmp_path):
    local_out, local_summary = local_run
    out = tmp_path / "run"
    overrides = (*FAULTY, "engine.name=ray", "engine.streaming=true")
    summary = run_pipeline(config(tmp_path, *overrides), out, progress=False)
    assert outputs(out) == outputs(local_out)
    assert summary.stages == local_summary.stages
    # Every stage wrote and marked every shard (a killed streaming run resumes from them).
    shards = [p.name for p in list_shards(out / "prompts")]
    for stage in ("rephrase", "synthesize", "score", "gate"):
        assert [p.name for p in list_shards(out / stage)] == shards
        assert len(list((out / stage / ".done").glob("*.json"))) == len(shards)


def test_a_run_resumes_across_executors(local_run, tmp_path):
    """Started locally (to synthesize), finished on Ray streaming; then nothing is redone."""
    local_out, _ = local_run
    out = tmp_path / "run"
    base = FAULTY
    run_pipeline(config(tmp_path, *base), out, progress=False, until="synthesize")
    stamps = {p: p.stat().st_mtime_ns for p in (out / "synthesize" / ".done").glob("*.json")}
    cfg = config(tmp_path, *base, "engine.name=ray", "engine.streaming=true")
    summary = run_pipeline(cfg, out, progress=False)
    assert outputs(out) == outputs(local_out)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # synthesize was not redone
    rows = {row["stage"]: row for row in summary.stages}
    shards = len(stamps)
    assert rows["rephrase"]["resumed_shards"] == rows["synthesize"]["resumed_shards"] == shards
    assert rows["score"]["resumed_shards"] == 0
    again = run_pipeline(config(tmp_path, *base), out, progress=False)  # locally: all done
    assert all(row["resumed_shards"] == shards for row in again.stages)


def test_a_killed_worker_is_restarted_and_its_shard_redone(local_run, tmp_path):
    local_out, _ = local_run
    marker = tmp_path / "died"
    out = tmp_path / "run"
    cfg = config(
        tmp_path,
        "synthesize.tts.default.name=faulty",
        "synthesize.tts.default.options.fault=die_once",
        "synthesize.tts.default.options.trigger=cubes",
        f"synthesize.tts.default.options.marker={marker}",
        "engine.name=ray",
    )
    summary = run_pipeline(cfg, out, progress=False)
    assert marker.exists()  # a worker did die (SIGKILL) in the middle of a shard
    assert int(marker.read_text()) != os.getpid()
    local = outputs(local_out)
    ray_made = outputs(out)
    # Without the BAD fault of the reference run, all prompts were spoken: compare the ids of
    # what both runs share, and check that nothing is missing or doubled.
    ids = list(ray_made["synthesize"][0])
    assert len(ids) == len(set(ids))
    assert set(local["synthesize"][0]) <= set(ids)
    assert not [f for f in read_failures(out / "synthesize")]
    assert summary.stopped is None
    assert not list(out.rglob(".tmp.*"))


def test_a_hanging_item_is_cut_off_by_the_time_limit(tmp_path):
    cfg = config(
        tmp_path,
        "synthesize.tts.default.name=faulty",
        "synthesize.tts.default.options.fault=hang",
        "synthesize.tts.default.options.trigger=cubes",
        "engine.name=ray",
        "engine.item_timeout=2",
        "synthesize.batch_size=4",
    )
    out = tmp_path / "run"
    start = time.monotonic()
    run_pipeline(cfg, out, progress=False, until="synthesize")
    assert time.monotonic() - start < 300
    failures = read_failures(out / "synthesize")
    assert failures and all(f.reason.startswith("timeout: synthesize") for f in failures)
    hung = {c.id for c in read_cuts(out / "rephrase") if "cubes" in c.supervisions[0].text}
    assert {f.cut_id for f in failures} == hung  # only the hanging items, not their batches
    assert sum(1 for _ in read_cuts(out / "synthesize"))  # the rest was spoken


def test_a_stage_whose_first_items_all_fail_stops_on_ray(tmp_path):
    cfg = config(
        tmp_path,
        "synthesize.tts.default.name=faulty",
        "synthesize.tts.default.options.fault=raise",
        "synthesize.tts.default.options.trigger=null",
        "engine.name=ray",
        "engine.stop_after_failures=5",
    )
    with pytest.raises(StageStopped, match="synthesize stopped: its first"):
        run_pipeline(cfg, tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"]["reason"].startswith("synthesize stopped")
    # Its shards were left unmarked: a rerun after the fix redoes them.
    assert not list((tmp_path / "run" / "synthesize" / ".done").glob("*.json"))


def test_streaming_stops_early_too(tmp_path):
    cfg = config(
        tmp_path,
        "score.asr.name=faulty",
        "score.asr.options.fault=short_count",
        "score.asr.options.trigger=null",
        "engine.name=ray",
        "engine.streaming=true",
        "engine.stop_after_failures=5",
    )
    with pytest.raises(StageStopped, match="score stopped"):
        run_pipeline(cfg, tmp_path / "run", progress=False)


@pytest.fixture
def probe_shards(tmp_path):
    cuts = CutSet.from_cuts(dummy_prompt_cuts(8, ["en"]))
    return shard_cuts(cuts, tmp_path / "prompts", shard_size=2)


def test_ray_workers_get_the_thread_limit_and_their_own_processes(probe_shards, tmp_path):
    probe = ThreadProbe()
    probe.resources = {"concurrency": 2}
    report = RayExecutor(threads_per_worker=1, progress=False).run(
        probe, probe_shards, tmp_path / "out"
    )
    assert (report.cuts_in, report.cuts_out, report.shards) == (8, 8, 4)
    cuts = list(read_cuts(tmp_path / "out"))
    assert {c.custom["worker_threads"] for c in cuts} == {1}
    assert {c.custom["omp_num_threads"] for c in cuts} == {"1"}
    pids = {c.custom["pid"] for c in cuts}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_local_workers_get_the_thread_limit(probe_shards, tmp_path):
    report = LocalExecutor(num_workers=2, threads_per_worker=1, progress=False).run(
        ThreadProbe(), probe_shards, tmp_path / "out"
    )
    assert report.cuts_out == 8
    cuts = list(read_cuts(tmp_path / "out"))
    assert {(c.custom["worker_threads"], c.custom["omp_num_threads"]) for c in cuts} == {(1, "1")}
    assert os.getpid() not in {c.custom["pid"] for c in cuts}
    # In this process (one worker) the limit holds while the stage runs, then is lifted.
    LocalExecutor(num_workers=1, threads_per_worker=1, progress=False).run(
        ThreadProbe(), probe_shards, tmp_path / "in-process"
    )
    assert {c.custom["worker_threads"] for c in read_cuts(tmp_path / "in-process")} == {1}
    from lhotse_triplets.threads import usable_cpus, worker_threads

    assert worker_threads() == usable_cpus()


def test_worker_resources_come_from_the_backend_configs(tmp_path):
    cfg = config(
        tmp_path,
        "engine.name=ray",
        "score.asr.num_gpus=1",
        "score.mos.num_gpus=0.25",
        "score.embed.num_cpus=3",
        "score.concurrency=2",
        "synthesize.tts.default.num_gpus=0.5",
    )
    executor = get_executor(cfg.engine, progress=False)
    score = build_stage("score", cfg, tmp_path)
    synthesize = build_stage("synthesize", cfg, tmp_path)
    assert executor.workers_of(score) == 2 and executor.workers_of(synthesize) == 1
    options = executor.worker_options(score)
    assert (options["num_gpus"], options["num_cpus"]) == (1.25, 3.0)
    options = executor.worker_options(synthesize)
    assert (options["num_gpus"], options["num_cpus"]) == (0.5, executor.threads_per_worker)
    assert options["max_restarts"] == options["max_task_retries"] == 3


def test_streaming_on_the_local_executor_is_a_config_error(tmp_path):
    from lhotse_triplets.preflight import preflight

    with pytest.raises(ValueError, match=r"engine\.streaming: not an option of executor 'local'"):
        preflight(config(tmp_path, "engine.streaming=true"), tmp_path / "out")
    with pytest.raises(ValueError, match=r"num_gpus: must be >= 0"):
        preflight(config(tmp_path, "score.asr.num_gpus=-1"), tmp_path / "out")


def test_an_error_in_a_shard_is_raised_as_itself(tmp_path, probe_shards):
    """A :class:`RunError` raised in a worker (here a torn input shard) arrives as itself, one
    line naming the file, not wrapped in Ray's traceback."""
    torn = probe_shards[0]
    torn.write_bytes(torn.read_bytes()[:-12])
    with pytest.raises(TornManifest, match=f"probe: cannot read {torn} to its end") as caught:
        RayExecutor(progress=False).run(ThreadProbe(), [torn], tmp_path / "out")
    assert type(caught.value) is TornManifest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_address_joins_a_running_cluster(tmp_path):
    """``engine.address`` joins a Ray started with ``ray start --head`` on 127.0.0.1; the stage
    command with ``--engine ray`` gives the local executor's output."""
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    env = {**os.environ, "RAY_ADDRESS": ""}
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=2"]
        + ["--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        prompts = tmp_path / "prompts.jsonl.gz"
        CutSet.from_cuts(dummy_prompt_cuts(5, ["fr"])).to_file(prompts)
        cli = [sys.executable, "-m", "lhotse_triplets.bin.cli", "rephrase", str(prompts)]
        keys = ["languages=[en,fr]", "embed.name=dummy", "shard_size=2"]
        local = subprocess.run([*cli, str(tmp_path / "local"), *keys], capture_output=True)
        assert local.returncode == 0, local.stderr.decode()[-2000:]
        joined = _retry(
            [*cli, str(tmp_path / "ray"), "--engine", "ray", f"engine.address=127.0.0.1:{port}"]
            + keys,
            env,
        )
        assert joined.returncode == 0, joined.stderr.decode()[-3000:]
        assert "rephrase: 5 cuts in, 10 out, 0 failed" in joined.stdout.decode()
        assert sorted(_content(c, tmp_path) for c in read_cuts(tmp_path / "ray")) == sorted(
            _content(c, tmp_path) for c in read_cuts(tmp_path / "local")
        )
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(60)
        # `ray start` leaves the cluster's address for later `ray.init()`s on this machine
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
        shutil.rmtree(tmp_path / "ray", ignore_errors=True)


def _retry(command: list[str], env: dict, tries: int = 20) -> subprocess.CompletedProcess:
    """Run ``command`` until the head is up (it takes a few seconds to start)."""
    for _ in range(tries):
        done = subprocess.run(command, capture_output=True, env=env)
        if done.returncode == 0 or b"ConnectionError" not in done.stderr + done.stdout:
            return done
        time.sleep(3)
    return done


def test_the_example_cluster_config_follows_rays_schema():
    """``configs/ray/cluster.yaml`` is valid for ``ray up`` (Ray's own autoscaler schema)."""
    import jsonschema

    root = Path(__file__).resolve().parents[2]
    cluster = yaml.safe_load((root / "configs" / "ray" / "cluster.yaml").read_text())
    schema = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
    jsonschema.validate(cluster, json.loads(schema.read_text()))
    assert cluster["provider"]["type"] == "local"
