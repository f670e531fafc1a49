"""The bookkeeping every recipe shares: names, completion marker, writer, failed log."""

import json
import logging

import pytest
from lhotse import CutSet

from lhotse_triplets import fields, text
from lhotse_triplets.cuts import make_prompt_cut
from lhotse_triplets.errors import Failure, read_failures
from lhotse_triplets.recipes.utils import (
    RecipeFiles,
    check_cut_text,
    describe_prepared,
    file_stamp,
    prepare_manifest,
)

#: The text caps every recipe stores in its completion marker (their defaults).
CAPS = {"max_prompt_chars": text.MAX_PROMPT_CHARS, "max_answer_chars": text.MAX_ANSWER_CHARS}


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
    assert json.loads((tmp_path / ".toy_train.completed").read_text()) == {"n": 4, **CAPS}
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
    assert json.loads((tmp_path / ".toy_train.completed").read_text()) == {"n": 2, **CAPS}
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


def _prompt(cut_id, prompt, language="en", answer="Yes.", **custom):
    return make_prompt_cut(cut_id, prompt, language, {fields.ANSWER: answer, **custom})


def test_text_checks_every_recipe_inherits(tmp_path):
    items = [
        _prompt("ok", "Is the cube red?"),
        _prompt("zw", "\u200b\u200c"),
        _prompt("emoji", "\U0001f600\U0001f44d"),
        _prompt("bell", "Ring\x07 it?"),
        _prompt("script", "Is the cube red?", language="ja"),
        _prompt("cyrillic", "Какого цвета куб?"),
        _prompt("long", "Why? " * 300),
        _prompt("answer_long", "Why?", answer="x" * 50),
        _prompt("answer_ctrl", "Why?", answer="Be\x00cause."),
        _prompt("translation", "Why?", **{fields.TRANSLATIONS: {"fr": "Pourquoi?", "ja": "Why?"}}),
        _prompt("ja_ok", "立方体は何色ですか？", language="ja"),
    ]
    cuts = prepare_manifest(
        items, corpus="toy", part="train", output_dir=tmp_path, max_answer_chars=40
    )
    assert [c.id for c in cuts] == ["ok", "ja_ok"]
    reasons = {f.cut_id: f.reason for f in read_failures(tmp_path)}
    assert {k: v.split(":")[0] for k, v in reasons.items()} == {
        "zw": "no_speakable_text",
        "emoji": "no_speakable_text",
        "bell": "control_characters",
        "script": "wrong_script",
        "cyrillic": "wrong_script",
        "long": "prompt_too_long",
        "answer_long": "answer_too_long",
        "answer_ctrl": "control_characters",
        "translation": "wrong_script",
    }
    assert reasons["long"] == "prompt_too_long: 1500 characters > 1000"
    assert reasons["answer_long"] == "answer_too_long: 50 characters > 40"
    assert reasons["answer_ctrl"] == "control_characters: answer has U+0000"
    assert reasons["translation"].startswith("wrong_script: translation 'ja': ")
    marker = json.loads((tmp_path / ".toy_train.completed").read_text())
    assert marker == {**CAPS, "max_answer_chars": 40}
    # no caps: the long texts are kept (the other checks still apply)
    uncapped = prepare_manifest(
        items, corpus="toy", part="train", max_prompt_chars=None, max_answer_chars=None
    )
    assert [c.id for c in uncapped] == ["ok", "long", "answer_long", "ja_ok"]
    assert check_cut_text(_prompt("ok", "Fine?")) is None
