"""The InstructS2S-200K recipe on a fixture corpus in the real on-disk shape."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.bin.prepare_cmds import prepare
from lhotse_triplets.errors import read_failures
from lhotse_triplets.recipes import get_recipe
from lhotse_triplets.recipes.instructs2s import (
    DEFAULT_FILE,
    prepare_instructs2s,
    stream_rows,
)
from lhotse_triplets.recipes.utils import RecipeFiles

pytest.importorskip("ijson")


def write_wav(path: Path, seconds: float, rate: int, channels: int = 1) -> None:
    """A sine tone of ``seconds`` at ``rate`` (``channels`` columns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(path, np.stack([tone] * channels, axis=1) if channels > 1 else tone, rate)


def turn(role: str, text: str, speech: str | None = None, unit: str | None = None) -> dict:
    entry = {"from": role, "text": text}
    if speech is not None:
        entry["speech"] = speech
    if unit is not None:
        entry["unit"] = unit
    return entry


#: A real-length unit string (hundreds of tokens a turn): written without Lhotse's deep copy.
LONG_UNITS = "".join(f"<{(i * 37) % 6561}>" for i in range(500))


def build_corpus(root: Path) -> Path:
    """``instruct_en_200k_data_cosy2.json`` + wavs as ``cat en_part_* | tar -xz`` leaves them."""
    write_wav(root / "wavs/alpaca_0-0-user.wav", 0.5, 16000)
    write_wav(root / "wavs/alpaca_0-0-assistant.wav", 0.8, 24000)  # CosyVoice2 rate
    write_wav(root / "wavs/ultra_1-0-user.wav", 0.4, 22050, channels=2)
    write_wav(root / "wavs/ultra_1-0-assistant.wav", 0.6, 24000)
    write_wav(root / "wavs/ultra_1-1-assistant.wav", 0.3, 24000)  # ultra_1-1-user.wav missing
    (root / "wavs/broken-0-user.wav").write_bytes(b"RIFF not really a wav")
    write_wav(root.parent / "outside-0-user.wav", 0.2, 16000)
    rows = [
        {
            "id": "alpaca_0",
            "conversation": [
                turn("human", "Name a primary colour.", "wavs/alpaca_0-0-user.wav"),
                turn("gpt", "Red is one.", "wavs/alpaca_0-0-assistant.wav", "<2957><4299><6560>"),
            ],
        },
        {
            "id": "ultra_1",
            "conversation": [
                turn("human", "Tell me about owls.", "wavs/ultra_1-0-user.wav"),
                turn("gpt", "Owls hunt at night.", "wavs/ultra_1-0-assistant.wav", "<1><2>"),
                turn("human", "What do they eat?", "wavs/ultra_1-1-user.wav"),
                turn("gpt", "Mice, mostly.", "wavs/ultra_1-1-assistant.wav", LONG_UNITS),
            ],
        },
        {"id": "alpaca_0", "conversation": [turn("human", "Again?")]},  # duplicate id
        42,  # not an object
        {"id": "no_turns", "conversation": []},
        {"id": "sys_2", "conversation": [turn("system", "Be nice."), turn("human", "Hi")]},
        {"id": "units_3", "conversation": [turn("human", "Hi"), turn("gpt", "Yo", unit="<1><x>")]},
        {"id": "escape_4", "conversation": [turn("human", "Hi", "../outside-0-user.wav")]},
        {"id": "broken_5", "conversation": [turn("human", "Hi", "wavs/broken-0-user.wav")]},
        {"id": "swap_6", "conversation": [turn("gpt", "Hi", "wavs/alpaca_0-0-user.wav")]},
        {"id": "empty_7", "conversation": [turn("human", "Hi"), turn("gpt", "   ")]},
        {"id": "ctrl_8", "conversation": [turn("human", "Hi\x07 there"), turn("gpt", "Yes")]},
    ]
    path = root / DEFAULT_FILE
    path.write_text(json.dumps(rows, indent=1))
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "InstructS2S-200K"
    root.mkdir()
    build_corpus(root)
    return root


def _cuts(parts: dict[str, CutSet]) -> list:
    """The cuts of the one split the corpus has."""
    assert list(parts) == ["train"]
    return list(parts["train"])


def test_turn_cuts_ids_roles_units_and_rates(corpus: Path, tmp_path: Path) -> None:
    cuts = {c.id: c for c in _cuts(prepare_instructs2s(corpus, tmp_path / "out"))}
    assert sorted(cuts) == [
        "alpaca_0-t0",
        "alpaca_0-t1",
        "ultra_1-t0",
        "ultra_1-t1",
        "ultra_1-t2",
        "ultra_1-t3",
    ]
    for cut in cuts.values():
        conversation, _, number = cut.id.rpartition("-t")
        assert cut.custom[fields.CONVERSATION_ID] == conversation
        assert cut.custom[fields.TURN] == int(number)
        assert cut.custom[fields.SPLIT] == "train"
        role = {"human": "user", "gpt": "assistant"}[cut.custom[fields.SPEAKER_ID]]
        assert cut.supervisions[0].speaker == cut.custom[fields.ROLE] == role
        assert cut.supervisions[0].language == "en"
    assert cuts["ultra_1-t2"].supervisions[0].text == "What do they eat?"
    assert cuts["alpaca_0-t1"].custom[fields.SPEECH_UNITS] == [2957, 4299, 6560]
    assert fields.SPEECH_UNITS not in cuts["alpaca_0-t0"].custom
    assert cuts["ultra_1-t3"].custom[fields.SPEECH_UNITS] == [(i * 37) % 6561 for i in range(500)]
    # every recording loads as 16 kHz mono, whatever the wav's rate and channels
    for cut_id, seconds in [("alpaca_0-t0", 0.5), ("alpaca_0-t1", 0.8), ("ultra_1-t0", 0.4)]:
        cut = cuts[cut_id]
        audio = cut.load_audio()
        assert cut.sampling_rate == 16000 and audio.shape[0] == 1
        assert audio.dtype == np.float32
        assert abs(audio.shape[1] / 16000 - seconds) < 0.01
        assert cut.supervisions[0].duration == pytest.approx(cut.duration)


def test_missing_wav_keeps_the_turn_text_only(corpus: Path) -> None:
    cuts = {c.id: c for c in _cuts(prepare_instructs2s(corpus))}
    missing = cuts["ultra_1-t2"]
    assert missing.recording is None and missing.duration == 0
    assert missing.custom[fields.ROLE] == missing.supervisions[0].speaker == "user"
    assert missing.custom[fields.AUDIO_SOURCE] == "missing"
    assert [c.id for c in cuts.values() if fields.AUDIO_SOURCE in c.custom] == ["ultra_1-t2"]


def test_bad_rows_are_failures_and_the_run_goes_on(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cuts = _cuts(prepare_instructs2s(corpus, out))
    failures = {
        f.cut_id: f.reason for f in read_failures(RecipeFiles("instructs2s", "train", out).failed)
    }
    codes = {cut_id: reason.split(":")[0] for cut_id, reason in failures.items()}
    assert codes == {
        "alpaca_0": "duplicate_id",
        "row3": "not_an_object",
        "no_turns": "no_conversation",
        "sys_2": "unknown_role",
        "units_3": "invalid_units",
        "escape_4": "outside_root",
        "broken_5": "unreadable_audio",
        "swap_6": "audio_role_mismatch",
        "empty_7": "empty_turn",
        "ctrl_8": "control_characters",
    }
    assert failures["ctrl_8"].startswith("control_characters: turn 0:")
    # a failed conversation keeps none of its turns, so kept turns stay contiguous from 0
    conversations: dict[str, list[int]] = {}
    for cut in cuts:
        conversations.setdefault(cut.custom[fields.CONVERSATION_ID], []).append(
            cut.custom[fields.TURN]
        )
    assert {k: sorted(v) for k, v in conversations.items()} == {
        "alpaca_0": [0, 1],
        "ultra_1": [0, 1, 2, 3],
    }


def test_allow_outside_reads_the_escaping_wav(corpus: Path) -> None:
    ids = {c.id for c in _cuts(prepare_instructs2s(corpus, allow_outside=True))}
    assert "escape_4-t0" in ids


def test_truncated_json_keeps_the_rows_before_the_break(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / DEFAULT_FILE).read_text()
    cut_at = text.index('"ultra_1"') + 40
    broken = tmp_path / "broken.json"
    broken.write_text(text[:cut_at])
    rows = list(stream_rows(broken))
    assert rows[0][1]["id"] == "alpaca_0"
    out = tmp_path / "out"
    cuts = _cuts(prepare_instructs2s(broken, out, audio_dir=corpus))
    assert sorted(c.id for c in cuts) == ["alpaca_0-t0", "alpaca_0-t1"]
    reasons = [f.reason for f in read_failures(RecipeFiles("instructs2s", "train", out).failed)]
    assert len(reasons) == 1 and reasons[0].startswith("invalid_json:")
    assert "after 1 rows" in reasons[0]


def test_not_an_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"id": "a"}')
    with pytest.raises(ValueError, match="JSON array"):
        prepare_instructs2s(path)


def test_ids_are_deterministic_and_limit_reads_the_first_rows(corpus: Path) -> None:
    first = [c.id for c in _cuts(prepare_instructs2s(corpus))]
    assert first == [c.id for c in _cuts(prepare_instructs2s(corpus / DEFAULT_FILE))]
    limited = _cuts(prepare_instructs2s(corpus, limit=1))
    assert [c.id for c in limited] == ["alpaca_0-t0", "alpaca_0-t1"]


def test_roles_are_configurable(corpus: Path) -> None:
    cuts = _cuts(prepare_instructs2s(corpus, roles="human=user, gpt=assistant,system=user"))
    speakers = {c.id: c.supervisions[0].speaker for c in cuts}
    assert speakers["alpaca_0-t0"] == "user" and speakers["alpaca_0-t1"] == "assistant"
    assert speakers["sys_2-t0"] == "user"  # ``system`` is now a known speaker
    with pytest.raises(ValueError, match="NAME=VALUE"):
        prepare_instructs2s(corpus, roles="human")
    with pytest.raises(ValueError, match="unknown role"):
        prepare_instructs2s(corpus, roles="human=User,gpt=Assistant")


def test_cli_prepares_the_corpus(corpus: Path, tmp_path: Path) -> None:
    assert get_recipe("instructs2s") is prepare_instructs2s
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        prepare, ["instructs2s", str(corpus), str(out), "--roles", "human=assistant,gpt=user"]
    )
    assert result.exit_code == 0, result.output
    assert "train: Prepared 6 cuts" in result.output and "10 failed" in result.output
    cuts = list(RecipeFiles("instructs2s", "train", out).cuts.parent.glob("*_cuts_*"))
    assert [p.name for p in cuts] == ["instructs2s_cuts_train.jsonl.gz"]
    roles = {c.id: c.supervisions[0].speaker for c in CutSet.from_file(cuts[0])}
    assert roles["alpaca_0-t0"] == "assistant" and roles["alpaca_0-t1"] == "user"


def test_synthesize_missing_speaks_user_turns(corpus: Path, tmp_path: Path) -> None:
    import lhotse_triplets.testing.backends  # noqa: F401 - registers the ``dummy`` TTS

    out = tmp_path / "out"
    parts = prepare_instructs2s(corpus, out, synthesize_missing="dummy", synthesize_voice="v1")
    cuts = {c.id: c for c in _cuts(parts)}
    spoken = cuts["ultra_1-t2"]
    assert spoken.custom[fields.AUDIO_SOURCE] == "synthesized: dummy"
    assert spoken.custom[fields.VOICE] == "v1"
    assert spoken.custom[fields.ROLE] == spoken.supervisions[0].speaker == "user"
    assert spoken.supervisions[0].text == "What do they eat?"
    wav = out / "audio" / "ultra_1" / "ultra_1-t2.wav"
    assert wav.is_file() and not list(wav.parent.glob(".tmp.*"))
    audio = spoken.load_audio()
    assert spoken.sampling_rate == 16000 and audio.shape[0] == 1 and audio.dtype == np.float32
    assert audio.shape[1] > 0 and spoken.duration == pytest.approx(audio.shape[1] / 16000)
    assert spoken.supervisions[0].duration == pytest.approx(spoken.duration)
    # only that turn was missing; the corpus's own wavs are not marked
    assert [c.id for c in cuts.values() if fields.AUDIO_SOURCE in c.custom] == ["ultra_1-t2"]
    # a rerun with the same options is not redone: same cuts, the wav untouched
    stamp = wav.stat().st_mtime_ns
    again = _cuts(
        prepare_instructs2s(corpus, out, synthesize_missing="dummy", synthesize_voice="v1")
    )
    assert [c.to_dict() for c in again] == [c.to_dict() for c in cuts.values()]
    assert wav.stat().st_mtime_ns == stamp


def test_synthesis_skips_assistant_turns_and_a_failure_is_recorded(
    corpus: Path, tmp_path: Path
) -> None:
    import lhotse_triplets.testing.backends  # noqa: F401 - registers the ``dummy`` TTS

    rows = [
        {"id": "a", "conversation": [turn("human", "Hello"), turn("gpt", "Hi there")]},
        {"id": "b", "conversation": [turn("human", "Please FAIL now"), turn("gpt", "No")]},
    ]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    out = tmp_path / "out"
    cuts = {c.id: c for c in _cuts(prepare_instructs2s(path, out, synthesize_missing="dummy"))}
    assert sorted(cuts) == ["a-t0", "a-t1"]
    assert cuts["a-t0"].custom[fields.AUDIO_SOURCE] == "synthesized: dummy"
    assert cuts["a-t0"].custom[fields.VOICE] == "v0"  # the TTS's first voice by default
    assert cuts["a-t1"].custom[fields.AUDIO_SOURCE] == "missing" and not cuts["a-t1"].has_recording
    failures = read_failures(RecipeFiles("instructs2s", "train", out).failed)
    assert [(f.cut_id, f.reason.split(":")[0]) for f in failures] == [("b", "synthesis_failed")]
    result = CliRunner().invoke(
        prepare, ["instructs2s", str(path), str(tmp_path / "cli"), "--synthesize-missing", "dummy"]
    )
    assert result.exit_code == 0, result.output
    assert "1 turns synthesized: dummy" in result.output and "1 turns missing" in result.output
    with pytest.raises(ValueError, match="--synthesize-voice"):
        prepare_instructs2s(path, synthesize_missing="dummy", synthesize_voice="nobody")


def test_help_documents_the_defaults() -> None:
    result = CliRunner().invoke(prepare, ["instructs2s", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "human=user,gpt=assistant" in text and "16 kHz" in text
    assert "--split TEXT" in text and "default: train" in text
    assert "--synthesize-missing" in text
