"""NeMo ``multimodal_conversation`` shards of dialogue TURN cuts (one cut per turn, as the
dialogue recipes write them): one multi-turn conversation per (conversation id, language), user
turns as audio from the tar, assistant turns as text; read back with tarfile, and by NeMo's own
dataloader + ``SALMDataset`` through the generated YAML."""

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, Recording
from lhotse.utils import fastcopy
from omegaconf import OmegaConf

from lhotse_triplets import fields
from lhotse_triplets.export import export_nemo
from lhotse_triplets.export.nemo_config import CONVERSATION_TYPE, DEFAULT_AUDIO_LOCATOR_TAG
from lhotse_triplets.paths import safe_name
from lhotse_triplets.testing.dialogues import (
    TARGET_RATE,
    dialogue_turn_cuts,
    turn_frequency,
    turn_seconds,
    turn_text,
)

from .test_nemo import read_lines

#: A DeepDialogue-like id (folder + dialogue name, with a slash).
SLASHED = "dialogues_llama3-70B/music_78_8"
TURNS = {"c1": 4, "c2": 2, SLASHED: 5}
#: c1's turn 2 (a user turn) has no audio in the corpus: a text-only cut.
MISSING = {("c1", 2)}


@pytest.fixture(scope="module")
def source_cuts(tmp_path_factory) -> CutSet:
    return dialogue_turn_cuts(tmp_path_factory.mktemp("turns"), TURNS, missing=MISSING)


def export(cuts, out: Path, **options):
    failures = []
    result = export_nemo(CutSet.from_cuts(cuts), out, on_failure=failures.append, **options)
    return result, failures


@pytest.fixture(scope="module")
def exported(source_cuts, tmp_path_factory):
    return export(source_cuts, tmp_path_factory.mktemp("out"), shard_size=2)


def expected_turns(conversation_id: str, n_turns: int, user="User", assistant="Assistant"):
    """(type, from, value-or-member) of every turn of a fixture conversation."""
    out = []
    for k in range(n_turns):
        if k % 2:
            out.append(("text", assistant, turn_text(conversation_id, k)))
        elif (conversation_id, k) in MISSING:
            out.append(("text", user, turn_text(conversation_id, k)))
        else:
            out.append(("audio", user, f"{safe_name(f'{conversation_id}-t{k}')}.flac"))
    while out[-1][1] != assistant:  # trailing user turns are not written
        out.pop()
    return out


def dominant_frequency(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[spectrum.argmax()])


def test_one_conversation_per_dialogue_turns_in_order_with_roles(exported):
    result, failures = exported
    lines = read_lines(result)
    assert sorted(lines) == sorted(f"{c}-en" for c in TURNS)
    for conversation_id, n_turns in TURNS.items():
        line, _ = lines[f"{conversation_id}-en"]
        got = [(t["type"], t["from"], t["value"]) for t in line["conversations"]]
        # No instruction turn before the user audio, assistant texts verbatim.
        assert got == expected_turns(conversation_id, n_turns)
    assert failures == []  # a text-only turn is the corpus's, not an export failure
    assert result.counts.written == len(TURNS)
    assert result.details["audio_turns"] == 4  # c1: t0 (t2 missing), c2: t0, slashed: t0, t2
    # The slashed dialogue's last turn (a user's) has no reply to train on: dropped, counted.
    assert result.details["trailing_user_turns"] == 1


def test_audio_members_are_the_user_turns_at_16k(exported):
    result, _ = exported
    for line, members in read_lines(result).values():
        attributes = line["custom"][fields.TURN_ATTRIBUTES]
        for turn, attrs in zip(line["conversations"], attributes, strict=True):
            if turn["type"] != "audio":
                continue
            audio, rate = sf.read(io.BytesIO(members[turn["value"]]), dtype="float32")
            k = attrs[fields.TURN]
            assert rate == TARGET_RATE and audio.ndim == 1
            assert turn["duration"] == pytest.approx(len(audio) / rate)
            assert turn["duration"] == pytest.approx(turn_seconds(k), abs=1e-3)
            assert dominant_frequency(audio, rate) == pytest.approx(turn_frequency(k), abs=5)


def test_custom_has_the_conversation_and_every_turn(exported):
    result, _ = exported
    line, _ = read_lines(result)["c1-en"]
    custom = line["custom"]
    assert custom[fields.CONVERSATION_ID] == "c1" and custom[fields.LANGUAGE] == "en"
    assert fields.IMAGE not in custom and fields.IMAGE_PATH not in custom
    attributes = custom[fields.TURN_ATTRIBUTES]
    assert [(a["cut_id"], a["type"], a[fields.TURN], a[fields.ROLE]) for a in attributes] == [
        ("c1-t0", "audio", 0, "user"),
        ("c1-t1", "text", 1, "assistant"),
        ("c1-t2", "text", 2, "user"),
        ("c1-t3", "text", 3, "assistant"),
    ]
    assert [a[fields.SPEAKER_ID] for a in attributes] == ["human", "gpt"] * 2
    assert [a["text"] for a in attributes] == [turn_text("c1", k) for k in range(4)]
    assert attributes[2][fields.AUDIO_SOURCE] == "missing"


def test_slashed_conversation_id_gets_safe_member_names(exported):
    result, _ = exported
    line, members = read_lines(result)[f"{SLASHED}-en"]
    assert line["custom"][fields.CONVERSATION_ID] == SLASHED
    assert len(members) == 2 and not any("/" in name for name in members)
    # Member names are distinct per turn and end with the audio format.
    assert all(name.endswith(".flac") for name in members)


def test_config_one_conversation_entry_that_loads(exported):
    result, _ = exported
    config = OmegaConf.load(result.paths["nemo_conversation_config"])
    assert [(i.type, i.tags.language) for i in config.input_cfg] == [(CONVERSATION_TYPE, "en")]
    assert config.sample_rate == TARGET_RATE


def test_role_names_and_explicit_question(source_cuts, tmp_path):
    c2 = [c for c in source_cuts if c.custom[fields.CONVERSATION_ID] == "c2"]
    result, _ = export(
        c2, tmp_path, role_names={"user": "human", "assistant": "gpt"}, question="Reply."
    )
    (line, _), *_ = read_lines(result).values()
    assert [(t["type"], t["from"], t["value"]) for t in line["conversations"]] == [
        ("text", "human", "Reply."),
        ("audio", "human", "c2-t0.flac"),
        ("text", "gpt", turn_text("c2", 1)),
    ]
    with pytest.raises(ValueError, match="role names"):
        export(c2, tmp_path / "bad", role_names={"agent": "Agent"})


def test_a_conversation_without_turn_0_is_one_failure_and_skipped(source_cuts, tmp_path):
    cuts = [c for c in source_cuts if c.id != f"{SLASHED}-t0"]
    result, failures = export(cuts, tmp_path)
    assert sorted(read_lines(result)) == ["c1-en", "c2-en"]
    assert [(f.cut_id, f.stage) for f in failures] == [(f"{SLASHED}-en", "export_nemo")]
    assert "no turn 0" in failures[0].reason and SLASHED in failures[0].reason
    assert result.counts.failed == 1 and result.counts.written == 2


def test_user_audio_failure_keeps_the_turn_as_text(source_cuts, tmp_path):
    c1 = {c.id: c for c in source_cuts if c.custom[fields.CONVERSATION_ID] == "c1"}
    bad = fastcopy(c1["c1-t0"], recording=_missing_recording(c1["c1-t0"], tmp_path))
    # c1 with turn 0 unreadable and turn 2 given audio (turn 0's sibling from c2).
    c2_audio = next(c for c in source_cuts if c.id == "c2-t0")
    t2 = fastcopy(c1["c1-t2"], recording=c2_audio.recording, duration=c2_audio.duration)
    result, failures = export([bad, c1["c1-t1"], t2, c1["c1-t3"]], tmp_path)
    line, members = read_lines(result)["c1-en"]
    assert [(t["type"], t["value"]) for t in line["conversations"]][:3] == [
        ("text", turn_text("c1", 0)),
        ("text", turn_text("c1", 1)),
        ("audio", "c1-t2.flac"),
    ]
    assert [f.cut_id for f in failures] == ["c1-t0"] and list(members) == ["c1-t2.flac"]


def _missing_recording(cut, tmp_path: Path) -> Recording:
    data = cut.recording.to_dict()
    data["sources"] = [{**data["sources"][0], "source": str(tmp_path / "gone.wav")}]
    return Recording.from_dict(data)


def test_a_turn_with_an_unknown_role_fails_its_conversation(source_cuts, tmp_path):
    c1 = [c for c in source_cuts if c.custom[fields.CONVERSATION_ID] == "c1"]
    c1[1] = c1[1].with_custom(fields.ROLE, "narrator")
    result, failures = export(c1, tmp_path)
    assert result.details["shards"] == {}
    assert [f.cut_id for f in failures] == ["c1-t0"]  # the conversation's audio turns
    assert "c1-t1" in failures[0].reason and "narrator" in failures[0].reason


def test_a_dialogue_without_user_audio_is_not_written(source_cuts, tmp_path):
    only_text = [c for c in source_cuts if c.id in ("c1-t2", "c1-t3")]
    only_text = [fastcopy(c, custom={**c.custom, fields.TURN: k}) for k, c in enumerate(only_text)]
    result, failures = export(only_text, tmp_path)
    assert result.details["shards"] == {} and failures == []
    assert result.details.get("empty")


# --- NeMo's own reader ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    pytest.importorskip("nemo.collections.speechlm2")
    from .nemo_reading import make_tokenizer

    texts = [turn_text(c, k) for c, n in TURNS.items() for k in range(n)]
    return make_tokenizer(tmp_path_factory.mktemp("spm"), texts)


@pytest.mark.slow
def test_nemo_salm_reads_every_dialogue(exported, tokenizer):
    from nemo.collections.common.data.lhotse.text_adapters import AudioTurn, TextTurn

    from .nemo_reading import conversations, expected_answer_ids, read_with_nemo

    result, _ = exported
    convs = conversations(read_with_nemo(Path(result.paths["nemo_conversation_config"]), tokenizer))
    lines = {k: v[0] for k, v in read_lines(result).items()}
    assert sorted(convs) == sorted(lines)
    locator = tokenizer.text_to_ids(DEFAULT_AUDIO_LOCATOR_TAG)[-1]
    for conv_id, (batch, row) in convs.items():
        conv = batch["conversations"][row]
        source = lines[conv_id]["conversations"]
        assert [t.role for t in conv.turns] == [t["from"].lower() for t in source]
        audio_turns = [t for t in conv.turns if isinstance(t, AudioTurn)]
        assert len(audio_turns) == sum(t["type"] == "audio" for t in source)
        for src, turn in zip(source, conv.turns, strict=True):
            if src["type"] == "audio":
                assert turn.cut.duration == pytest.approx(src["duration"])
                assert turn.cut.sampling_rate == TARGET_RATE
            else:
                assert isinstance(turn, TextTurn) and turn.value == src["value"]
        ids, mask = batch["input_ids"][row], batch["loss_mask"][row]
        assert int((ids == locator).sum()) == len(audio_turns)
        dialog = [
            (t["from"].lower(), DEFAULT_AUDIO_LOCATOR_TAG if t["type"] == "audio" else t["value"])
            for t in source
        ]
        assert ids[mask].tolist() == expected_answer_ids(tokenizer, dialog)
        answers = tokenizer.ids_to_text(ids[mask].tolist())
        for t in source:
            if t["from"] == "Assistant":
                assert t["value"] in answers
