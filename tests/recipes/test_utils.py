"""The bookkeeping every recipe shares: names, completion marker, writer, failed log."""

import json
import logging

import pytest
from lhotse import CutSet

from lhotse_triplets.cuts import make_prompt_cut
from lhotse_triplets.errors import Failure, read_failures
from lhotse_triplets.recipes.utils import (
    RecipeFiles,
    describe_prepared,
    file_stamp,
    prepare_manifest,
)


def _cut(i: int):
    return make_prompt_cut(f"c{i}-t0", f"Question {i}?", "en", {"answer": f"A{i}."})


class Source:
    """An item source that counts how often it was read."""

    def __init__(self, n: int, bad: tuple[int, ...] = ()) -> None:
        self.n, self.bad, self.reads = n, bad, 0

    def __iter__(self):
        self.reads += 1
        for i in range(self.n):
            yield (
                Failure(f"c{i}-t0", "prepare", "empty user turn: ''") if i in self.bad else _cut(i)
            )


def test_output_names(tmp_path):
    files = RecipeFiles("toy", "dev", tmp_path)
    assert files.cuts == tmp_path / "toy_cuts_dev.jsonl.gz"
    assert files.failed == tmp_path / "toy_failed_dev.jsonl"
    assert files.marker == tmp_path / ".toy_dev.completed"
    assert RecipeFiles.of_cuts(files.cuts) == files
    assert RecipeFiles.of_cuts(tmp_path / "cuts.jsonl.gz") is None


def test_writes_cuts_failed_log_and_marker(tmp_path):
    cuts = prepare_manifest(
        Source(4, bad=(1,)), corpus="toy", part="train", output_dir=tmp_path, params={"n": 4}
    )
    assert [c.id for c in cuts] == ["c0-t0", "c2-t0", "c3-t0"]  # the bad item did not stop it
    assert [c.id for c in CutSet.from_file(tmp_path / "toy_cuts_train.jsonl.gz")] == [
        "c0-t0",
        "c2-t0",
        "c3-t0",
    ]
    lines = (tmp_path / "toy_failed_train.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"cut_id": "c1-t0", "stage": "prepare", "reason": "empty user turn: ''"}
    ]
    assert read_failures(tmp_path) == [Failure("c1-t0", "prepare", "empty user turn: ''")]
    assert json.loads((tmp_path / ".toy_train.completed").read_text()) == {"n": 4}
    assert describe_prepared(cuts) == (
        f"Prepared 3 cuts in {tmp_path / 'toy_cuts_train.jsonl.gz'} "
        f"(1 failed, see {tmp_path / 'toy_failed_train.jsonl'})"
    )


def test_completion_marker_is_honoured_and_invalidated(tmp_path):
    source = Source(3)
    manifest = tmp_path / "toy_cuts_train.jsonl.gz"
    prepare_manifest(source, corpus="toy", part="train", output_dir=tmp_path, params={"n": 3})
    written = manifest.stat().st_mtime_ns
    again = prepare_manifest(
        source, corpus="toy", part="train", output_dir=tmp_path, params={"n": 3}
    )
    assert source.reads == 1 and manifest.stat().st_mtime_ns == written  # not redone
    assert len(again) == 3
    # a changed parameter is a different run: redone
    changed = Source(2)
    redone = prepare_manifest(
        changed, corpus="toy", part="train", output_dir=tmp_path, params={"n": 2}
    )
    assert changed.reads == 1 and len(redone) == 2
    assert json.loads((tmp_path / ".toy_train.completed").read_text()) == {"n": 2}
    # without the manifest the marker means nothing
    manifest.unlink()
    assert len(prepare_manifest(Source(2), corpus="toy", part="train", output_dir=tmp_path)) == 2


def test_marker_params_compare_as_json(tmp_path):
    params = {"source": tmp_path / "rows.jsonl", "langs": ("en", "fr")}
    prepare_manifest(Source(1), corpus="toy", part="p", output_dir=tmp_path, params=params)
    source = Source(1)
    prepare_manifest(source, corpus="toy", part="p", output_dir=tmp_path, params=params)
    assert source.reads == 0


def test_unreadable_source_leaves_earlier_outputs(tmp_path):
    prepare_manifest(Source(2), corpus="toy", part="train", output_dir=tmp_path, params={"v": 1})
    before = (tmp_path / "toy_cuts_train.jsonl.gz").read_bytes()

    def broken():
        raise FileNotFoundError("no such corpus")
        yield  # a generator: fails when first drawn

    with pytest.raises(FileNotFoundError):
        prepare_manifest(broken(), corpus="toy", part="train", output_dir=tmp_path, params={"v": 2})
    assert (tmp_path / "toy_cuts_train.jsonl.gz").read_bytes() == before
    source = Source(2)
    prepare_manifest(source, corpus="toy", part="train", output_dir=tmp_path, params={"v": 1})
    assert source.reads == 0  # the finished run is still marked


def test_in_memory_mode(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    items = [[_cut(0), Failure("c1-t0", "prepare", "no reply")], _cut(2)]  # a list: one row
    with caplog.at_level(logging.INFO):
        cuts = prepare_manifest(items, corpus="toy", part="train", params={"n": 2})
    assert [c.id for c in cuts] == ["c0-t0", "c2-t0"]
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert "c1-t0 failed in prepare: no reply" in caplog.text
    assert "Prepared 2 cuts of toy; 1 items failed" in caplog.text
    assert describe_prepared(cuts) == "Prepared 2 cuts (in memory)"
    assert len(prepare_manifest([], corpus="toy", part="train")) == 0


def test_file_stamp(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("{}\n")
    assert file_stamp(path) == [3, path.stat().st_mtime_ns]
    assert file_stamp(tmp_path) is None and file_stamp("org/hub-dataset") is None
