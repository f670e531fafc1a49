"""The local executor: shards, done markers, failed logs, resumption, worker processes."""

import json
import os

import pytest
from lhotse import CutSet

from lhotse_triplets.config import EngineConfig
from lhotse_triplets.cuts import with_custom
from lhotse_triplets.engine import (
    LocalExecutor,
    StageStopped,
    check_manifest,
    get_executor,
    list_shards,
    read_cuts,
    shard_cuts,
    shard_inputs,
    unmark_failed_shards,
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


class FailEverything(Stage):
    """A stage whose backend cannot work: every item fails."""

    name = "broken"
    batch_size = 2

    def process_batch(self, cuts):
        return [self.failure(c, "broken_backend: no such voice") for c in cuts]


class FailSome(Stage):
    """Every item of shard 0 fails, the others pass: not a broken stage."""

    name = "some"

    def process_batch(self, cuts):
        return [self.failure(c, "bad_item: x") if c.id < "000004" else c for c in cuts]


@pytest.mark.parametrize("num_workers", [1, 2])
def test_a_stage_whose_first_items_all_fail_stops(prompts, tmp_path, num_workers):
    executor = LocalExecutor(num_workers=num_workers, progress=False, stop_after_failures=5)
    with pytest.raises(StageStopped, match=r"broken stopped: its first \d+ items all failed") as e:
        executor.run(FailEverything(), prompts, tmp_path / "out")
    assert "stop_after_failures=5" in str(e.value) and "x broken_backend: no such voice" in str(
        e.value
    )
    # Nothing stays marked done (a rerun after the fix redoes it); the failures are kept.
    assert not list((tmp_path / "out" / ".done").glob("*.json"))
    assert not list((tmp_path / "out").glob(".tmp.*"))
    assert len(read_failures(tmp_path / "out")) >= 5
    if num_workers == 1:  # in this process it stops inside the second shard
        assert len(read_failures(tmp_path / "out")) == 6
    # Fewer than N failures before a success do not stop a stage, nor a stage of fewer items.
    report = executor.run(FailSome(), prompts, tmp_path / "some")
    assert (report.cuts_out, report.num_failed) == (7, 4)
    LocalExecutor(stop_after_failures=20).run(FailEverything(), prompts, tmp_path / "few")


def test_shard_size_must_be_positive(tmp_path):
    for size in (0, -1):
        with pytest.raises(ValueError, match="shard_size must be an integer >= 1"):
            shard_cuts(CutSet.from_cuts(dummy_prompt_cuts(3)), tmp_path / "s", size)


def test_torn_and_temporary_files_of_a_killed_run_are_cleaned(prompts, tmp_path, caplog):
    out = tmp_path / "out"
    run_stage(Rephrase(["en"]), prompts, out)
    expected = sorted(c.id for c in read_cuts(out))
    torn = out / "cuts.000001.jsonl.gz"
    torn.write_bytes(torn.read_bytes()[:-10])
    assert "end-of-stream" in check_manifest(torn)
    (out / ".tmp.cuts.000002.jsonl.gz").write_bytes(b"half")
    with caplog.at_level("WARNING"):
        report = run_stage(Rephrase(["en"]), prompts, out)
    assert f"{torn} is torn" in caplog.text
    assert report.shards_skipped == 2 and sorted(c.id for c in read_cuts(out)) == expected
    assert check_manifest(torn) is None and not list(out.glob(".tmp.*"))


def test_unmark_failed_shards(prompts, tmp_path):
    out = tmp_path / "out"
    run_stage(Rephrase(["fr"]), prompts, out)  # "nofr" (shard 2) fails
    assert unmark_failed_shards(out) == ["cuts.000002.jsonl.gz"]
    assert unmark_failed_shards(out, also=["cuts.000000.jsonl.gz"]) == ["cuts.000000.jsonl.gz"]
    report = run_stage(Rephrase(["fr"]), prompts, out)
    assert report.shards_skipped == 1 and report.num_failed == 1
