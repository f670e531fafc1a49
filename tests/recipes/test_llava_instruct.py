import io
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.images import load_image, load_image_bytes
from lhotse_triplets.paths import safe_name
from lhotse_triplets.recipes import prepare_llava_instruct
from lhotse_triplets.recipes.llava_instruct import llava_row_to_cuts, split_placeholders
from lhotse_triplets.testing import REFERENCE_DATA

REFERENCE = REFERENCE_DATA / "clevr" / "clevr_first1000_raw.jsonl"


def _png(color, size=(16, 12)) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(color, size=(16, 12)) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", size, color).save(buf, format="JPEG")
    return buf.getvalue()


def _chat(*texts):
    """role/content turns alternating user, assistant, ..."""
    roles = ["user", "assistant"]
    return [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)]


def _write_jsonl(path: Path, rows) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _failures(path: Path) -> dict:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(r["stage"] == "prepare" for r in records)
    return {r["cut_id"]: r["reason"] for r in records}


# --- the CLEVR reference dump ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_rows():
    if not REFERENCE.is_file():
        pytest.skip(f"reference data not found: {REFERENCE}")
    return [json.loads(line) for line in REFERENCE.read_text().splitlines()]


@pytest.fixture(scope="module")
def reference_dir(reference_rows, tmp_path_factory):
    out = tmp_path_factory.mktemp("clevr")
    prepare_llava_instruct(REFERENCE, out)
    return out


def test_reference_clevr(reference_rows, reference_dir):
    cuts = CutSet.from_file(reference_dir / "llava_instruct_cuts_train.jsonl.gz")
    assert len(cuts) == 1000
    assert (reference_dir / "llava_instruct_failed_train.jsonl").read_text() == ""
    assert cuts[0].id == "000000-t0"
    for cut, row in zip(cuts, reference_rows, strict=True):
        user, assistant = row["conversations"]
        assert cut.id == f"{row['id']}-t0"
        assert cut.custom[fields.CONVERSATION_ID] == row["id"]
        assert cut.custom[fields.TURN] == 0
        assert cut.custom[fields.HISTORY] == []
        assert cut.custom[fields.DATA_SOURCE] == "CLEVR"
        assert cut.custom[fields.ANSWER] == assistant["content"]  # verbatim
        assert cut.custom[fields.PLACEHOLDERS] == ["<image>"]
        assert cut.custom[fields.USER_TEXT] == user["content"].replace("<image>\n", "").strip()
        assert fields.IMAGE not in cut.custom  # no image_dir: text-only
        (sup,) = cut.supervisions
        assert "<image>" not in sup.text and sup.text == sup.text.strip()
        assert sup.text == " ".join(cut.custom[fields.USER_TEXT].split())
        assert (sup.id, sup.recording_id, sup.language) == (cut.id, cut.id, "en")
        assert cut.duration == 0.0 and cut.recording is None


def test_reference_eager_equals_lazy(reference_dir):
    eager = prepare_llava_instruct(REFERENCE, limit=50)  # no output_dir: in memory
    lazy = CutSet.from_jsonl_lazy(reference_dir / "llava_instruct_cuts_train.jsonl.gz")
    assert [c.to_dict() for c in eager] == [c.to_dict() for c in lazy.subset(first=50)]


def test_finished_run_is_not_redone(tmp_path):
    rows = [{"id": f"c{i}", "conversations": _chat(f"Q{i}?", f"A{i}.")} for i in range(5)]
    source = _write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "out"
    cuts_file = out / "llava_instruct_cuts_train.jsonl.gz"
    assert len(prepare_llava_instruct(source, out, limit=3)) == 3
    before = cuts_file.stat().st_mtime_ns
    assert [c.id for c in prepare_llava_instruct(source, out, limit=3)] == [
        "c0-t0",
        "c1-t0",
        "c2-t0",
    ]
    assert cuts_file.stat().st_mtime_ns == before  # not rewritten
    # other parameters, or a changed source, make a different run: redone
    assert len(prepare_llava_instruct(source, out, limit=4)) == 4
    _write_jsonl(source, rows[:2])
    assert len(prepare_llava_instruct(source, out, limit=4)) == 2


# --- multi-turn, bad input ---------------------------------------------------------------------


def test_multi_turn_history(tmp_path):
    row = {
        "id": "conv",
        "data_source": "toy",
        "conversations": [{"role": "system", "content": "Be brief."}]
        + _chat("<image>\nWhat is it?", "A cube. ", "  And its  color?\n", "Red."),
    }
    cuts = list(prepare_llava_instruct(_write_jsonl(tmp_path / "a.jsonl", [row]), tmp_path))
    assert [c.id for c in cuts] == ["conv-t0", "conv-t1"]
    assert [c.custom[fields.TURN] for c in cuts] == [0, 1]
    assert cuts[0].custom[fields.HISTORY] == []
    assert cuts[1].custom[fields.HISTORY] == [
        {"role": "user", "text": "What is it?"},
        {"role": "assistant", "text": "A cube. "},
    ]
    assert cuts[0].custom[fields.ANSWER] == "A cube. "  # verbatim, trailing space kept
    assert cuts[1].custom[fields.PLACEHOLDERS] == []
    assert cuts[1].custom[fields.USER_TEXT] == "And its  color?"
    assert cuts[1].supervisions[0].text == "And its color?"
    assert all(c.custom[fields.SYSTEM_PROMPT] == "Be brief." for c in cuts)


def test_bad_input_is_recorded_and_skipped(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("good", "empty", "only", "noreply", "multi"):
        (images / f"{name}.png").write_bytes(_png((200, 0, 0)))
    (images / "named.jpg").write_bytes(_jpeg((0, 0, 200)))
    rows = [
        {"id": "good", "conversations": _chat("<image>\nWhat is red?", "The cube.")},
        {"id": "lost", "conversations": _chat("<image>\nWhere is it?", "Gone.")},
        {"id": "empty", "conversations": _chat("  ", "Hm?")},
        {"id": "only", "conversations": _chat("<image>\n", "A picture.")},
        '{"id": "broken", "conversations": [',
        {"id": "noreply", "conversations": _chat("<image>\nAnyone?")},
        {
            "id": "named",
            "image": "named.jpg",
            "conversations": [
                {"from": "human", "value": "<image>Which color?"},
                {"from": "gpt", "value": "Blue."},
            ],
        },
        {"id": "gone", "image": "sub/gone.png", "conversations": _chat("Hi?", "Hello.")},
        {
            "id": "multi",
            "conversations": _chat("<image>\nFirst?", "One.", "", "Two.", "Third?", "Three."),
        },
        {"id": "good", "conversations": _chat("Duplicate?", "Yes.")},
        {"id": "odd", "conversations": [{"role": "narrator", "content": "Once"}]},
    ]
    source = _write_jsonl(tmp_path / "bad.jsonl", rows)
    out = tmp_path / "out"
    cuts = prepare_llava_instruct(source, out, image_dir=images)

    assert [c.id for c in cuts] == ["good-t0", "named-t0", "multi-t0", "multi-t2"]
    failures = _failures(out / "llava_instruct_failed_train.jsonl")
    assert failures.pop("lost-t0").startswith(f"missing_image: tried {images / 'lost'}.{{png,")
    assert failures.pop("gone-t0") == f"missing_image: {images / 'sub/gone.png'} does not exist"
    assert failures.pop("empty-t0") == "empty_turn: the user turn is empty"
    assert failures.pop("only-t0") == (
        "placeholders_only: the user turn has no text besides placeholders"
    )
    assert failures.pop("line-5").startswith("invalid_json: line 5: ")
    assert failures.pop("noreply-t0") == "no_reply: the user turn has no assistant reply"
    assert failures.pop("multi-t1") == "empty_turn: the user turn is empty"
    assert failures.pop("good") == "duplicate_id: conversation id 'good' was seen before"
    assert failures.pop("odd").startswith("unknown_role: turn 0 has role 'narrator'")
    assert failures == {}

    by_id = {c.id: c for c in cuts}
    assert load_image_bytes(by_id["named-t0"]) == (images / "named.jpg").read_bytes()
    assert by_id["named-t0"].supervisions[0].text == "Which color?"
    assert by_id["multi-t2"].custom[fields.HISTORY][2] == {"role": "user", "text": ""}
    assert load_image(by_id["good-t0"]).size == (16, 12)


def test_image_file_names_of_unusual_ids(tmp_path):
    """Images are looked up as ``<id>.<ext>`` (the corpus's own name) or ``<safe_name(id)>.<ext>``
    (an id that is not a safe file name: its safe characters, ``~``, 12 hex digits of SHA-1)."""
    images = tmp_path / "images"
    images.mkdir()
    assert safe_name("c/d") == "c_d~6d2cc647fdf2" and safe_name("e f") == "e_f~2994350c6061"
    (images / "a b.png").write_bytes(_png((1, 2, 3)))  # named by the corpus's own id
    (images / "c_d~6d2cc647fdf2.png").write_bytes(_png((4, 5, 6)))  # the safe name of "c/d"
    rows = [
        {"id": "a b", "conversations": _chat("Q?", "A.")},
        {"id": "c/d", "conversations": _chat("Q?", "A.")},
        {"id": "e f", "conversations": _chat("Q?", "A.")},
    ]
    out = tmp_path / "out"
    cuts = prepare_llava_instruct(
        _write_jsonl(tmp_path / "rows.jsonl", rows), out, image_dir=images
    )
    by_id = {c.id: c for c in cuts}
    assert load_image_bytes(by_id["a b-t0"]) == (images / "a b.png").read_bytes()
    assert load_image_bytes(by_id["c/d-t0"]) == (images / "c_d~6d2cc647fdf2.png").read_bytes()
    assert by_id["c/d-t0"].custom[fields.CONVERSATION_ID] == "c/d"  # ids stay as they are
    (reason,) = _failures(out / "llava_instruct_failed_train.jsonl").values()
    assert reason == (
        f"missing_image: tried {images / 'e f'}.{{png,jpg,jpeg,webp}} "
        f"or {images / 'e_f~2994350c6061'}.{{png,jpg,jpeg,webp}}"
    )

    # embedded images are written under the safe name of the id
    row = {"id": "x y/(z)", "conversations": _chat("Q?", "A."), "images": [_png((7, 8, 9))]}
    (cut,) = llava_row_to_cuts(row, fallback_id="row-0", image_output_dir=tmp_path / "written")
    assert [p.name for p in (tmp_path / "written").iterdir()] == [f"{safe_name('x y/(z)')}.png"]
    assert safe_name("x y/(z)").startswith("x_y_z~")
    assert load_image_bytes(cut) == row["images"][0]


def test_image_dir_must_be_a_folder(tmp_path):
    rows = [{"id": "a", "conversations": _chat("Q?", "A.")}]
    with pytest.raises(NotADirectoryError, match="image_dir is not a folder"):
        prepare_llava_instruct(_write_jsonl(tmp_path / "a.jsonl", rows), image_dir=tmp_path / "no")


def test_without_image_dir_is_text_only(tmp_path):
    rows = [{"id": "a", "image": "a.png", "conversations": _chat("<image>\nQ?", "A.")}]
    (cut,) = prepare_llava_instruct(_write_jsonl(tmp_path / "a.jsonl", rows))
    assert fields.IMAGE not in cut.custom


def test_unknown_sources(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="Unsupported source file"):
        prepare_llava_instruct(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError):
        prepare_llava_instruct(tmp_path / "missing.parquet")


def test_placeholders():
    assert split_placeholders("<image>\nHow many?") == ("How many?", ["<image>"])
    assert split_placeholders("Look at <image> and <image>count.") == (
        "Look at and count.",
        ["<image>", "<image>"],
    )
    assert split_placeholders("Before:\n<image>\nAfter?\n<video>") == (
        "Before:\nAfter?",
        ["<image>", "<video>"],
    )
    assert split_placeholders("No placeholder") == ("No placeholder", [])


def test_row_with_content_parts():
    row = {
        "id": 7,
        "conversations": [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]},
            {"role": "assistant", "content": "This."},
        ],
    }
    (cut,) = llava_row_to_cuts(row, fallback_id="row-0")
    assert cut.id == "7-t0"
    assert cut.custom[fields.PLACEHOLDERS] == ["<image>"]
    assert cut.supervisions[0].text == "What?"


def test_row_with_decoded_pil_image(tmp_path):
    row = {"conversations": _chat("<image>\nQ?", "A."), "images": [PIL.Image.new("RGB", (5, 4))]}
    (cut,) = llava_row_to_cuts(row, fallback_id="row-3", image_output_dir=tmp_path)
    assert cut.id == "row-3-t0"
    assert load_image_bytes(cut) == (tmp_path / "row-3.png").read_bytes()
    (failure,) = llava_row_to_cuts({**row, "images": row["images"] * 2}, fallback_id="row-4")
    assert failure.cut_id == "row-4-t0" and "2 images" in failure.reason


# --- datasets sources -----------------------------------------------------------------------------


@pytest.fixture
def hf_rows():
    return {
        "id": ["p0", "p1"],
        "data_source": ["toy", "toy"],
        "conversations": [
            [{"from": "human", "value": "<image>\nColor?"}, {"from": "gpt", "value": "Green."}],
            [{"from": "human", "value": "<image>\nShape?"}, {"from": "gpt", "value": "Round."}],
        ],
        "image": [
            {"bytes": _png((0, 160, 0)), "path": None},
            {"bytes": _jpeg((9, 9, 9)), "path": None},
        ],
    }


def _hf_dataset(rows):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "data_source": datasets.Value("string"),
            "conversations": datasets.List(
                {"from": datasets.Value("string"), "value": datasets.Value("string")}
            ),
            "image": datasets.Image(),
        }
    )
    return datasets.Dataset.from_dict(rows, features=features)


def _check_embedded_images(cuts, out, hf_rows):
    assert [c.id for c in cuts] == ["p0-t0", "p1-t0"]
    assert (out / "images" / "p0.png").read_bytes() == hf_rows["image"][0]["bytes"]
    assert (out / "images" / "p1.jpg").read_bytes() == hf_rows["image"][1]["bytes"]
    assert load_image_bytes(cuts[1]) == hf_rows["image"][1]["bytes"]
    assert np.asarray(load_image(cuts[0]))[0, 0].tolist() == [0, 160, 0]
    assert cuts[0].custom[fields.ANSWER] == "Green."
    assert cuts[0].supervisions[0].text == "Color?"
    assert cuts[0].custom[fields.DATA_SOURCE] == "toy"


def test_parquet_with_image_bytes(tmp_path, hf_rows):
    parquet = tmp_path / "data.parquet"
    _hf_dataset(hf_rows).to_parquet(str(parquet))
    out = tmp_path / "out"
    cuts = list(prepare_llava_instruct(parquet, out))
    _check_embedded_images(cuts, out, hf_rows)

    # a folder of parquet files, and a dataset saved with save_to_disk, read the same
    folder = tmp_path / "folder"
    folder.mkdir()
    _hf_dataset(hf_rows).to_parquet(str(folder / "train-00000.parquet"))
    from_folder = list(prepare_llava_instruct(folder, tmp_path / "out2"))
    _check_embedded_images(from_folder, tmp_path / "out2", hf_rows)
    _hf_dataset(hf_rows).save_to_disk(str(tmp_path / "saved"))
    from_disk = list(prepare_llava_instruct(tmp_path / "saved", tmp_path / "out3"))
    _check_embedded_images(from_disk, tmp_path / "out3", hf_rows)


def test_hub_source_streams_rows(tmp_path, hf_rows, monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(path, name=None, *, split, streaming):
        calls.append((path, name, split, streaming))
        return _hf_dataset(hf_rows).to_iterable_dataset()  # decoded PIL images, as on the hub

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    out = tmp_path / "out"
    cuts = list(
        prepare_llava_instruct("org/instruct-data", out, config="CLEVR", limit=1, split="train")
    )
    assert calls == [("org/instruct-data", "CLEVR", "train", True)]
    assert [c.id for c in cuts] == ["p0-t0"]
    assert (out / "images" / "p0.png").read_bytes() == hf_rows["image"][0]["bytes"]
    assert cuts[0].custom[fields.DATA_SOURCE] == "toy"


def test_embedded_images_without_output_dir_stay_in_memory(tmp_path, hf_rows):
    parquet = tmp_path / "data.parquet"
    _hf_dataset(hf_rows).to_parquet(str(parquet))
    cuts = prepare_llava_instruct(parquet)
    assert load_image_bytes(cuts[1]) == hf_rows["image"][1]["bytes"]
    assert not (tmp_path / "images").exists()


# --- bytes, ids, placeholders ---------------------------------------------------------------------


def test_lines_are_decoded_one_by_one(tmp_path):
    rows = [json.dumps({"id": f"r{i}", "conversations": _chat("Q?", "A.")}) for i in range(4)]
    data = b"\xef\xbb\xbf" + rows[0].encode() + b"\r\n"  # a BOM and CRLF: row 1 is kept
    data += rows[1].encode().replace(b"Q?", b"Q\xff?") + b"\n"  # not UTF-8: only line 2 fails
    data += rows[2].encode() + b"\n\n" + rows[3].encode()  # a blank line, no final newline
    source = tmp_path / "rows.jsonl"
    source.write_bytes(data)
    out = tmp_path / "out"
    assert [c.id for c in prepare_llava_instruct(source, out)] == ["r0-t0", "r2-t0", "r3-t0"]
    (reason,) = _failures(out / "llava_instruct_failed_train.jsonl").values()
    assert reason.startswith("invalid_utf8: line 2: 'utf-8' codec can't decode byte 0xff")
    assert list(_failures(out / "llava_instruct_failed_train.jsonl")) == ["line-2"]


@pytest.mark.parametrize("value", [{"x": 1}, ["a"], True, 1.5])
def test_ids_must_be_strings_or_integers(value):
    row = {"id": value, "conversations": _chat("Q?", "A.")}
    (failure,) = llava_row_to_cuts(row, fallback_id="line-3")
    assert failure.cut_id == "line-3"
    assert failure.reason.startswith(f"invalid_id: the id is a {type(value).__name__} (")


def test_more_image_placeholders_than_images_fail(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "one.png").write_bytes(_png((1, 1, 1)))
    rows = [
        {"id": "one", "conversations": _chat("Compare <image>, <image> and <image>.", "Same.")},
        {"id": "one", "conversations": _chat("<image>\nWhat?", "A cube.", "<image> And?", "Red.")},
        {"id": "one", "conversations": _chat("<image>\nWhat?", "A cube.", "And?", "Red.")},
    ]
    outputs = [llava_row_to_cuts(r, fallback_id="x", image_dir=images) for r in rows]
    assert [f.reason for f in outputs[0]] == [
        "placeholder_mismatch: 3 <image> placeholders for 1 image"
    ]
    assert [f.cut_id for f in outputs[1]] == ["one-t0", "one-t1"]
    assert all(f.reason.startswith("placeholder_mismatch: 2 ") for f in outputs[1])
    assert [c.id for c in outputs[2]] == ["one-t0", "one-t1"]  # one placeholder, one image: fine
    # text only (no image at all): placeholders are removed, as before
    (text_only,) = llava_row_to_cuts(rows[0], fallback_id="x")
    assert text_only.supervisions[0].text == "Compare , and ."


def test_truncated_image_fails_at_prepare_time(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    full = _png((5, 5, 5), size=(64, 48))
    (images / "cut.png").write_bytes(full[: len(full) // 2])
    row = {"id": "cut", "conversations": _chat("Q?", "A.")}
    (failure,) = llava_row_to_cuts(row, fallback_id="x", image_dir=images, require_images=True)
    assert failure.reason.startswith(f"unreadable_image: {images / 'cut.png'} (OSError: image file")
    embedded = {**row, "images": [full[: len(full) // 2]]}
    (failure,) = llava_row_to_cuts(embedded, fallback_id="x", image_output_dir=tmp_path / "w")
    assert failure.reason.startswith("unreadable_image: bytes (OSError")
    assert not (tmp_path / "w").exists()  # nothing written for it
