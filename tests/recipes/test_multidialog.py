"""The MultiDialog recipe on fixture corpora in the real on-disk shape (no downloads)."""

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from lhotse_triplets import fields
from lhotse_triplets.bin.prepare_cmds import prepare
from lhotse_triplets.dialogues import parse_roles
from lhotse_triplets.errors import read_failures
from lhotse_triplets.recipes import get_recipe
from lhotse_triplets.recipes.multidialog import DEFAULT_ROLES, prepare_multidialog

A, B, C, D = "t_0a1b2c3d", "t_4e5f6a7b", "t_8c9d0e1f", "t_2a3b4c5d"


def _wav(seconds: float = 0.25, rate: int = 16000, channels: int = 1) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    if channels > 1:
        audio = np.stack([audio] * channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _row(conv: str, utt: int, actor: str, speaker: str, value: str, emotion: str = "Neutral"):
    return {
        "file_name": f"{conv}/{conv}_{utt}{actor}.wav",
        "conv_id": conv,
        "utterance_id": utt,
        "from": speaker,
        "value": value,
        "emotion": emotion,
        "original_full_path": f"/raw/{conv}/{conv}_{utt}{actor}.wav",
    }


def _tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _jsonl(path: Path, lines: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    path.write_text("\n".join(text) + "\n")


def make_snapshot(root: Path) -> Path:
    """A MultiDialog snapshot: two metadata files and two chunks for ``train``, plus
    ``valid_freq``; quirks: rows out of order and across files, a turn without audio, a 24 kHz
    stereo member, an escaping member, an unreadable wav, a bad line, an unknown role, a
    conversation repeated in a later split."""
    md, data = root / "metadata", root / "data"
    _jsonl(
        md / "train" / "train_metadata_0000.jsonl",
        [
            _row(A, 1, "B", "gpt", "Hi! Yes, I love jazz.", "Happy"),
            _row(A, 0, "A", "human", "Hello, do you like music?"),
            _row(B, 0, "A", "human", "Did you see the game?"),
            "{not json",
            _row(C, 0, "A", "human", "Hey."),
            {**_row(C, 1, "B", "robot", "Beep.")},
        ],
    )
    _jsonl(
        md / "train" / "train_metadata_0001.jsonl",
        [
            _row(A, 2, "A", "human", "Who is your favourite artist?", "Surprising"),
            _row(B, 1, "B", "gpt", "I did, it was close.", "Fear"),
        ],
    )
    _tar(
        data / "train" / "train_chunks_0000.tar.gz",
        {
            f"{A}/{A}_0A.wav": _wav(0.5),
            f"{A}/{A}_1B.wav": _wav(0.25, rate=24000, channels=2),
            "../escape/x_0A.wav": _wav(),
            f"{C}/{C}_0A.wav": _wav(),
        },
    )
    _tar(
        data / "train" / "train_chunks_0001.tar.gz",
        {f"{B}/{B}_0A.wav": _wav(), f"{B}/{B}_1B.wav": b"RIFF not audio", "notes.txt": b"x"},
    )
    _jsonl(
        md / "valid_freq" / "valid_freq_metadata_0000.jsonl",
        [_row(A, 0, "A", "human", "Again."), _row(D, 0, "C", "human", "Good morning.")],
    )
    _tar(data / "valid_freq" / "valid_freq_chunks_0000.tar.gz", {f"{D}/{D}_0C.wav": _wav()})
    return root


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return make_snapshot(tmp_path / "MultiDialog")


def _by_id(parts: dict) -> dict:
    """The cuts of every split, by id."""
    return {cut.id: cut for cuts in parts.values() for cut in cuts}


def test_turns_ids_roles_and_audio(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    parts = prepare_multidialog(snapshot, out)
    assert list(parts) == ["train", "valid_freq"]
    assert [c.id for c in parts["valid_freq"]] == [f"{D}-t0"]
    cuts = _by_id(parts)
    assert sorted(cuts) == sorted(
        [f"{A}-t0", f"{A}-t1", f"{A}-t2", f"{B}-t0", f"{B}-t1", f"{D}-t0"]
    )
    for cut in cuts.values():  # the role is in custom too, text-only turns included
        assert cut.custom[fields.ROLE] == cut.supervisions[0].speaker
    a0, a1, a2 = cuts[f"{A}-t0"], cuts[f"{A}-t1"], cuts[f"{A}-t2"]
    assert [c.custom[fields.TURN] for c in (a0, a1, a2)] == [0, 1, 2]
    assert {c.custom[fields.CONVERSATION_ID] for c in (a0, a1, a2)} == {A}
    assert [c.supervisions[0].speaker for c in (a0, a1, a2)] == ["user", "assistant", "user"]
    assert [c.custom[fields.SPEAKER_ID] for c in (a0, a1, a2)] == ["A", "B", "A"]
    assert a1.custom[fields.EMOTION] == "Happy" and a1.custom[fields.SPLIT] == "train"
    assert a0.supervisions[0].text == "Hello, do you like music?"
    assert a0.supervisions[0].language == "en"
    # 16 kHz mono float32 on load, whatever the member's rate and channels
    for cut in (a0, a1):
        audio = cut.load_audio()
        assert cut.sampling_rate == 16000 and audio.shape[0] == 1 and audio.dtype == np.float32
    assert a1.duration == pytest.approx(0.25) and a1.load_audio().shape[1] == 4000
    assert fields.AUDIO_SOURCE not in a0.custom
    # the turn without audio stays, text only
    assert a2.recording is None and a2.custom[fields.AUDIO_SOURCE] == "missing"
    assert a2.supervisions[0].text == "Who is your favourite artist?"
    # an unreadable member: the turn is kept without audio, the file is a failure
    assert cuts[f"{B}-t1"].custom[fields.AUDIO_SOURCE] == "missing"
    assert cuts[f"{D}-t0"].custom[fields.SPLIT] == "valid_freq"
    # audio copied inside the output, nothing escaped
    assert (out / "audio" / "train" / A / f"{A}_0A.wav").is_file()
    assert not (tmp_path / "escape").exists() and not (out / "audio" / "escape").exists()


def test_bad_input_is_recorded_not_fatal(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_multidialog(snapshot, out)
    train = {f.cut_id: f.reason for f in read_failures(out / "multidialog_failed_train.jsonl")}
    codes = {cut_id: reason.split(":")[0] for cut_id, reason in train.items()}
    assert codes["train_metadata_0000.jsonl:4"] == "invalid_json"
    assert codes[f"{C}-u1"] == "unknown_role"
    assert codes[C] == "incomplete_conversation"  # C lost a turn: not written at all
    assert codes["../escape/x_0A.wav"] == "unsafe_member"
    assert codes[f"{B}/{B}_1B.wav"] == "unreadable_audio"
    valid = read_failures(out / "multidialog_failed_valid_freq.jsonl")
    assert [(f.cut_id, f.reason.split(":")[0]) for f in valid] == [(A, "duplicate_conversation")]


def test_deterministic_and_resumable(snapshot: Path, tmp_path: Path) -> None:
    first = [c.to_dict() for c in _by_id(prepare_multidialog(snapshot, tmp_path / "o1")).values()]
    again = [c.to_dict() for c in _by_id(prepare_multidialog(snapshot, tmp_path / "o1")).values()]
    in_memory = list(_by_id(prepare_multidialog(snapshot, splits=["train", "valid_freq"])))
    assert [c["id"] for c in first] == [c["id"] for c in again] == in_memory
    assert len(set(in_memory)) == len(in_memory)


def test_roles_option_and_cli(snapshot: Path, tmp_path: Path) -> None:
    assert parse_roles(None, default=DEFAULT_ROLES) == {"human": "user", "gpt": "assistant"}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        prepare_multidialog(snapshot, roles="human:user")
    with pytest.raises(ValueError, match="unknown role"):
        prepare_multidialog(snapshot, roles="human=User,gpt=Assistant")
    out = tmp_path / "cli"
    args = ["multidialog", str(snapshot), str(out), "--splits", "valid_freq"]
    result = CliRunner().invoke(prepare, [*args, "--roles", "human=assistant,gpt=user"])
    assert result.exit_code == 0, result.output
    assert "valid_freq: Prepared 2 cuts in" in result.output
    parts = get_recipe("multidialog")(
        snapshot, out, splits=["valid_freq"], roles="human=assistant,gpt=user"
    )
    # alone (train not in the run), valid_freq keeps its copy of A
    assert list(parts) == ["valid_freq"]
    assert [
        (c.id, c.supervisions[0].speaker, c.custom[fields.ROLE]) for c in parts["valid_freq"]
    ] == [
        (f"{A}-t0", "assistant", "assistant"),
        (f"{D}-t0", "assistant", "assistant"),
    ]
    assert not (out / "multidialog_cuts_train.jsonl.gz").exists()
    assert (out / "multidialog_cuts_valid_freq.jsonl.gz").is_file()


def test_help_documents_the_defaults() -> None:
    result = CliRunner().invoke(prepare, ["multidialog", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "human=user,gpt=assistant" in text and "16 kHz" in text
    assert "--split TEXT" in text and "default: train" in text


def test_local_hf_dataset(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [
        {**_row(A, 0, "A", "human", "Hello there."), "audio": {"bytes": _wav(0.5), "path": None}},
        {**_row(A, 1, "B", "gpt", "Hi."), "audio": {"bytes": _wav(0.25, 24000), "path": None}},
        {**_row(B, 0, "A", "human", "No audio here."), "audio": None},
    ]
    features = datasets.Features(
        {
            **{k: datasets.Value("string") for k in _row(A, 0, "A", "h", "v")},
            "utterance_id": datasets.Value("int64"),
            "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        }
    )
    saved = tmp_path / "hf"
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(saved))
    parts = prepare_multidialog(saved, tmp_path / "out", split="test_freq")
    assert list(parts) == ["test_freq"]
    cuts = _by_id(parts)
    assert sorted(cuts) == [f"{A}-t0", f"{A}-t1", f"{B}-t0"]
    assert cuts[f"{A}-t1"].load_audio().shape == (1, 4000)
    assert cuts[f"{A}-t1"].custom[fields.SPLIT] == "test_freq"
    assert cuts[f"{B}-t0"].custom[fields.AUDIO_SOURCE] == "missing"
