"""The per-speaker report of a speaker set: markdown tables, PNG figures, edge cases."""

import errno
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lhotse_triplets.recipes.speakers import report as report_module
from lhotse_triplets.recipes.speakers.report import (
    DURATIONS_PNG,
    EMBEDDINGS_PNG,
    SPLITS_PNG,
    _projection,
    write_speaker_report,
)

PNGS = (DURATIONS_PNG, SPLITS_PNG, EMBEDDINGS_PNG)


def _speaker(name: str, n: int, centre: float, rng, excluded: dict, folder: str) -> dict:
    """A synthetic speaker: ``n`` kept clips, embeddings clustered around ``centre``."""
    embeddings = rng.normal(centre, 0.05, size=(n, 8)).astype(np.float32)
    durations = [round(float(d), 3) for d in rng.uniform(1.5, 12.0, size=n)]
    valid = max(1, n // 10) if n >= 2 else 0
    return {
        "speaker": name,
        "durations": durations,
        "train": n - valid,
        "valid": valid,
        "excluded": excluded,
        "medoid": {
            "audio": f"{folder}/{name}/clip_{n - 1:03d}.wav",
            "text": f"I am {name}.",
            "index": n - 1,
        },
        "embeddings": embeddings,
    }


def _three_speakers(tmp_path: Path) -> list[dict]:
    rng = np.random.default_rng(0)
    folder = str(tmp_path / "corpus" / "secret_folder")
    return [
        _speaker("anna", 12, 0.0, rng, {"too_short": 2, "clipped": 1}, folder),
        _speaker("bob", 5, 3.0, rng, {"empty_transcript": 1}, folder),
        _speaker("carla | cz", 3, -3.0, rng, {"missing_audio": 4}, folder),
    ]


def test_report_lists_every_speaker_reason_and_medoid(tmp_path: Path) -> None:
    speakers = _three_speakers(tmp_path)
    path = write_speaker_report(speakers, tmp_path / "out")

    assert path == tmp_path / "out" / "report.md"
    text = path.read_text("utf-8")
    for name in ("anna", "bob", r"carla \| cz"):
        assert f"## Speaker {name}" in text
    for reason in ("too_short", "clipped", "empty_transcript", "missing_audio"):
        assert f"excluded: {reason}" in text
    # numbers a user reads: clips, minutes, train/valid of anna
    anna = speakers[0]
    assert f"{sum(anna['durations']) / 60:.2f}" in text
    assert "| train" in text and "| valid" in text
    # medoid by file name and transcript; never the folder it lies in
    assert "clip_011.wav (clip 11)" in text and "I am anna." in text
    assert str(tmp_path) not in text and "secret_folder" not in text
    assert "not an export" in text
    for name in PNGS:
        assert f"]({name})" in text
        with Image.open(tmp_path / "out" / name) as image:
            image.verify()
            assert image.format == "PNG"
    # atomic writes leave no temporary file behind
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(["report.md", *PNGS])


def test_report_is_deterministic(tmp_path: Path) -> None:
    speakers = _three_speakers(tmp_path)
    first = write_speaker_report(speakers, tmp_path / "a").parent
    second = write_speaker_report(speakers, tmp_path / "b").parent
    for name in ("report.md", *PNGS):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_projection_separates_clustered_speakers(tmp_path: Path) -> None:
    speakers = _three_speakers(tmp_path)
    rows = [report_module._normalised(s) for s in speakers]
    points = _projection(rows)
    assert points.shape == (20, 2)
    centres = [points[:12].mean(0), points[12:17].mean(0), points[17:].mean(0)]
    spread = max(np.linalg.norm(points[:12] - centres[0], axis=1))
    assert min(np.linalg.norm(centres[0] - c) for c in centres[1:]) > 5 * spread


@pytest.mark.parametrize(
    "embeddings",
    [np.ones((1, 16)), np.ones((1, 1)), np.ones(16), None],
    ids=["one_clip", "one_dimension", "flat", "no_embeddings"],
)
def test_one_speaker_with_one_clip(tmp_path: Path, embeddings) -> None:
    speaker = {
        "speaker": "solo",
        "durations": [3.25],
        "train": 1,
        "valid": 0,
        "excluded": {},
        "medoid": {"audio": "C:\\voices\\solo\\take1.flac", "text": "Only one.", "index": 0},
        "embeddings": embeddings,
    }
    text = write_speaker_report([speaker], tmp_path).read_text("utf-8")
    assert "## Speaker solo" in text and "take1.flac (clip 0)" in text
    assert "voices" not in text and "0.05" in text  # 3.25 s = 0.05 min
    for name in PNGS:
        with Image.open(tmp_path / name) as image:
            image.verify()


def test_speaker_with_every_clip_excluded(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    kept = _speaker("kept", 4, 1.0, rng, {}, "/data")
    none = {
        "speaker": "gone",
        "durations": [],
        "train": 0,
        "valid": 0,
        "excluded": {"silent": 3},
        "medoid": None,
        "embeddings": np.zeros((0, 8)),
    }
    text = write_speaker_report([kept, none], tmp_path).read_text("utf-8")
    assert "## Speaker gone" in text and "excluded: silent" in text
    one_d = {**kept, "embeddings": np.arange(4.0)}  # D = 1 given flat
    write_speaker_report([one_d], tmp_path / "flat")
    assert (tmp_path / "flat" / EMBEDDINGS_PNG).stat().st_size > 0


def test_full_disk_leaves_previous_report_whole(tmp_path: Path, monkeypatch) -> None:
    speakers = _three_speakers(tmp_path)
    path = write_speaker_report(speakers, tmp_path)
    before = path.read_bytes()

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError, match="No space"):
        write_speaker_report(speakers[:1], tmp_path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".tmp.*"))
