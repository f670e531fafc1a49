"""Triplet index (JSONL/CSV): one row per kept cut, pointing at media that exist; and
:func:`export_formats` running several formats through the registry."""

import csv
import gzip
import json
import tarfile
from pathlib import Path

import pytest
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.export import (
    export_formats,
    export_shar,
    export_triplets,
    read_shar,
    write_triplet_index,
)
from lhotse_triplets.export.triplets import COLUMNS

from .test_shar import kept, make_triplet_cuts


@pytest.fixture(scope="module")
def source_cuts(tmp_path_factory):
    return make_triplet_cuts(tmp_path_factory.mktemp("src"))


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_index(cuts, path: Path, include_rejected: bool = False) -> int:
    counts = write_triplet_index(cuts, path, include_rejected=include_rejected, overwrite=False)
    return counts.written


def test_export_triplets_writes_the_jsonl_index_in_the_export_dir(source_cuts, tmp_path):
    result = export_triplets(CutSet(source_cuts), tmp_path)
    assert result.paths == {"triplets": str(tmp_path / "triplets.jsonl")}
    assert result.counts.written == len(read_jsonl(tmp_path / "triplets.jsonl")) == 3
    assert result.counts.rejected == 1
    with pytest.raises(FileExistsError, match="overwrite"):
        export_triplets(CutSet(source_cuts), tmp_path)
    result = export_triplets(CutSet(source_cuts[:1]), tmp_path, overwrite=True)
    assert len(read_jsonl(tmp_path / "triplets.jsonl")) == result.counts.written == 1


@pytest.mark.parametrize("name", ["triplets.jsonl", "triplets.jsonl.gz"])
def test_jsonl_rows_point_at_the_source_media(source_cuts, tmp_path, name):
    path = tmp_path / name
    n = write_index(CutSet(source_cuts), path)
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
    write_index(CutSet(source_cuts), path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    answers = {r["id"]: r[fields.ANSWER] for r in rows}
    assert answers == {c.id: c.custom[fields.ANSWER] for c in kept(source_cuts)}
    assert any("«" in a and "\n" in a for a in answers.values())


def test_rejected_rows_only_on_request(source_cuts, tmp_path):
    n = write_index(CutSet(source_cuts), tmp_path / "all.jsonl", include_rejected=True)
    rows = read_jsonl(tmp_path / "all.jsonl")
    assert n == len(source_cuts)
    assert [r[fields.REJECT_REASON] for r in rows].count("wer 0.80 > 0.50") == 1


def test_rows_of_shar_cuts_reference_shard_members(source_cuts, tmp_path):
    shar = export_shar(CutSet(source_cuts), tmp_path / "e", shard_size=2).paths["shar"]
    path = tmp_path / "index.jsonl"
    write_index(read_shar(shar), path)
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
    n = write_index((c for c in source_cuts), tmp_path / "t.jsonl")
    assert n == len(kept(source_cuts))
    result = export_triplets((c for c in source_cuts), tmp_path)
    assert result.counts.written == len(kept(source_cuts))


def test_bad_paths_are_refused(source_cuts, tmp_path):
    with pytest.raises(ValueError, match=r"\.jsonl"):
        write_index(CutSet(source_cuts), tmp_path / "triplets.txt")
    shar = Path(export_shar(CutSet(source_cuts), tmp_path).paths["shar"])
    with pytest.raises(ValueError, match="Shar directory"):
        write_index(CutSet(source_cuts), shar / "triplets.jsonl")
    with pytest.raises(ValueError, match="Shar directory"):
        export_triplets(CutSet(source_cuts), shar)
    assert sorted(p.name.split(".")[0] for p in shar.iterdir()) == ["cuts", "image", "recording"]
    assert read_shar(shar).ids  # the Shar is still readable


def test_export_formats_writes_everything(source_cuts, tmp_path):
    out = tmp_path / "export"
    results = export_formats(CutSet(source_cuts), out, formats=["triplets", "shar"])
    assert list(results) == ["triplets", "shar"]  # in the order given
    assert results["shar"].paths == {
        "shar": str(out / "shar"),
        "nemo_config": str(out / "nemo_data.yaml"),
    }
    assert results["triplets"].paths == {"triplets": str(out / "triplets.jsonl")}
    assert all(Path(p).exists() for r in results.values() for p in r.paths.values())
    assert sorted(read_shar(out / "shar").ids) == sorted(c.id for c in kept(source_cuts))
    assert sorted(p.name for p in out.iterdir()) == [
        ".shar.written.json",
        "nemo_data.yaml",
        "shar",
        "triplets.jsonl",
    ]
    # A rerun replaces the previous export only when asked to.
    with pytest.raises(FileExistsError):
        export_formats(CutSet(source_cuts), out, formats=["shar"])
    export_formats(CutSet(source_cuts[:1]), out, formats=["shar"], overwrite=True)
    assert list(read_shar(out / "shar").ids) == [source_cuts[0].id]
    assert len(read_jsonl(out / "triplets.jsonl")) == 3  # the other format's entry is untouched
    # Unknown formats fail before anything is written, naming the known ones.
    with pytest.raises(ValueError, match="export.formats: unknown format 'parquet'") as err:
        export_formats(CutSet(source_cuts), tmp_path / "new", formats=["shar", "parquet"])
    assert "parquet" in str(err.value) and "triplet_files" in str(err.value)
    assert not (tmp_path / "new").exists()


def test_export_formats_reads_a_one_shot_iterator_once(source_cuts, tmp_path):
    results = export_formats(
        (c for c in source_cuts), tmp_path, formats=["shar", "triplets"], shard_size=1
    )
    assert results["shar"].counts.written == results["triplets"].counts.written == 3
