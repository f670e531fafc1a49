"""Triplet index (JSONL/CSV): one row per kept cut, pointing at media that exist."""

import csv
import gzip
import json
import tarfile
from pathlib import Path

import pytest
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.export import export_formats, export_shar, export_triplets, read_shar
from lhotse_triplets.export.triplets import COLUMNS

from .test_shar import kept, make_triplet_cuts


@pytest.fixture(scope="module")
def source_cuts(tmp_path_factory):
    return make_triplet_cuts(tmp_path_factory.mktemp("src"))


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("name", ["triplets.jsonl", "triplets.jsonl.gz"])
def test_jsonl_rows_point_at_the_source_media(source_cuts, tmp_path, name):
    path = tmp_path / name
    n = export_triplets(CutSet(source_cuts), path)
    rows = read_jsonl(path)
    assert n == len(rows) == len(kept(source_cuts))
    by_id = {c.id: c for c in source_cuts}
    for row in rows:
        assert tuple(row) == COLUMNS
        src = by_id[row["id"]]
        assert row[fields.ANSWER] == src.custom[fields.ANSWER]
        assert row["prompt_text"] == src.supervisions[0].text
        assert row["language"] == src.supervisions[0].language
        assert row["voice"] == src.supervisions[0].speaker
        assert row[fields.TTS_MODEL] == "espeak"
        assert row[fields.WER] == pytest.approx(0.1)
        assert row[fields.GATE_SCORE] == pytest.approx(0.87)
        assert row["duration"] == pytest.approx(src.duration)
        assert row[fields.REJECT_REASON] is None
        assert Path(row[fields.IMAGE]).is_file()
        image = src.custom[fields.IMAGE]
        assert row[fields.IMAGE] == str(Path(image.storage_path) / image.storage_key)
        if src.recording.sources[0].type == "file":
            assert row["audio"] == src.recording.sources[0].source
            assert Path(row["audio"]).is_file()
        else:
            assert row["audio"] is None  # in-memory audio has no path
    assert not list(tmp_path.glob(".*partial"))


def test_csv_keeps_multiline_unicode_answers(source_cuts, tmp_path):
    path = tmp_path / "triplets.csv"
    export_triplets(CutSet(source_cuts), path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    answers = {r["id"]: r[fields.ANSWER] for r in rows}
    assert answers == {c.id: c.custom[fields.ANSWER] for c in kept(source_cuts)}
    assert any("«" in a and "\n" in a for a in answers.values())


def test_rejected_rows_only_on_request(source_cuts, tmp_path):
    n = export_triplets(CutSet(source_cuts), tmp_path / "all.jsonl", include_rejected=True)
    rows = read_jsonl(tmp_path / "all.jsonl")
    assert n == len(source_cuts)
    assert [r[fields.REJECT_REASON] for r in rows].count("wer 0.80 > 0.50") == 1


def test_rows_of_shar_cuts_reference_shard_members(source_cuts, tmp_path):
    shar = tmp_path / "shar"
    export_shar(CutSet(source_cuts), shar, shard_size=2)
    path = tmp_path / "index.jsonl"
    export_triplets(read_shar(shar), path)
    rows = read_jsonl(path)
    assert len(rows) == len(kept(source_cuts))
    for row in rows:
        for key in (fields.IMAGE, "audio"):
            tar, member = row[key].split("#")
            assert member == row["id"]
            with tarfile.open(tar) as t:
                assert any(Path(n).stem == row["id"] for n in t.getnames())
        assert Path(row["shard"]).name.startswith("cuts.")


def test_streams_from_a_generator(source_cuts, tmp_path):
    n = export_triplets((c for c in source_cuts), tmp_path / "t.jsonl")
    assert n == len(kept(source_cuts))


def test_bad_paths_are_refused(source_cuts, tmp_path):
    with pytest.raises(ValueError, match=r"\.jsonl"):
        export_triplets(CutSet(source_cuts), tmp_path / "triplets.txt")
    shar = tmp_path / "shar"
    export_shar(CutSet(source_cuts), shar)
    with pytest.raises(ValueError, match="Shar directory"):
        export_triplets(CutSet(source_cuts), shar / "triplets.jsonl")
    assert read_shar(shar).ids  # the Shar is still readable


def test_export_formats_writes_everything(source_cuts, tmp_path):
    outputs = export_formats(
        CutSet(source_cuts), tmp_path / "export", formats=["shar", "triplets", "nemo_config"]
    )
    assert set(outputs) == {"shar", "nemo_config", "triplets"}
    assert all(Path(p).exists() for p in outputs.values())
    assert sorted(read_shar(outputs["shar"]).ids) == sorted(c.id for c in kept(source_cuts))
    # A rerun replaces the previous export.
    export_formats(CutSet(source_cuts), tmp_path / "export", formats=["shar"])
    with pytest.raises(ValueError, match="known formats"):
        export_formats(CutSet(source_cuts), tmp_path / "export", formats=["parquet"])
