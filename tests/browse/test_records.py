"""``iter_records`` reads every input kind; every media locator opens and decodes; locators
leading outside the browsed folder are refused."""

import copy
import io

import PIL.Image
import pytest
import soundfile as sf
import yaml

from lhotse_triplets.browse.media import open_media
from lhotse_triplets.browse.records import input_kinds, iter_records, media_root
from lhotse_triplets.config import load_config
from lhotse_triplets.pipeline import run_pipeline
from lhotse_triplets.testing.configs import DUMMY_RUN
from lhotse_triplets.testing.dialogues import dialogue_turn_cuts

FORMATS = ["shar", "triplets", "triplet_files", "nemo", "hf", "duplex", "ttt"]


def make_run(tmp_path, image_mode="path"):
    cfg = copy.deepcopy(DUMMY_RUN)
    cfg["export"] = {"formats": FORMATS, "duplex_tts": "dummy", "image_mode": image_mode}
    cfg["gate"]["max_duration"] = 1.6  # rejects some clips
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    run_pipeline(load_config(tmp_path / "run.yaml"), tmp_path / "run", progress=False)
    return tmp_path / "run"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("browse"))


def _decodes(root, locator):
    data, ctype = open_media(root, locator)
    if ctype.startswith("audio/"):
        samples, rate = sf.read(io.BytesIO(data))
        assert len(samples) > 0 and rate > 0
    else:
        assert ctype.startswith("image/")
        PIL.Image.open(io.BytesIO(data)).load()
    return ctype


def test_every_export_kind_gives_records_whose_media_decode(run_dir):
    records = list(iter_records(run_dir / "export"))
    kinds = {r.kind for r in records}
    assert kinds == {"shar", "triplets", "triplet_files", "nemo", "hf", "duplex", "ttt"}
    root = media_root(run_dir / "export")
    assert root == run_dir.resolve()
    schemes = set()
    for record in records:
        assert record.id and record.status == "kept"
        for locator in (record.audio, record.target_audio, record.image):
            if locator:
                _decodes(root, locator)
                schemes.add((record.kind, locator.split(":")[0]))
    for kind in kinds:
        assert any(k == kind for k, _ in schemes), kind
    assert ("duplex", "tar") in schemes and ("ttt", "arrow") in schemes
    duplex = next(r for r in records if r.kind == "duplex")
    assert duplex.target_audio and duplex.target_audio != duplex.audio
    nemo = next(r for r in records if r.kind == "nemo")
    assert nemo.answer and nemo.text and nemo.image and nemo.scores


def test_run_dir_reads_the_gate_stage_and_rejections(run_dir):
    assert [k for k, _ in input_kinds(run_dir)][0] == "stage"
    records = list(iter_records(run_dir))
    rejected = [r for r in records if r.status == "rejected"]
    assert rejected and all(r.reasons for r in rejected)
    assert any(r.status == "kept" for r in records)
    first = records[0]
    assert first.audio.startswith("file:") and first.image.startswith("file:")
    assert _decodes(run_dir, first.audio).startswith("audio/")


def test_dialogue_manifest_turns_are_served_through_lhotse(tmp_path):
    cuts = dialogue_turn_cuts(tmp_path / "audio", {"c1": 3}, missing=[("c1", 1)])
    cuts.to_file(tmp_path / "turns.jsonl.gz")
    records = list(iter_records(tmp_path / "turns.jsonl.gz"))
    assert [r.turn for r in records] == [0, 1, 2]
    assert [r.role for r in records] == ["user", "assistant", "user"]
    assert records[1].audio is None and records[0].status == "unscored"
    assert records[0].audio.startswith("cut:")  # resampled lazily: decoded and encoded
    data, ctype = open_media(tmp_path, records[0].audio)
    assert ctype == "audio/wav" and sf.info(io.BytesIO(data)).samplerate == 16000


def test_embedded_nemo_image_and_bench_rows(tmp_path):
    run = make_run(tmp_path, image_mode="embed")
    nemo = [r for r in iter_records(run / "export" / "nemo")]
    assert nemo[0].image.startswith("nemo-image:")
    assert _decodes(media_root(run / "export" / "nemo"), nemo[0].image) == "image/png"
    bench = tmp_path / "bench"
    (bench / "clips").mkdir(parents=True)
    sf.write(bench / "clips" / "a.wav", [0.0, 0.1] * 800, 16000)
    (bench / "clips.jsonl").write_text(
        '{"cut_id": "a", "engine": "kokoro", "language": "en", "voice": "af", "text": "hi",'
        ' "good": 0, "reject_reason": "low_mos", "mos": 1.5, "duration": 0.1,'
        ' "audio": "clips/a.wav"}\n'
    )
    (bench / "failed.jsonl").write_text('{"cut_id": "b", "stage": "synthesize", "reason": "x"}\n')
    a, b = iter_records(bench)
    assert (a.kind, a.engine, a.status, a.reasons, a.scores) == (
        "bench",
        "kokoro",
        "rejected",
        ["low_mos"],
        {"mos": 1.5},
    )
    assert _decodes(bench, a.audio) == "audio/wav"
    assert (b.status, b.reasons) == ("failed", ["synthesize: x"])


def test_locators_leading_outside_the_root_are_refused(run_dir, tmp_path):
    root = run_dir / "export"
    (tmp_path / "secret.wav").write_bytes(b"RIFF....")
    tar = "shar/recording.000000.tar"
    size = (root / tar).stat().st_size
    for locator in (
        "file:../../secret.wav",
        f"file:{tmp_path / 'secret.wav'}",
        "file:../run.yaml",
        f"tar:{tar}:{size - 10}:100",
        f"tar:{tar}:-5:10",
        "tar:../run.yaml:0:10",
        "seg:../x.wav:1:1",
        "arrow:../..:0:audio",
        "cut:../gate/cuts.000000.jsonl.gz:0:audio",
        "nemo-image:../../x.jsonl:0",
        "bogus:x",
        "file:",
    ):
        with pytest.raises(FileNotFoundError):
            open_media(root, locator)
