"""Dialogue turn cuts assembled into DuplexS2S conversations: the two-channel timeline, role
names, conversations that fail (a missing turn 0, a turn with no audio) and the ``export
duplex`` command; NeMo's loader + ``DuplexS2SDataset`` read the result."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from lhotse import CutSet

import lhotse_triplets.testing.backends  # noqa: F401  (the dummy TTS)
from lhotse_triplets import fields
from lhotse_triplets.bin.export_cmds import export
from lhotse_triplets.errors import Failure
from lhotse_triplets.export import export_duplex, read_shar
from lhotse_triplets.export.assemble import SOURCE_CUT_IDS
from lhotse_triplets.testing.dialogues import (
    dialogue_turn_cuts,
    turn_frequency,
    turn_seconds,
    turn_text,
)

SR = 16000
GAP = 0.4  # the export's default duplex_gap
SLASHED = "dialogues_llama3-70B/music_78_8"


@pytest.fixture(scope="module")
def turns(tmp_path_factory) -> CutSet:
    return dialogue_turn_cuts(tmp_path_factory.mktemp("turns"), {"c1": 4, SLASHED: 2}).to_eager()


@pytest.fixture(scope="module")
def exported(turns, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    result = export_duplex(turns, out)
    assert (result.counts.written, result.counts.failed) == (2, 0)
    return out


def dialogues(out: Path) -> dict:
    return {c.id: c for c in read_shar(out / "duplex")}


def dominant_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.argmax(spectrum)) * SR / len(audio)


def span(audio: np.ndarray, sup) -> np.ndarray:
    return audio[int(round(sup.start * SR)) : int(round(sup.end * SR))]


def test_turns_on_one_timeline(turns, exported):
    by_id = {c.id: c for c in turns}
    cut = dialogues(exported)["c1-en"]
    source, target = cut.load_audio()[0], cut.load_custom(fields.TARGET_AUDIO)[0]
    assert cut.sampling_rate == SR and cut.custom[fields.TARGET_AUDIO].sampling_rate == SR
    assert cut.recording.num_samples == cut.custom[fields.TARGET_AUDIO].num_samples
    assert source.shape == target.shape
    expected = sum(turn_seconds(k) for k in range(4)) + 4 * GAP
    assert cut.duration == pytest.approx(expected, abs=1e-3)
    sups = cut.supervisions
    assert [s.speaker for s in sups] == ["user", "agent", "user", "agent"]
    assert [s.text for s in sups] == [turn_text("c1", k) for k in range(4)]
    assert {s.language for s in sups} == {"en"}
    for k, sup in enumerate(sups):
        assert sup.duration == pytest.approx(turn_seconds(k), abs=1e-3)
        if k:
            assert sup.start == pytest.approx(sups[k - 1].end + GAP, abs=1e-3)
        own, other = (source, target) if k % 2 == 0 else (target, source)
        assert dominant_frequency(span(own, sup)) == pytest.approx(turn_frequency(k), abs=5)
        assert np.abs(span(other, sup)).max() == 0  # silence while the other side speaks
    first = span(source, sups[0])
    np.testing.assert_allclose(first, by_id["c1-t0"].load_audio()[0][: len(first)], atol=1e-3)
    gap = source[int(round(sups[0].end * SR)) + 1 : int(round(sups[1].start * SR))]
    assert len(gap) and np.abs(gap).max() == 0  # silence between the turns
    assert cut.custom[fields.CONVERSATION_ID] == "c1"
    assert cut.custom[SOURCE_CUT_IDS] == [f"c1-t{k}" for k in range(4)]
    attributes = cut.custom[fields.TURN_ATTRIBUTES]
    assert [(a[fields.TURN], a[fields.ROLE], a[fields.SPEAKER_ID]) for a in attributes] == [
        (0, "user", "human"),
        (1, "assistant", "gpt"),
        (2, "user", "human"),
        (3, "assistant", "gpt"),
    ]


def test_a_conversation_id_with_a_slash_is_stored_safely(exported):
    stored = [c.id for c in CutSet.from_shar(in_dir=exported / "duplex")]
    assert len(stored) == 2 and not any("/" in i for i in stored)
    cut = dialogues(exported)[f"{SLASHED}-en"]  # the own id given back
    assert cut.custom[fields.CONVERSATION_ID] == SLASHED
    assert [s.text for s in cut.supervisions] == [turn_text(SLASHED, k) for k in range(2)]


def test_role_names(turns, tmp_path):
    names = {"user": "User", "assistant": "Assistant"}
    export_duplex(turns, tmp_path, role_names=names)
    cut = dialogues(tmp_path)["c1-en"]
    assert [s.speaker for s in cut.supervisions] == ["User", "Assistant", "User", "Assistant"]
    with pytest.raises(ValueError) as error:
        export_duplex(turns, tmp_path / "bad", role_names={"agent": "Assistant"})
    message = str(error.value)
    assert "agent" in message and "\n" not in message
    assert not (tmp_path / "bad").exists()


def test_rate_option_and_gap(turns, tmp_path):
    export_duplex(turns.resample(24000), tmp_path / "24k")  # turns at 24 kHz: 16 kHz unless set
    cut = dialogues(tmp_path / "24k")["c1-en"]
    assert cut.sampling_rate == cut.custom[fields.TARGET_AUDIO].sampling_rate == SR
    export_duplex(turns, tmp_path, sampling_rate=8000, duplex_gap=0.0)
    cut = dialogues(tmp_path)[f"{SLASHED}-en"]
    assert cut.sampling_rate == 8000
    assert cut.custom[fields.TARGET_AUDIO].num_samples == cut.recording.num_samples
    assert cut.duration == pytest.approx(turn_seconds(0) + turn_seconds(1), abs=1e-3)


@pytest.fixture(scope="module")
def bad_turns(tmp_path_factory) -> CutSet:
    cuts = dialogue_turn_cuts(
        tmp_path_factory.mktemp("bad"), {"c1": 4, "c2": 2, "c3": 3}, missing={("c1", 3)}
    )
    return cuts.filter(lambda c: c.id != "c3-t0").to_eager()


def test_broken_conversations_fail_alone(bad_turns, tmp_path):
    failures: list[Failure] = []
    result = export_duplex(bad_turns, tmp_path, on_failure=failures.append)
    assert result.counts.written == 1 and list(dialogues(tmp_path)) == ["c2-en"]
    reasons = {f.cut_id: f.reason for f in failures}
    assert set(reasons) == {"c1-t0", "c1-t1", "c1-t2", "c1-t3", "c3-t1", "c3-t2"}
    assert result.counts.failed == 6
    assert reasons["c1-t0"] == (
        "missing_audio: turn 3 (assistant) has no audio; "
        "set export.duplex_tts or re-speak it with synthesize"
    )
    assert reasons["c3-t1"] == "turns: no turn 0 in c3"
    assert {f.stage for f in failures} == {"export_duplex"}


def test_a_text_only_turn_is_spoken_with_duplex_tts(bad_turns, tmp_path):
    failures: list[Failure] = []
    result = export_duplex(bad_turns, tmp_path, duplex_tts="dummy", on_failure=failures.append)
    assert result.counts.written == 2 and [f.cut_id for f in failures] == ["c3-t1", "c3-t2"]
    cut = dialogues(tmp_path)["c1-en"]
    spoken = cut.custom[fields.TURN_ATTRIBUTES][3]
    assert spoken[fields.AUDIO_SOURCE] == "synthesized: dummy"
    assert fields.AUDIO_SOURCE not in cut.custom[fields.TURN_ATTRIBUTES][2]
    last = cut.supervisions[3]
    assert last.text == turn_text("c1", 3) and last.duration > 0
    target = cut.load_custom(fields.TARGET_AUDIO)[0]
    assert np.abs(span(target, last)).max() > 0.01
    assert np.abs(span(cut.load_audio()[0], last)).max() == 0


def test_cli(turns, tmp_path):
    manifest = tmp_path / "turns.jsonl.gz"
    turns.to_file(manifest)
    out = tmp_path / "out"
    args = ["duplex", str(manifest), str(out), "role_names.user=User", "duplex_gap=0.2"]
    result = CliRunner().invoke(export, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "written: 2" in result.output
    cut = dialogues(out)["c1-en"]
    assert [s.speaker for s in cut.supervisions] == ["User", "agent", "User", "agent"]
    assert cut.supervisions[1].start == pytest.approx(cut.supervisions[0].end + 0.2, abs=1e-3)
    assert cut.sampling_rate == SR
    result = CliRunner().invoke(export, ["duplex", "--help"])
    assert result.exit_code == 0 and "DuplexS2S" in result.output


@pytest.mark.slow
def test_read_by_nemo_duplex_s2s_dataset(turns, tmp_path):
    pytest.importorskip("nemo.collections.speechlm2")
    from lhotse import compute_num_frames
    from nemo.collections.common.data.lhotse import get_lhotse_dataloader_from_config
    from nemo.collections.speechlm2.data.s2s_dataset import DuplexS2SDataset
    from omegaconf import OmegaConf

    from .nemo_reading import LOADER_OPTIONS, make_tokenizer

    names = {"user": "User", "assistant": "Assistant"}
    export_duplex(turns, tmp_path, role_names=names)
    written = dialogues(tmp_path)
    tokenizer = make_tokenizer(tmp_path, [s.text for c in written.values() for s in c.supervisions])
    dataset = DuplexS2SDataset(
        tokenizer,
        frame_length=0.08,
        source_sample_rate=SR,
        target_sample_rate=SR,
        input_roles=["User"],
        output_roles=["Assistant"],
    )
    config = OmegaConf.create({**LOADER_OPTIONS, "shar_path": str(tmp_path / "duplex")})
    loader = get_lhotse_dataloader_from_config(
        config, global_rank=0, world_size=1, dataset=dataset, tokenizer=tokenizer
    )
    batches = list(loader)
    assert sum(len(b["target_texts"]) for b in batches) == len(written) == 2
    stored = {c.id: c for c in CutSet.from_shar(in_dir=tmp_path / "duplex")}
    order = list(stored)  # shuffle off: the loader reads in stored order
    for batch in batches:
        for i, text in enumerate(batch["target_texts"]):
            cut_id = order.pop(0)
            cut = written[stored[cut_id].custom.get(fields.ORIGINAL_ID, cut_id)]
            agent = [s.text for s in cut.supervisions if s.speaker == "Assistant"]
            assert text.split() == " ".join(agent).split()
            frames = compute_num_frames(cut.duration, 0.08, SR)
            assert int(batch["source_token_lens"][i]) == frames
            assert int(batch["target_token_lens"][i]) == frames
            tokens = batch["target_tokens"][i, :frames]
            for sup in cut.supervisions:  # BOS where each agent turn starts, none for users
                start = compute_num_frames(sup.start, 0.08, SR)
                source_bos = int(batch["source_tokens"][i, start]) == tokenizer.bos
                assert (int(tokens[start]) == tokenizer.bos) == (sup.speaker == "Assistant")
                assert source_bos == (sup.speaker == "User")
            n = int(batch["target_audio_lens"][i])
            assert n == cut.recording.num_samples == int(batch["source_audio_lens"][i])
            np.testing.assert_allclose(
                batch["target_audio"][i, :n].numpy(),
                cut.load_custom(fields.TARGET_AUDIO)[0],
                atol=1e-4,
            )
