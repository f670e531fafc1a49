"""The ``ttt`` export: one row per dialogue turn, read back with ``datasets.load_from_disk`` as a
TTT trainer does; token columns laid out (prefix masked, padded) with a SentencePiece model and a
Hugging Face tokenizer folder; bad conversations and a bad tokenizer handled."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from lhotse import CutSet
from lhotse.utils import fastcopy

from lhotse_triplets import fields
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.export import detect_export, open_export
from lhotse_triplets.export.ttt import TTT_METADATA, export_ttt, read_ttt_metadata
from lhotse_triplets.testing.dialogues import (
    dialogue_turn_cuts,
    turn_frequency,
    turn_seconds,
    turn_text,
)
from lhotse_triplets.testing.tokenizers import make_hf_tokenizer, make_sentencepiece
from lhotse_triplets.tokenizers import load_tokenizer

datasets = pytest.importorskip("datasets")

CONVERSATIONS = {"c1": 4, "dialogues_llama3-70B/music_78_8": 2}
TEXT_ONLY = ("c1", 3)
BASE_COLUMNS = [
    "conversation_id",
    "turn_number",
    "role",
    "speech",
    "speech_lengths",
    "transcript",
    "id",
    "language",
    "audio_source",
]
TOKEN_COLUMNS = ["input_ids", "labels", "attention_mask", "num_tokens"]


@pytest.fixture(scope="module")
def cuts(tmp_path_factory) -> CutSet:
    return dialogue_turn_cuts(tmp_path_factory.mktemp("turns"), CONVERSATIONS, {TEXT_ONLY})


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [turn_text(c, k) for c, n in CONVERSATIONS.items() for k in range(n)]


@pytest.fixture(scope="module", params=["sentencepiece", "huggingface"])
def tokenizer_path(request, texts, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "sentencepiece":
        return make_sentencepiece(workdir, [*texts, "User: Assistant:"])
    return make_hf_tokenizer(workdir, [*texts, "User: Assistant:"])


@pytest.fixture(scope="module")
def plain_export(cuts, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain")
    return export_ttt(cuts, out), out / "ttt"


def rows_by_id(path: Path) -> dict[str, dict]:
    return {row["id"]: row for row in datasets.load_from_disk(str(path))}


def test_rows_columns_dtypes_audio_and_turn_order(cuts, plain_export):
    result, path = plain_export
    ds = datasets.load_from_disk(str(path))
    assert ds.column_names == BASE_COLUMNS  # no token columns without a tokenizer
    assert ds.features["speech"].feature.dtype == "float32"
    assert ds.features["speech_lengths"].dtype == "int64"
    assert ds.features["turn_number"].dtype == "int32"
    assert len(ds) == 6 and result.counts.written == 6 and result.counts.failed == 0
    assert result.paths == {"ttt": str(path)}
    assert result.details["rows"] == 6 and result.details["conversations"] == 2
    assert result.details["text_only"] == 1 and result.counts.per_language == {"en": 6}
    # conversations contiguous, turns in order from 0
    order = [(row["conversation_id"], row["turn_number"]) for row in ds]
    assert order == [(c, k) for c, n in CONVERSATIONS.items() for k in range(n)]
    rows = rows_by_id(path)
    for cut in cuts:
        row = rows[cut.id]
        conversation, turn = cut.custom["conversation_id"], cut.custom["turn"]
        assert row["conversation_id"] == conversation and row["turn_number"] == turn
        assert row["role"] == ("user" if turn % 2 == 0 else "assistant")
        assert row["transcript"] == turn_text(conversation, turn)
        if (conversation, turn) == TEXT_ONLY:
            assert row["speech"] == [] and row["speech_lengths"] == 0
            assert row["audio_source"] == "missing"
            continue
        speech = np.asarray(row["speech"], dtype=np.float32)
        assert row["speech_lengths"] == len(speech) == round(turn_seconds(turn) * 16000)
        np.testing.assert_allclose(speech, cut.load_audio()[0], atol=1e-6)
        assert row["audio_source"] is None
    seconds = sum(turn_seconds(k) for c, n in CONVERSATIONS.items() for k in range(n))
    assert result.counts.seconds == pytest.approx(seconds - turn_seconds(TEXT_ONLY[1]), abs=1e-3)


def test_speech_is_the_turn_itself(plain_export):
    """The tone of each row is its own turn's (rows are not shifted or swapped)."""
    rows = rows_by_id(plain_export[1])
    speech = np.asarray(rows["c1-t2"]["speech"])
    spectrum = np.abs(np.fft.rfft(speech))
    peak = np.argmax(spectrum) * 16000 / len(speech)
    assert peak == pytest.approx(turn_frequency(2), abs=5)


def test_metadata_file_and_readers(plain_export):
    _, path = plain_export
    meta = json.loads((path / TTT_METADATA).read_text())
    assert meta["format"] == "ttt" and meta["pad_multiple"] == 64 and meta["pad_id"] is None
    assert meta["tokenizer"] is None and meta["label_ignore"] == -100
    assert meta["sampling_rate"] == 16000 and meta["rows"] == 6 and meta["conversations"] == 2
    assert read_ttt_metadata(path) == meta
    assert detect_export(path) == "ttt"  # not "hf": both are save_to_disk folders
    triplets = list(open_export(path))
    assert [t.target_text for t in triplets][:2] == [turn_text("c1", 0), turn_text("c1", 1)]
    assert triplets[0].image is None and triplets[0].sampling_rate == 16000
    assert triplets[0].audio.dtype == np.float32 and len(triplets[0].audio) == 6400
    assert triplets[0].metadata["turn_number"] == 0


@pytest.mark.parametrize("pad_multiple", [64, 32])
def test_labels_ignore_the_prefix_and_lengths_are_padded(
    cuts, tokenizer_path, pad_multiple, tmp_path
):
    tokenizer = load_tokenizer(tokenizer_path)
    result = export_ttt(
        cuts,
        tmp_path,
        tokenizer=str(tokenizer_path),
        pad_multiple=pad_multiple,
        role_names={"assistant": "Agent"},
    )
    ds = datasets.load_from_disk(result.paths["ttt"])
    assert ds.column_names == BASE_COLUMNS + TOKEN_COLUMNS
    assert ds.features["input_ids"].feature.dtype == "int64"
    meta = read_ttt_metadata(result.paths["ttt"])
    assert meta["pad_multiple"] == pad_multiple and meta["pad_id"] == tokenizer.pad_id
    assert meta["tokenizer"] == tokenizer.name
    for row in ds:
        ids, labels, mask = row["input_ids"], row["labels"], row["attention_mask"]
        n = row["num_tokens"]
        prefix = tokenizer.encode("User: " if row["role"] == "user" else "Agent: ")
        text = tokenizer.encode(row["transcript"])
        assert len(ids) == len(labels) == len(mask) and len(ids) % pad_multiple == 0
        assert n == len(prefix) + len(text) and len(ids) - n < pad_multiple
        assert ids[:n] == prefix + text and set(ids[n:]) <= {tokenizer.pad_id}
        assert labels[: len(prefix)] == [-100] * len(prefix)  # exactly the prefix is ignored
        assert labels[len(prefix) : n] == text and -100 not in text
        assert labels[n:] == [-100] * (len(ids) - n)
        assert mask == [1] * n + [0] * (len(ids) - n)


def test_exact_multiple_is_not_padded_further(cuts, tmp_path):
    """Padding to 1 is no padding: ``num_tokens`` == length for every row."""
    spm = make_sentencepiece(tmp_path / "tok", [turn_text("c1", 0)])
    result = export_ttt(cuts, tmp_path / "out", tokenizer=str(spm), pad_multiple=1)
    ds = datasets.load_from_disk(result.paths["ttt"])
    assert all(len(row["input_ids"]) == row["num_tokens"] for row in ds)


def test_a_conversation_without_turn_0_fails_as_one_item(cuts, tmp_path):
    broken = cuts.filter(lambda c: c.id != "c1-t0").to_eager()
    failures = []
    result = export_ttt(broken, tmp_path, on_failure=failures.append)
    ds = datasets.load_from_disk(result.paths["ttt"])
    assert set(ds["conversation_id"]) == {"dialogues_llama3-70B/music_78_8"}
    assert sorted(f.cut_id for f in failures) == ["c1-t1", "c1-t2", "c1-t3"]
    assert all("no turn 0" in f.reason for f in failures)
    assert result.counts.failed == 3 and result.counts.written == 2
    assert result.details["conversations"] == 1


def test_a_turn_whose_audio_cannot_load_fails_its_conversation(cuts, tmp_path):
    def break_audio(cut):
        if cut.id != "c1-t1":
            return cut
        source = fastcopy(cut.recording.sources[0], source=str(tmp_path / "gone.wav"))
        return fastcopy(cut, recording=fastcopy(cut.recording, sources=[source]))

    failures = []
    result = export_ttt(cuts.map(break_audio), tmp_path / "out", on_failure=failures.append)
    assert sorted(f.cut_id for f in failures) == [f"c1-t{k}" for k in range(4)]
    assert result.details["rows"] == 2


def test_every_conversation_failing_gives_an_empty_dataset(cuts, tmp_path):
    only_late = cuts.filter(lambda c: c.custom["turn"] > 0).to_eager()
    result = export_ttt(only_late, tmp_path, on_failure=lambda f: None)
    assert result.empty and result.counts.written == 0
    ds = datasets.load_from_disk(result.paths["ttt"])
    assert len(ds) == 0 and ds.column_names == BASE_COLUMNS
    assert read_ttt_metadata(result.paths["ttt"])["rows"] == 0


def test_triplet_cuts_give_a_user_and_an_assistant_row_each_numbered_over_kept_turns(
    cuts, tmp_path
):
    """Cuts that are not dialogue turns (the quick start's): the spoken prompt, then its answer;
    a turn the gate rejected leaves no gap in the numbering (TTT resets state at turn 0)."""

    def as_triplet(cut, turn, reject=None):
        custom = {k: v for k, v in cut.custom.items() if k != fields.ROLE}
        custom.update({fields.TURN: turn, fields.ANSWER: f"answer {turn}"})
        custom[fields.REJECT_REASON] = reject
        sup = fastcopy(cut.supervisions[0], speaker="v0")
        return fastcopy(cut, id=f"q-t{turn}", custom=custom, supervisions=[sup])

    c1 = [c for c in cuts if c.custom["conversation_id"] == "c1" and c.has_recording]
    triplets = CutSet(
        [as_triplet(c1[0], 0), as_triplet(c1[1], 1, reject="low_mos"), as_triplet(c1[2], 2)]
    )
    tokenizer = make_sentencepiece(tmp_path / "spm", ["answer 0", "answer 2"])
    result = export_ttt(triplets, tmp_path, tokenizer=str(tokenizer))
    assert result.counts.rejected == 1 and not result.counts.failed
    ds = datasets.load_from_disk(result.paths["ttt"])
    assert ds["conversation_id"] == ["c1-en-v0"] * 4
    assert ds["turn_number"] == [0, 1, 2, 3]
    assert ds["role"] == ["user", "assistant", "user", "assistant"]
    assert ds["id"] == ["q-t0", "q-t0-assistant", "q-t2", "q-t2-assistant"]
    assert ds["transcript"][1::2] == ["answer 0", "answer 2"]
    assert ds["speech_lengths"][1::2] == [0, 0] and min(ds["speech_lengths"][0::2]) > 0
    assert all(len(ids) % 64 == 0 for ids in ds["input_ids"])


def test_bad_tokenizer_path_fails_before_any_work(cuts, tmp_path):
    with pytest.raises(ValueError, match="export.tokenizer: .*no such file"):
        export_ttt(cuts, tmp_path, tokenizer=str(tmp_path / "nope.model"))
    assert not (tmp_path / "ttt").exists()
    (tmp_path / "junk.model").write_text("not a model")
    with pytest.raises(ValueError, match="export.tokenizer: .*not a SentencePiece model"):
        export_ttt(cuts, tmp_path, tokenizer=str(tmp_path / "junk.model"))


def test_overwrite_replaces_the_rows(cuts, tmp_path):
    export_ttt(cuts, tmp_path)
    with pytest.raises(FileExistsError):
        export_ttt(cuts, tmp_path)
    result = export_ttt(cuts.filter(lambda c: c.id.startswith("c1")), tmp_path, overwrite=True)
    assert len(datasets.load_from_disk(result.paths["ttt"])) == 4


@pytest.fixture(scope="module")
def manifest(cuts, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("manifest") / "turns.jsonl.gz"
    cuts.to_file(path)
    return path


def test_cli_exports_with_tokenizer_and_pad_multiple(manifest, texts, tmp_path):
    spm = make_sentencepiece(tmp_path / "tok", texts)
    out = tmp_path / "export"
    args = ["export", "ttt", str(manifest), str(out), f"tokenizer={spm}", "pad_multiple=32"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "ttt: written: 6" in result.output and str(out / "ttt") in result.output
    ds = datasets.load_from_disk(str(out / "ttt"))
    assert all(len(ids) % 32 == 0 for ids in ds["input_ids"])
    assert read_ttt_metadata(out / "ttt")["pad_multiple"] == 32
    help_text = CliRunner().invoke(cli, ["export", "ttt", "--help"]).output
    assert "TTT rows" in help_text


def test_cli_bad_tokenizer_is_one_error_line(manifest, tmp_path):
    args = ["export", "ttt", str(manifest), str(tmp_path / "e"), "tokenizer=/no/such.model"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["Error: export.tokenizer: tokenizer '/no/such.model': no such file or folder"]
    assert not (tmp_path / "e" / "ttt").exists()
