"""The DeepDialogue recipe on a fixture snapshot in the corpus's own on-disk shape."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.bin.prepare_cmds import prepare
from lhotse_triplets.dialogues import parse_roles
from lhotse_triplets.errors import read_failures
from lhotse_triplets.recipes import get_recipe
from lhotse_triplets.recipes.deepdialogue import (
    DEFAULT_ROLES,
    find_dialogues,
    prepare_deepdialogue,
    valid_ids,
)

RATE = 24000
PAIR = "dialogues_llama3-70B_qwen2.5-72B"
SINGLE = "dialogues_llama3-70B"


def _wav(path: Path, seconds: float, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(path, np.stack([tone] * channels, axis=1) if channels > 1 else tone, RATE)


def _dialogue(
    data: Path,
    model_dir: str,
    name: str,
    turns: list[tuple[str, str, str]],
    *,
    audio_emotions: list[str | None] | None = None,
    domain: str = "music",
) -> None:
    """``data/<model_dir>/<name>.json`` plus its full wav and one segment wav per turn (a
    ``None`` audio emotion: that turn's wav is missing)."""
    folder = data / model_dir
    folder.mkdir(parents=True, exist_ok=True)
    models = model_dir.removeprefix("dialogues_").split("_")
    document = {
        "domain": domain,
        "timestamp": "2025-03-01 10:00:00",
        "model1": models[0],
        "model2": models[-1],
        "conversation": [{"speaker": s, "text": t, "emotion": e} for s, t, e in turns],
    }
    (folder / f"{name}.json").write_text(json.dumps(document))
    _wav(folder / name / f"{name}_full.wav", 0.1 * len(turns))
    emotions = audio_emotions or ["neutral"] * len(turns)
    for number, ((speaker, _, _), emotion) in enumerate(zip(turns, emotions), start=1):
        if emotion is not None:
            _wav(folder / name / "segments" / f"{number:03d}_{speaker}_{emotion}.wav", 0.1 * number)


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """A snapshot: the same dialogue name under two model folders, a turn without audio,
    RAVDESS file emotions differing from the JSON's, a parquet file, and bad dialogues."""
    root = tmp_path / "DeepDialogue-xtts"
    data = root / "data"
    turns = [
        ("LLM1", "Have you heard the new album?", "excited"),
        ("LLM2", "Yes, I loved the second track.", "joyful"),
        ("LLM1", "Me too, it was moving.", "touched"),
    ]
    _dialogue(data, SINGLE, "music_78_8", turns, audio_emotions=["happy", "happy", "sad"])
    _dialogue(data, PAIR, "music_78_8", turns[:2], audio_emotions=["neutral", None])
    _dialogue(data, PAIR, "travel_3_1", turns, domain="travel")
    _wav(data / PAIR / "travel_3_1" / "segments" / "001_LLM1_neutral.wav", 0.2, channels=2)
    (data / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not read")
    bad = data / SINGLE
    (bad / "broken_1_1.json").write_text('{"domain": "x", "conversation": [')
    _dialogue(data, SINGLE, "stranger_1_1", [("LLM3", "Who am I?", "confused")])
    _dialogue(data, SINGLE, "mismatch_1_1", turns[:1], audio_emotions=[None])
    _wav(bad / "mismatch_1_1" / "segments" / "001_LLM2_calm.wav", 0.1)
    _dialogue(data, SINGLE, "corrupt_1_1", turns[:1], audio_emotions=[None])
    _wav(bad / "corrupt_1_1" / "segments" / "001_LLM1_calm.wav", 0.1)
    (bad / "corrupt_1_1" / "segments" / "001_LLM1_calm.wav").write_bytes(b"RIFF garbage")
    return root


def _by_id(parts: dict[str, CutSet]) -> dict:
    """The cuts of every split, by id."""
    return {cut.id: cut for cuts in parts.values() for cut in cuts}


def test_turn_cuts_keep_ids_turns_roles_and_fields(snapshot: Path, tmp_path: Path) -> None:
    cuts = _by_id(prepare_deepdialogue(snapshot, tmp_path / "out"))
    assert sorted(cuts) == sorted(
        [
            f"{PAIR}/music_78_8-t0",
            f"{PAIR}/music_78_8-t1",
            f"{PAIR}/travel_3_1-t0",
            f"{PAIR}/travel_3_1-t1",
            f"{PAIR}/travel_3_1-t2",
            f"{SINGLE}/music_78_8-t0",
            f"{SINGLE}/music_78_8-t1",
            f"{SINGLE}/music_78_8-t2",
        ]
    )
    cut = cuts[f"{SINGLE}/music_78_8-t2"]
    sup = cut.supervisions[0]
    assert (sup.text, sup.language, sup.speaker) == ("Me too, it was moving.", "en", "user")
    assert cuts[f"{SINGLE}/music_78_8-t1"].supervisions[0].speaker == "assistant"
    for c in cuts.values():  # the role is in custom too (synthesis overwrites the speaker)
        assert c.custom[fields.ROLE] == c.supervisions[0].speaker
        assert (
            c.custom[fields.ROLE] == {"LLM1": "user", "LLM2": "assistant"}[c.custom["speaker_id"]]
        )
    assert cut.custom[fields.CONVERSATION_ID] == f"{SINGLE}/music_78_8"
    assert cut.custom[fields.TURN] == 2
    assert cut.custom[fields.SPEAKER_ID] == "LLM1"
    assert cut.custom[fields.EMOTION] == "touched"
    assert cut.custom[fields.AUDIO_EMOTION] == "sad"
    assert cut.custom[fields.DOMAIN] == "music"
    assert cut.custom[fields.GENERATED_BY] == ["llama3-70B", "llama3-70B"]
    assert cuts[f"{PAIR}/travel_3_1-t0"].custom[fields.GENERATED_BY] == [
        "llama3-70B",
        "qwen2.5-72B",
    ]
    assert cut.custom[fields.SPLIT] == "train"
    assert fields.AUDIO_SOURCE not in cut.custom
    by_conversation: dict[str, list[int]] = {}
    for c in cuts.values():
        by_conversation.setdefault(c.custom[fields.CONVERSATION_ID], []).append(c.custom["turn"])
    assert all(sorted(t) == list(range(len(t))) for t in by_conversation.values())


def test_audio_is_16k_mono_float32_of_the_segment(snapshot: Path) -> None:
    cut = _by_id(prepare_deepdialogue(snapshot))[f"{SINGLE}/music_78_8-t2"]
    audio = cut.load_audio()
    assert cut.sampling_rate == 16000
    assert audio.shape == (1, 4800)  # segment 003: 0.3 s at 24 kHz -> 16 kHz
    assert audio.dtype == np.float32
    assert cut.duration == pytest.approx(0.3)
    assert cut.supervisions[0].duration == pytest.approx(0.3)
    stereo = _by_id(prepare_deepdialogue(snapshot))[f"{PAIR}/travel_3_1-t0"]
    assert stereo.load_audio().shape == (1, 3200)  # one channel of the stereo wav, 16 kHz


def test_missing_segment_keeps_a_text_only_turn(snapshot: Path, caplog) -> None:
    caplog.set_level("INFO")
    cuts = _by_id(prepare_deepdialogue(snapshot))
    cut = cuts[f"{PAIR}/music_78_8-t1"]
    assert cut.recording is None and cut.duration == 0
    assert cut.supervisions[0].text == "Yes, I loved the second track."
    assert cut.supervisions[0].speaker == cut.custom[fields.ROLE] == "assistant"
    assert cut.custom[fields.AUDIO_SOURCE] == "missing"
    assert fields.AUDIO_EMOTION not in cut.custom
    assert cuts[f"{PAIR}/music_78_8-t0"].has_recording
    assert "1 of 8 kept turns have no segment wav" in caplog.text


def test_bad_dialogues_are_logged_and_skipped(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cuts = _by_id(prepare_deepdialogue(snapshot, out))
    assert not any("broken" in c or "stranger" in c or "1_1" in c for c in cuts)
    reasons = {f.cut_id: f.reason for f in read_failures(out / "deepdialogue_failed_train.jsonl")}
    assert sorted(reasons) == [
        f"{SINGLE}/broken_1_1",
        f"{SINGLE}/corrupt_1_1",
        f"{SINGLE}/mismatch_1_1",
        f"{SINGLE}/stranger_1_1",
    ]
    assert reasons[f"{SINGLE}/broken_1_1"].startswith("invalid_json: ")
    unreadable = "unreadable_audio: 001_LLM1_calm.wav: Format not recognised."
    assert reasons[f"{SINGLE}/corrupt_1_1"] == unreadable
    assert reasons[f"{SINGLE}/mismatch_1_1"].startswith("speaker_mismatch: turn 0 is 'LLM1'")
    assert reasons[f"{SINGLE}/stranger_1_1"].startswith("unknown_speaker: turn 0 speaker 'LLM3'")


def test_roles_option_maps_speakers(snapshot: Path) -> None:
    roles = "LLM1=assistant, LLM2=user, LLM3=user"
    cuts = _by_id(prepare_deepdialogue(snapshot, roles=roles))
    first, second = cuts[f"{SINGLE}/music_78_8-t0"], cuts[f"{SINGLE}/music_78_8-t1"]
    assert first.supervisions[0].speaker == first.custom[fields.ROLE] == "assistant"
    assert second.supervisions[0].speaker == second.custom[fields.ROLE] == "user"
    assert cuts[f"{SINGLE}/stranger_1_1-t0"].supervisions[0].speaker == "user"
    assert parse_roles(None, default=DEFAULT_ROLES) == {"LLM1": "user", "LLM2": "assistant"}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        prepare_deepdialogue(snapshot, roles="LLM1:user")
    with pytest.raises(ValueError, match="unknown role"):
        prepare_deepdialogue(snapshot, roles="LLM1=User,LLM2=Assistant")


def test_valid_split_is_by_dialogue_seeded_and_deterministic(snapshot: Path) -> None:
    ids = [d.conversation_id for d in find_dialogues(snapshot / "data")]
    assert len(ids) == 7
    drawn = valid_ids(ids, 0.4, seed=0)
    assert len(drawn) == 3  # round(7 * 0.4)
    assert drawn == valid_ids(list(reversed(ids)), 0.4, seed=0)
    assert any(drawn != valid_ids(ids, 0.4, seed=s) for s in range(1, 5))
    assert valid_ids(ids, 0.0, seed=0) == set()
    splits: dict[str, set[str]] = {}
    parts = prepare_deepdialogue(snapshot, valid_ratio=0.4, seed=0)
    assert sorted(parts) == ["train", "valid"]
    for part, cuts in parts.items():
        for cut in cuts:
            assert cut.custom["split"] == part
            splits.setdefault(cut.custom[fields.CONVERSATION_ID], set()).add(part)
    assert len(splits) == 3
    for conversation_id, split in splits.items():  # a dialogue is never split across the two
        assert split == {"valid" if conversation_id in drawn else "train"}
    assert list(prepare_deepdialogue(snapshot)) == ["train"]  # no valid at ratio 0


def test_each_split_is_its_own_manifest(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    parts = prepare_deepdialogue(snapshot, out, valid_ratio=0.4, seed=0)
    for split in ("train", "valid"):
        manifest = out / f"deepdialogue_cuts_{split}.jsonl.gz"
        written = CutSet.from_file(manifest)
        assert [c.id for c in written] == [c.id for c in parts[split]]
        assert {c.custom["split"] for c in written} == {split}
        assert (out / f".deepdialogue_{split}.completed").is_file()
    prepare_deepdialogue(snapshot, out)  # ratio 0 again: no stale valid part is left
    assert not (out / "deepdialogue_cuts_valid.jsonl.gz").exists()
    assert len(CutSet.from_file(out / "deepdialogue_cuts_train.jsonl.gz")) == 8


def test_cli_prepares_and_a_rerun_is_not_redone(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["deepdialogue", str(snapshot), str(out), "--roles", "LLM1=assistant,LLM2=user"]
    result = CliRunner().invoke(prepare, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "train: Prepared 8 cuts in" in result.output and "(4 failed" in result.output
    assert "1 turns missing" in result.output
    manifest = out / "deepdialogue_cuts_train.jsonl.gz"
    cuts = {c.id: c for c in CutSet.from_file(manifest)}
    assert cuts[f"{PAIR}/travel_3_1-t1"].supervisions[0].speaker == "user"
    assert get_recipe("deepdialogue") is prepare_deepdialogue
    stamp = manifest.stat().st_mtime_ns
    CliRunner().invoke(prepare, args, catch_exceptions=False)
    assert manifest.stat().st_mtime_ns == stamp


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dialogues_<model>"):
        prepare_deepdialogue(tmp_path)
    with pytest.raises(ValueError, match="--valid-ratio"):
        prepare_deepdialogue(tmp_path, valid_ratio=1.5)


def test_help_documents_the_defaults() -> None:
    result = CliRunner().invoke(prepare, ["deepdialogue", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "LLM1=user,LLM2=assistant" in text
    assert "--valid-ratio FLOAT" in text and "default: 0.0" in text
    assert "--sampling-rate INTEGER" in text and "default: 16000" in text
