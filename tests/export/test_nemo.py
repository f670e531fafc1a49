"""Tarred NeMo ``multimodal_conversation`` export: read back with tarfile/webdataset, and by
NeMo's own dataloader + ``SALMDataset`` through the generated YAML (bucketing included)."""

import base64
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet
from lhotse.utils import fastcopy
from omegaconf import OmegaConf

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure
from lhotse_triplets.export import DEFAULT_QUESTION, export_nemo, write_conversation_config
from lhotse_triplets.export.nemo_config import CONVERSATION_TYPE, DEFAULT_AUDIO_LOCATOR_TAG
from lhotse_triplets.images import load_image_bytes
from lhotse_triplets.paths import safe_name

from .dialogues import SOURCE, SYSTEM_PROMPT, dialogue_cuts, spoken


@pytest.fixture(scope="module")
def source_cuts(tmp_path_factory):
    return dialogue_cuts(tmp_path_factory.mktemp("src dir é"))


@pytest.fixture(scope="module")
def exported(source_cuts, tmp_path_factory):
    export_dir = tmp_path_factory.mktemp("out") / "nemo export ü"
    result = export_nemo(CutSet(source_cuts), export_dir, shard_size=1, weights={"en": 2.0})
    return Path(result.paths["nemo"]), result


def read_lines(result) -> dict[str, tuple[dict, dict[str, bytes]]]:
    """conversation id -> (JSONL line, tar member name -> bytes), checking the tar order."""
    out = {}
    for pairs in result.details["shards"].values():
        for manifest, tar_path in pairs:
            with tarfile.open(tar_path) as tar:
                members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
            lines = [json.loads(x) for x in open(manifest, encoding="utf-8")]
            audio_values = [
                t["value"] for x in lines for t in x["conversations"] if t["type"] == "audio"
            ]
            assert [name for name, _ in members] == audio_values  # NeMo reads them in this order
            for line in lines:
                out[line["id"]] = (line, dict(members))
    return out


def test_layout_one_folder_per_language_shards_by_count(exported):
    out, result = exported
    assert out.name == "nemo" and result.format == "nemo"
    assert result.paths == {
        "nemo": str(out),
        "nemo_conversation_config": str(out / "nemo_data.yaml"),
    }
    shards = result.details["shards"]
    assert sorted(shards) == ["en", "fr"]
    assert [len(p) for _, p in sorted(shards.items())] == [2, 1]
    assert sorted(p.name for p in out.iterdir()) == ["en", "fr", "nemo_data.yaml"]
    assert sorted(p.name for p in (out / "en").iterdir()) == [
        "audio_0.tar",
        "audio_1.tar",
        "manifest_0.jsonl",
        "manifest_1.jsonl",
    ]
    assert result.counts.written == 3 and result.counts.rejected == 2
    assert result.details["audio_turns"] == 4
    assert not list(out.parent.glob(".*partial"))


def test_tar_members_are_plain_files_named_like_the_turns(exported):
    _, result = exported
    for pairs in result.details["shards"].values():
        for _, tar_path in pairs:
            with tarfile.open(tar_path) as tar:
                for member in tar.getmembers():
                    assert member.isfile() and "/" not in member.name
                    assert member.name.endswith(".flac") and member.size > 100


def test_multi_turn_order_roles_and_rejected_turn_as_text(exported, source_cuts):
    _, result = exported
    lines = read_lines(result)
    assert sorted(lines) == ["conv 1-en-v0", "conv 1-fr-v1", "conv_2-en-v2"]
    line, members = lines["conv 1-en-v0"]
    turns = [(t["type"], t["from"], t["value"]) for t in line["conversations"]]
    answers = [a for _, a in SOURCE["conv 1"]]
    assert turns == [
        ("text", "User", DEFAULT_QUESTION),
        ("audio", "User", safe_name("conv 1-t0-en-v0") + ".flac"),
        ("text", "Assistant", answers[0]),
        ("text", "User", spoken("conv 1", 1, "en")),  # rejected by the gate: text turn
        ("text", "Assistant", answers[1]),
        ("text", "User", DEFAULT_QUESTION),
        ("audio", "User", safe_name("conv 1-t2-en-v0") + ".flac"),
        ("text", "Assistant", answers[2]),
    ]
    by_id = {c.id: c for c in source_cuts}
    attrs = line["custom"][fields.TURN_ATTRIBUTES]
    assert [a["cut_id"] for a in attrs] == ["conv 1-t0-en-v0", "conv 1-t2-en-v0"]
    assert attrs[1][fields.MOS] == pytest.approx(by_id["conv 1-t2-en-v0"].custom[fields.MOS])
    names = [safe_name(f"conv 1-t{turn}-en-v0") + ".flac" for turn in (0, 2)]
    for attr, name in zip(attrs, names, strict=True):
        audio, sr = sf.read(io.BytesIO(members[name]), dtype="float32")
        source = by_id[attr["cut_id"]].load_audio()[0]
        assert sr == 16000 and len(audio) == len(source)
        np.testing.assert_allclose(audio, source, atol=1e-3)
    system = lines["conv_2-en-v2"][0]["conversations"][0]
    assert (system["from"], system["value"]) == ("System", SYSTEM_PROMPT)


def test_custom_holds_image_bytes_and_attributes(exported, source_cuts):
    _, result = exported
    by_conv = {c.custom[fields.CONVERSATION_ID]: c for c in source_cuts}
    for line, _ in read_lines(result).values():
        custom = line["custom"]
        source = by_conv[custom[fields.CONVERSATION_ID]]
        assert base64.b64decode(custom[fields.IMAGE]) == load_image_bytes(source)
        assert custom[fields.IMAGE_FORMAT] == "png"
        assert custom[fields.LANGUAGE] in ("en", "fr") and custom[fields.VOICE].startswith("v")
        assert not set(custom) & fields.NEMO_RESERVED


def test_image_mode_path_and_shards_by_hours(source_cuts, tmp_path):
    result = export_nemo(
        CutSet(source_cuts),
        tmp_path,
        shard_size=None,
        shard_hours=1.5 / 3600,
        image_mode="path",
    )
    # en: conversations of 1.6 s and 1.12 s of audio: over 1.5 s each -> a shard each.
    assert len(result.details["shards"]["en"]) == 2
    for line, _ in read_lines(result).values():
        rel = line["custom"][fields.IMAGE_PATH]
        assert fields.IMAGE not in line["custom"]
        assert line["custom"][fields.IMAGE_FORMAT] == "png"
        assert (tmp_path / "nemo" / rel).read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "nemo" / "images").iterdir())) == 2  # one per source image


def test_resampled_wav_turns(source_cuts, tmp_path):
    result = export_nemo(CutSet(source_cuts), tmp_path, sampling_rate=8000, audio_format="wav")
    line, members = read_lines(result)["conv 1-en-v0"]
    audio_turns = [t["value"] for t in line["conversations"] if t["type"] == "audio"]
    assert audio_turns == [safe_name(f"conv 1-t{turn}-en-v0") + ".wav" for turn in (0, 2)]
    audio, sr = sf.read(io.BytesIO(members[audio_turns[0]]), dtype="float32")
    assert sr == 8000
    assert OmegaConf.load(result.paths["nemo_conversation_config"]).sample_rate == 8000
    with pytest.raises(ValueError, match="image_mode"):
        export_nemo(CutSet(source_cuts), tmp_path / "x", image_mode="inline")


def test_webdataset_reads_the_tars(exported):
    import webdataset as wds

    _, result = exported
    tars = [t for pairs in result.details["shards"].values() for _, t in pairs]
    samples = list(wds.WebDataset(tars, shardshuffle=False, empty_check=False))
    assert len(samples) == 4
    assert all("flac" in s and len(s["flac"]) > 100 for s in samples)


def test_bad_audio_is_recorded_and_the_conversation_continues(source_cuts, tmp_path):
    from lhotse.utils import fastcopy

    broken = [
        fastcopy(c, recording=fastcopy(c.recording, sources=[])) if c.id == "conv 1-t0-en-v0" else c
        for c in source_cuts
    ]
    failures: list[Failure] = []
    result = export_nemo(CutSet(broken), tmp_path, on_failure=failures.append)
    assert [(f.cut_id, f.stage) for f in failures] == [("conv 1-t0-en-v0", "export_nemo")]
    assert failures[0].reason
    line, _ = read_lines(result)["conv 1-en-v0"]
    assert [t["type"] for t in line["conversations"]][:2] == ["text", "text"]
    assert result.counts.failed == 1 and result.counts.written == 3


def test_refuses_paths_nemo_would_mangle_and_existing_output(source_cuts, tmp_path):
    with pytest.raises(ValueError, match=r"contains '\('"):
        export_nemo(source_cuts, tmp_path / "a(1)")
    (tmp_path / "nemo").mkdir()
    (tmp_path / "nemo" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_nemo(source_cuts, tmp_path)
    assert (tmp_path / "nemo" / "x").read_text() == "x"
    result = export_nemo(source_cuts, tmp_path, overwrite=True)
    # A file this export did not write is kept (only the export's own files are replaced).
    assert (tmp_path / "nemo" / "x").read_text() == "x" and result.counts.written == 3


def test_an_unknown_weight_language_is_refused_and_nothing_written(source_cuts, tmp_path):
    with pytest.raises(ValueError, match="export.weights: no cut has the language.s. de"):
        export_nemo(source_cuts, tmp_path, weights={"de": 1.0})
    assert not list(tmp_path.iterdir())


def test_a_weight_for_a_language_with_every_clip_rejected_is_dropped(source_cuts, tmp_path):
    fr_rejected = [
        c
        if c.supervisions[0].language != "fr"
        else fastcopy(c, custom={**c.custom, fields.REJECT_REASON: "low_mos"})
        for c in source_cuts
    ]
    result = export_nemo(fr_rejected, tmp_path, weights={"fr": 3.0, "en": 2.0})
    assert result.details["unused_weights"] == ["fr"] and set(result.details["shards"]) == {"en"}
    cfg = OmegaConf.load(result.paths["nemo_conversation_config"])
    assert [(i.tags.language, i.weight) for i in cfg.input_cfg] == [("en", 2.0)]


def test_config_one_entry_per_language_with_weights_and_bins(exported):
    out, result = exported
    # The config the export wrote (weights={"en": 2.0}) and the same one written again.
    assert OmegaConf.load(out / "nemo_data.yaml").input_cfg[0].weight == 2.0
    path = write_conversation_config(result, out / "again.yaml", weights={"en": 2.0}, num_buckets=3)
    cfg = OmegaConf.load(path)
    assert [(i.type, i.tags.language, i.weight) for i in cfg.input_cfg] == [
        (CONVERSATION_TYPE, "en", 2.0),
        (CONVERSATION_TYPE, "fr", 1.0),
    ]
    en = cfg.input_cfg[0]
    assert en.manifest_filepath == str((out / "en" / "manifest__OP_0..1_CL_.jsonl").resolve())
    assert en.tarred_audio_filepaths.endswith("/en/audio__OP_0..1_CL_.tar")
    assert en.audio_locator_tag == DEFAULT_AUDIO_LOCATOR_TAG
    assert cfg.use_multimodal_sampling and cfg.use_bucketing
    bins = list(cfg.bucket_duration_bins)
    assert bins == sorted(bins) and len(bins) == cfg.num_buckets - 1 >= 1
    with pytest.raises(ValueError, match="de"):
        write_conversation_config(result, weights={"de": 1.0})


# --- NeMo's own reader ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, source_cuts):
    pytest.importorskip("nemo.collections.speechlm2")
    from .nemo_reading import make_tokenizer

    texts = [DEFAULT_QUESTION, SYSTEM_PROMPT]
    for c in source_cuts:
        texts += [c.supervisions[0].text, c.custom[fields.ANSWER]]
    return make_tokenizer(tmp_path_factory.mktemp("spm"), texts)


@pytest.mark.slow
def test_nemo_salm_reads_conversations_through_the_generated_yaml(exported, tokenizer):
    from nemo.collections.common.data.lhotse.text_adapters import AudioTurn, TextTurn

    from .nemo_reading import conversations, expected_answer_ids, read_with_nemo

    out, result = exported
    count = lambda text: len(tokenizer.text_to_ids(text))  # noqa: E731
    config = write_conversation_config(result, num_buckets=3, count_tokens=count)
    assert OmegaConf.load(config).use_bucketing
    convs = conversations(read_with_nemo(config, tokenizer))
    lines = {k: v[0] for k, v in read_lines(result).items()}
    assert sorted(convs) == sorted(lines)
    for conv_id, (batch, row) in convs.items():
        conv = batch["conversations"][row]
        source = lines[conv_id]["conversations"]
        # Every turn, in order, with its role; audio turns carry the tar audio.
        assert [t["from"].lower() for t in source] == [t.role for t in conv.turns]
        for src, turn in zip(source, conv.turns, strict=True):
            if src["type"] == "text":
                assert isinstance(turn, TextTurn) and turn.value == src["value"]
            else:
                assert isinstance(turn, AudioTurn)
                assert turn.cut.duration == pytest.approx(src["duration"])
        # The training targets: every assistant turn, verbatim, in order.
        dialog = [
            (t["from"].lower(), DEFAULT_AUDIO_LOCATOR_TAG if t["type"] == "audio" else t["value"])
            for t in source
        ]
        ids, mask = batch["input_ids"][row], batch["loss_mask"][row]
        assert ids[mask].tolist() == expected_answer_ids(tokenizer, dialog)
        # The image travels in custom.
        assert base64.b64decode(conv.custom[fields.IMAGE])[:4] == b"\x89PNG"
