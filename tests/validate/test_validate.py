"""``validate`` passes on every export of a dummy run and on dialogue turn cuts, and catches a
deliberately broken copy of each with the right check and the offending id."""

import copy
import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.bin.validate_cmds import validate as validate_cmd
from lhotse_triplets.config import load_config
from lhotse_triplets.export.common import DURATION, encode_audio
from lhotse_triplets.export.reading import read_shar
from lhotse_triplets.pipeline import run_pipeline
from lhotse_triplets.testing.configs import DUMMY_RUN
from lhotse_triplets.testing.dialogues import dialogue_turn_cuts
from lhotse_triplets.validate import find_targets, validate

FORMATS = ["shar", "triplets", "triplet_files", "nemo", "hf", "duplex"]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    cfg = copy.deepcopy(DUMMY_RUN)
    cfg["export"] = {"formats": FORMATS, "duplex_tts": "dummy", "image_mode": "path"}
    out = tmp_path_factory.mktemp("run")
    (out / "run.yaml").write_text(yaml.safe_dump(cfg))
    run_pipeline(load_config(out / "run.yaml"), out / "run", progress=False)
    return out / "run" / "export"


def failures(report, check: str) -> list[str]:
    return [o for t in report.targets for o in t.checks[check].offenders]


def test_every_export_of_a_dummy_run_passes(export_dir):
    report = validate(export_dir, progress=False)
    assert report.ok, str(report)
    kinds = {t.kind for t in report.targets}
    assert kinds == {"shar", "triplets", "triplet_files", "nemo", "hf", "duplex"}
    assert all(t.items > 0 for t in report.targets)
    duplex = next(t for t in report.targets if t.kind == "duplex")
    assert duplex.checks["target_audio"].passed == duplex.items


def test_duplicate_id_in_the_index_is_caught_and_listed_20_plus_count(export_dir, tmp_path):
    lines = (export_dir / "triplets.jsonl").read_text().splitlines()
    broken = tmp_path / "triplets.jsonl"
    broken.write_text("\n".join(lines + lines) + "\n")
    report = validate(broken, progress=False)
    check = report.targets[0].checks["unique_ids"]
    assert not report.ok and check.failed == len(lines) > 20
    assert check.offenders[0] == f"{json.loads(lines[0])['id']}: duplicate row id"
    result = CliRunner().invoke(validate_cmd, [str(broken), "--no-progress"])
    assert result.exit_code == 1
    assert f"and {len(lines) - 20} more" in result.output
    listed = [line for line in result.output.splitlines() if "duplicate row id" in line]
    assert len(listed) == 20


def test_duration_tolerance_and_max_items_options(export_dir, tmp_path):
    """``--tolerance`` decides when a declared duration is wrong; ``--max-items`` checks only the
    first N items of each export."""
    lines = [json.loads(x) for x in (export_dir / "triplets.jsonl").read_text().splitlines()]
    lines[0][DURATION] += 0.05  # the index says 50 ms more than the audio lasts
    off = tmp_path / "triplets.jsonl"
    off.write_text("".join(json.dumps(row) + "\n" for row in lines))
    strict = CliRunner().invoke(validate_cmd, [str(off), "--no-progress", "--json"])
    assert strict.exit_code == 1
    (offender,) = json.loads(strict.stdout)["targets"][0]["checks"]["duration"]["offenders"]
    assert offender.startswith(lines[0]["id"])
    loose = CliRunner().invoke(validate_cmd, [str(off), "--no-progress", "--tolerance", "0.1"])
    assert loose.exit_code == 0, loose.output
    two = validate(off, max_items=2, progress=False)
    assert two.targets[0].items == 2


def test_nemo_image_path_leading_outside_is_caught(export_dir, tmp_path):
    nemo = tmp_path / "nemo"
    shutil.copytree(export_dir / "nemo", nemo)
    manifest = nemo / "en" / "manifest_0.jsonl"
    convs = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert convs[1]["custom"][fields.IMAGE_PATH]
    convs[1]["custom"][fields.IMAGE_PATH] = "../../outside.png"
    (tmp_path / "outside.png").write_bytes((nemo / convs[0]["custom"]["image_path"]).read_bytes())
    manifest.write_text("".join(json.dumps(c) + "\n" for c in convs))
    report = validate(nemo, progress=False)
    assert not report.ok
    (offender,) = failures(report, "image")
    assert offender.startswith(f"{convs[1]['id']}: outside_root")


def test_truncated_target_audio_is_caught(export_dir, tmp_path):
    out = tmp_path / "duplex"
    shutil.copytree(export_dir / "duplex", out)
    bad = list(read_shar(out))[2]
    target = bad.custom[fields.TARGET_AUDIO]
    short = target.load_audio()[0, : target.num_samples // 2]
    tar_path = out / "target_audio.000000.tar"
    with tarfile.open(tar_path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(tar_path, "w") as tar:
        for member, data in members:
            if member.name == f"{bad.id}.flac":
                data = encode_audio(short, target.sampling_rate, "flac")
            elif member.name == f"{bad.id}.json":
                manifest = json.loads(data)
                manifest.update(num_samples=len(short), duration=len(short) / 16000)
                data = json.dumps(manifest).encode()
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    report = validate(out, progress=False)
    assert [t.kind for t in report.targets] == ["duplex"]
    (offender,) = failures(report, "target_audio")
    assert offender.startswith(f"{bad.id}: target lasts")


# --- dialogue turn cuts ----------------------------------------------------------------------


@pytest.fixture
def dialogue_manifest(tmp_path):
    cuts = dialogue_turn_cuts(tmp_path / "wav", {"c1": 4, "c2": 2}, missing={("c1", 3)})
    path = tmp_path / "turns.jsonl.gz"
    cuts.to_file(path)
    return path


def test_dialogue_manifest_and_stage_directory_pass(dialogue_manifest, tmp_path):
    report = validate(dialogue_manifest, progress=False)
    assert report.ok, str(report)
    target = report.targets[0]
    assert target.kind == "manifest" and target.items == 6
    assert target.checks["audio"].passed == 5  # the text-only turn has no audio to check
    assert target.checks["turns"].passed == 2
    stage = tmp_path / "stage"
    stage.mkdir()
    cuts = list(CutSet.from_file(dialogue_manifest))
    CutSet.from_cuts(cuts[:3]).to_file(stage / "cuts.000000.jsonl.gz")
    CutSet.from_cuts(cuts[3:]).to_file(stage / "cuts.000001.jsonl.gz")
    report = validate(stage, progress=False)
    assert [t.kind for t in report.targets] == ["stage"] and report.ok, str(report)


def test_a_recipe_output_folder_validates_each_manifest(dialogue_manifest, tmp_path):
    recipe_dir = tmp_path / "prepared"
    recipe_dir.mkdir()
    cuts = list(CutSet.from_file(dialogue_manifest))
    CutSet.from_cuts(cuts[:4]).to_file(recipe_dir / "corpus_cuts_train.jsonl.gz")
    CutSet.from_cuts(cuts[4:]).to_file(recipe_dir / "corpus_cuts_valid.jsonl.gz")
    (recipe_dir / "corpus_failed_train.jsonl").write_text("")
    report = validate(recipe_dir, progress=False)
    assert [(t.kind, Path(t.path).name) for t in report.targets] == [
        ("manifest", "corpus_cuts_train.jsonl.gz"),
        ("manifest", "corpus_cuts_valid.jsonl.gz"),
    ]
    assert report.ok, str(report)


def test_missing_turn_0_is_caught(dialogue_manifest, tmp_path):
    with gzip.open(dialogue_manifest, "rt") as f:
        lines = [line for line in f if '"id": "c2-t0"' not in line]
    broken = tmp_path / "broken.jsonl.gz"
    with gzip.open(broken, "wt") as f:
        f.writelines(lines)
    report = validate(broken, progress=False)
    assert failures(report, "turns") == ["c2-en: no turn 0"]


def test_wrong_rate_is_caught(dialogue_manifest, tmp_path):
    wav = tmp_path / "wav" / "c1-t1.wav"
    audio, sr = sf.read(wav, dtype="float32")
    sf.write(wav, audio[: int(len(audio) * 22050 / sr)], 22050)
    report = validate(dialogue_manifest, progress=False)
    assert not report.ok
    (offender,) = failures(report, "sampling_rate")
    assert offender == "c1-t1: stored at 22050 Hz, the manifest says 24000"
    assert (
        validate(dialogue_manifest, sampling_rate=24000, progress=False)
        .targets[0]
        .checks["sampling_rate"]
        .failed
        == 6 - 1
    )  # every turn with audio: 16 kHz, not the 24 kHz asked for


# --- TTT rows (the layout of export/ttt.py, written here until that exporter lands) ----------


def write_ttt(path, cuts, pad_multiple=8, pad_id=3, break_labels_of=None):
    from datasets import Dataset, Features, Sequence, Value

    rows = []
    for cut in cuts:
        custom = cut.custom
        speech = cut.load_audio()[0] if cut.has_recording else np.zeros(0, np.float32)
        text_ids = list(range(10, 10 + len(cut.supervisions[0].text.split())))
        prefix = [1, 2]
        ids = prefix + text_ids
        labels = [-100] * len(prefix) + text_ids
        n_pad = -len(ids) % pad_multiple
        mask = [1] * len(ids) + [0] * n_pad
        ids, labels = ids + [pad_id] * n_pad, labels + [-100] * n_pad
        if cut.id == break_labels_of:
            labels = [-100] + labels[:-1]  # shifted by one: misaligned
        rows.append(
            {
                "conversation_id": custom[fields.CONVERSATION_ID],
                "turn_number": custom[fields.TURN],
                "role": custom[fields.ROLE],
                "speech": speech.astype(np.float32),
                "speech_lengths": len(speech),
                "transcript": cut.supervisions[0].text,
                "input_ids": ids,
                "labels": labels,
                "attention_mask": mask,
            }
        )
    features = Features(
        {
            "conversation_id": Value("string"),
            "turn_number": Value("int32"),
            "role": Value("string"),
            "speech": Sequence(Value("float32")),
            "speech_lengths": Value("int64"),
            "transcript": Value("string"),
            "input_ids": Sequence(Value("int64")),
            "labels": Sequence(Value("int64")),
            "attention_mask": Sequence(Value("int8")),
        }
    )
    Dataset.from_list(rows, features=features).save_to_disk(str(path))
    declared = {
        "format": "ttt",
        "pad_multiple": pad_multiple,
        "pad_id": pad_id,
        "label_ignore": -100,
        "sampling_rate": 16000,
    }
    (path / "ttt.json").write_text(json.dumps(declared))
    return path


def test_ttt_rows_pass_and_misaligned_labels_are_caught(dialogue_manifest, tmp_path):
    cuts = list(CutSet.from_file(dialogue_manifest))
    good = write_ttt(tmp_path / "ttt", cuts)
    assert find_targets(good)[0].kind == "ttt"
    report = validate(good, progress=False)
    assert report.ok, str(report)
    assert report.targets[0].checks["tokens"].passed == len(cuts)
    broken = write_ttt(tmp_path / "broken", cuts, break_labels_of="c2-t1")
    (offender,) = failures(validate(broken, progress=False), "tokens")
    assert offender.startswith("c2-t1: labels[")


def test_cli_exit_status_and_json(dialogue_manifest, tmp_path):
    ok = CliRunner().invoke(validate_cmd, [str(dialogue_manifest), "--no-progress", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    assert CliRunner().invoke(validate_cmd, ["--help"]).exit_code == 0
    bad = CliRunner().invoke(
        validate_cmd, [str(dialogue_manifest), "--no-progress", "--sampling-rate", "8000"]
    )
    assert bad.exit_code == 1 and "8000" in bad.output and "FAILED" in bad.output


def test_dialogue_exports_of_the_library_pass(tmp_path):
    from lhotse_triplets.export import export_formats

    cuts = dialogue_turn_cuts(tmp_path / "wav", {"c1": 4, "c2": 2})
    export_formats(cuts, tmp_path / "out", formats=["duplex", "nemo", "ttt"], progress=False)
    report = validate(tmp_path / "out", progress=False)
    assert sorted(t.kind for t in report.targets) == ["duplex", "nemo", "ttt"]
    assert report.ok, str(report)
    assert all(t.items for t in report.targets)
