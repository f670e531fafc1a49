"""The local executor: shards, done markers, failed logs, resumption, worker processes."""

import json
import os

import pytest
from lhotse import CutSet

from lhotse_triplets.config import EngineConfig
from lhotse_triplets.cuts import with_custom
from lhotse_triplets.engine import (
    LocalExecutor,
    get_executor,
    list_shards,
    read_cuts,
    shard_cuts,
    shard_inputs,
)
from lhotse_triplets.errors import read_failures
from lhotse_triplets.testing.cuts import dummy_prompt_cuts, prompt_cut
from lhotse_triplets.transforms.base import Stage
from lhotse_triplets.transforms.rephrase import Rephrase


class CrashingRephrase(Rephrase):
    """Dies (like a killed process) when it reaches one cut."""

    def __init__(self, crash_on: str, **kw):
        super().__init__(**kw)
        self.crash_on = crash_on

    def process_batch(self, cuts):
        if any(c.id == self.crash_on for c in cuts):
            raise KeyboardInterrupt
        return super().process_batch(cuts)


def run_stage(stage, inputs, output_dir, num_workers=1):
    return LocalExecutor(num_workers=num_workers).run(stage, inputs, output_dir)


@pytest.fixture
def prompts(tmp_path):
    cuts = CutSet.from_cuts(
        list(dummy_prompt_cuts(10, ["fr"])) + [prompt_cut("nofr", "No French for me", "x")]
    )
    return shard_cuts(cuts, tmp_path / "prompts", shard_size=4)


def test_shards_and_outputs(prompts, tmp_path):
    assert len(prompts) == 3
    report = run_stage(Rephrase(["en", "fr"], batch_size=3), prompts, tmp_path / "out")
    assert (report.cuts_in, report.cuts_out, report.num_failed) == (11, 21, 1)
    assert [p.name for p in list_shards(tmp_path / "out")] == [p.name for p in prompts]
    failures = read_failures(tmp_path / "out")
    assert [(f.cut_id, f.stage) for f in failures] == [("nofr-t0", "rephrase")]
    assert "no fr text" in failures[0].reason
    ids = [c.id for c in read_cuts(tmp_path / "out")]
    assert len(ids) == len(set(ids)) == 21


def test_killed_run_resumes_without_duplicates(prompts, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_stage(CrashingRephrase("000005-t0", languages=["en"]), prompts, out)
    # Shard 0 finished; shard 1 was interrupted and left no output behind.
    assert [p.name for p in list_shards(out)] == ["cuts.000000.jsonl.gz"]
    report = run_stage(Rephrase(["en"]), prompts, out)
    assert report.shards_skipped == 1
    assert (report.cuts_in, report.cuts_out) == (11, 11)
    ids = [c.id for c in read_cuts(out)]
    assert sorted(ids) == sorted(f"{c.id}-en" for c in read_cuts(tmp_path / "prompts"))
    # A third run does nothing and reports the same totals.
    again = run_stage(Rephrase(["en"]), prompts, out)
    assert again.shards_skipped == 3 and again.cuts_out == 11


def test_parallel_workers_match_serial(prompts, tmp_path):
    serial = run_stage(Rephrase(["en", "fr"]), prompts, tmp_path / "a")
    parallel = run_stage(Rephrase(["en", "fr"]), prompts, tmp_path / "b", num_workers=2)
    assert serial.cuts_out == parallel.cuts_out
    a = sorted(json.dumps(c.to_dict(), sort_keys=True) for c in read_cuts(tmp_path / "a"))
    b = sorted(json.dumps(c.to_dict(), sort_keys=True) for c in read_cuts(tmp_path / "b"))
    assert a == b


def test_read_cuts_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.jsonl.gz"):
        read_cuts(tmp_path / "nothing.jsonl.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        read_cuts(tmp_path / "empty")


def test_executor_is_chosen_by_config_and_unknown_names_are_listed():
    executor = get_executor(EngineConfig(num_workers=2, threads_per_worker=3), progress=False)
    assert isinstance(executor, LocalExecutor)
    assert (executor.num_workers, executor.threads_per_worker) == (2, 3)
    with pytest.raises(ValueError, match="known engines: .*local"):
        get_executor(EngineConfig(name="nope"))
    with pytest.raises(ValueError, match="num_workers"):
        LocalExecutor(num_workers=0)


def test_stage_inputs_are_a_stage_dir_or_a_manifest_split_once(prompts, tmp_path):
    assert shard_inputs(tmp_path / "prompts", tmp_path / "unused", 2) == prompts
    manifest = tmp_path / "one.jsonl.gz"
    CutSet.from_cuts(dummy_prompt_cuts(5)).to_file(manifest)
    shards = shard_inputs(manifest, tmp_path / "split", 2)
    assert [p.name for p in shards] == [f"cuts.00000{i}.jsonl.gz" for i in range(3)]
    assert not (tmp_path / "unused").exists()
    # Split once: a second call reuses the shards (their content unchanged).
    before = [p.read_bytes() for p in shards]
    assert [p.read_bytes() for p in shard_inputs(manifest, tmp_path / "split", 2)] == before


class ThreadsProbe(Stage):
    """Records, on each cut, how many threads the process running it allows."""

    name = "probe"
    batch_size = 100

    def process_batch(self, cuts):
        import torch

        seen = {"omp": os.environ.get("OMP_NUM_THREADS"), "torch": torch.get_num_threads()}
        return [with_custom(c, threads=seen) for c in cuts]


def test_workers_are_limited_to_threads_per_worker(prompts, tmp_path):
    executor = LocalExecutor(num_workers=2, threads_per_worker=1, progress=False)
    executor.run(ThreadsProbe(), prompts, tmp_path / "one")
    assert {tuple(c.custom["threads"].values()) for c in read_cuts(tmp_path / "one")} == {("1", 1)}
    executor = LocalExecutor(num_workers=2, threads_per_worker=2, progress=False)
    executor.run(ThreadsProbe(), prompts, tmp_path / "two")
    assert {tuple(c.custom["threads"].values()) for c in read_cuts(tmp_path / "two")} == {("2", 2)}
