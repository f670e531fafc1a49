"""The synthetic corpus writers: each corpus prepares with its recipe into the cuts it promises."""

import json
import tarfile
from pathlib import Path

import pytest

from lhotse_triplets import fields
from lhotse_triplets.errors import read_failures
from lhotse_triplets.recipes.deepdialogue import prepare_deepdialogue
from lhotse_triplets.recipes.multidialog import prepare_multidialog
from lhotse_triplets.testing.corpora import (
    MULTIDIALOG_SPLITS,
    RAVDESS,
    WrittenCorpus,
    write_deepdialogue,
    write_instructs2s,
    write_multidialog,
)


def _all(prepared) -> list:
    """Every cut a recipe returned: one CutSet, or one per split (``{split: cuts}``)."""
    parts = prepared.values() if isinstance(prepared, dict) else [prepared]
    return [cut for part in parts for cut in part]


def _check(cuts: list, info: WrittenCorpus) -> None:
    """The recipe kept every conversation and turn the writer promised, and the audio."""
    assert len(cuts) == info.turns
    assert len({c.custom[fields.CONVERSATION_ID] for c in cuts}) == info.conversations
    missing = [c for c in cuts if c.custom.get(fields.AUDIO_SOURCE) == "missing"]
    assert len(missing) == info.missing_audio > 0
    assert sum(c.duration for c in cuts) == pytest.approx(info.audio_seconds, abs=1e-3)
    audio = next(c for c in cuts if c.has_recording).load_audio()
    assert audio.shape[0] == 1 and audio.dtype.name == "float32"


def _failures(out: Path) -> int:
    return sum(len(read_failures(f)) for f in out.glob("*_failed_*.jsonl"))


def test_deepdialogue_shape_quirks_and_recipe(tmp_path: Path) -> None:
    info = write_deepdialogue(tmp_path / "dd", dialogues=24, seed=3, missing_ratio=0.1, bad=2)
    data = tmp_path / "dd" / "data"
    names = [p.relative_to(data) for p in data.glob("dialogues_*/*.json")]
    stems = [p.stem for p in names if not p.stem.startswith("broken")]
    assert len(stems) == 24 and len(set(stems)) == 12  # each name under two model folders
    assert {p.parent.name for p in names if p.stem == stems[0]} != {names[0].parent.name}
    segments = list(data.glob("dialogues_*/*/segments/*.wav"))
    assert {s.stem.split("_", 2)[2] for s in segments} <= set(RAVDESS)
    assert (data / "train-00000-of-00001.parquet").is_file()
    assert list(data.glob("dialogues_*/*/*_full.wav"))
    out = tmp_path / "out"
    cuts = _all(prepare_deepdialogue(tmp_path / "dd", out))
    _check(cuts, info)
    differ = [c for c in cuts if c.custom.get(fields.AUDIO_EMOTION, "") != c.custom[fields.EMOTION]]
    assert differ and _failures(out) == info.failures == 2


def test_multidialog_shape_and_recipe(tmp_path: Path) -> None:
    info = write_multidialog(
        tmp_path / "md", conversations=12, seed=1, rows_per_file=10, conversations_per_chunk=4
    )
    root = tmp_path / "md"
    assert sorted(p.name for p in (root / "metadata").iterdir()) == sorted(MULTIDIALOG_SPLITS)
    assert len(list((root / "metadata" / "train").glob("train_metadata_*.jsonl"))) > 1
    chunk = sorted((root / "data" / "train").glob("train_chunks_*.tar.gz"))[0]
    with tarfile.open(chunk) as tar:
        member = tar.getnames()[0]
    conv, stem = member.removesuffix(".wav").split("/")
    assert conv.startswith("t_") and stem.startswith(f"{conv}_") and stem[-1].isalpha()
    row = json.loads((root / "metadata" / "train" / "train_metadata_0000.jsonl").open().readline())
    assert set(row) == {
        "file_name",
        "conv_id",
        "utterance_id",
        "from",
        "value",
        "emotion",
        "original_full_path",
    }
    out = tmp_path / "out"
    cuts = _all(prepare_multidialog(root, out))
    _check(cuts, info)
    assert {c.custom[fields.SPLIT] for c in cuts} == set(MULTIDIALOG_SPLITS)
    assert _failures(out) == 0


def test_instructs2s_shape_units_and_text_only_run(tmp_path: Path) -> None:
    pytest.importorskip("ijson")
    from lhotse_triplets.recipes.instructs2s import DEFAULT_FILE, prepare_instructs2s

    info = write_instructs2s(tmp_path / "is", rows=10, seed=2, missing_ratio=0.2, bad=1)
    rows = json.loads((tmp_path / "is" / DEFAULT_FILE).read_text())
    assert len(rows) == 11 and isinstance(rows, list)
    gpt = [t for r in rows for t in r["conversation"] if t["from"] == "gpt"]
    assert all(t["unit"].startswith("<") and t["speech"].endswith("-assistant.wav") for t in gpt)
    assert any(len(r["conversation"]) > 2 for r in rows)  # multi-turn rows
    out = tmp_path / "out"
    cuts = _all(prepare_instructs2s(tmp_path / "is", out))
    _check(cuts, info)
    assert all(c.custom[fields.SPEECH_UNITS] for c in cuts if c.supervisions[0].speaker != "user")
    assert _failures(out) == info.failures == 1
    text_only = write_instructs2s(
        tmp_path / "text", rows=10, seed=2, missing_ratio=0.2, bad=1, with_audio=False
    )
    text_file = (tmp_path / "text" / DEFAULT_FILE).read_bytes()
    assert text_file == (tmp_path / "is" / DEFAULT_FILE).read_bytes()  # same rows, no wavs
    assert not (tmp_path / "text" / "wavs").exists()
    cuts = _all(prepare_instructs2s(tmp_path / "text"))
    assert len(cuts) == text_only.turns == text_only.missing_audio == info.turns


def test_writers_are_deterministic(tmp_path: Path) -> None:
    first = write_deepdialogue(tmp_path / "a", dialogues=4, seed=5)
    again = write_deepdialogue(tmp_path / "b", dialogues=4, seed=5)
    assert (first.turns, first.audio_seconds) == (again.turns, again.audio_seconds)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.json"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.json"))
    assert all((tmp_path / "a" / f).read_text() == (tmp_path / "b" / f).read_text() for f in files)
