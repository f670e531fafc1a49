"""Triplet files, Hugging Face dataset, DuplexS2S, report and the reading API: each export read
back by its real consumer (soundfile/csv, datasets, CutSet.from_shar + DuplexS2SDataset) and
compared with the source cuts."""

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet
from PIL import Image as PILImage

import lhotse_triplets.testing.backends  # noqa: F401  (registers the dummy backends)
from lhotse_triplets import fields
from lhotse_triplets.errors import Failure, write_failures
from lhotse_triplets.export import (
    detect_export,
    export_duplex,
    export_hf,
    export_nemo,
    export_report,
    export_shar,
    export_triplet_files,
    open_export,
    read_shar,
)
from lhotse_triplets.images import load_image_bytes
from lhotse_triplets.paths import safe_name

from .dialogues import dialogue_cuts, kept


@pytest.fixture(scope="module")
def source_cuts(tmp_path_factory):
    return dialogue_cuts(tmp_path_factory.mktemp("src ü"))


@pytest.fixture(scope="module")
def by_id(source_cuts):
    return {c.id: c for c in source_cuts}


def assert_same_audio(audio, sr, cut):
    source = cut.load_audio()[0]
    assert sr == cut.sampling_rate and len(audio) == len(source)
    np.testing.assert_allclose(audio, source, atol=1e-3)


def test_triplet_files_layout_logs_and_index(source_cuts, by_id, tmp_path):
    result = export_triplet_files(CutSet(source_cuts), tmp_path / "export ß")
    out = tmp_path / "export ß" / "files"
    assert result.paths == {"triplet_files": str(out)}
    assert result.details["index"] == str(out / "triplets.csv")
    assert result.details["metadata"] == {
        lang: str(out / f"metadata_{lang}.jsonl") for lang in ("en", "fr")
    }
    assert result.details["failed"] == {
        "en": str(out / "failed_en.jsonl"),
        "fr": str(out / "failed_fr.jsonl"),
    }
    assert result.counts.written == 4 and result.counts.rejected == 2
    rows = list(csv.DictReader(open(out / "triplets.csv", encoding="utf-8")))
    assert sorted(r["id"] for r in rows) == sorted(c.id for c in kept(source_cuts))
    for row in rows:
        cut = by_id[row["id"]]
        assert row["audio"] == f"{row['language']}/{row['voice']}/{safe_name(row['id'])}.wav"
        audio, sr = sf.read(out / row["audio"], dtype="float32")
        assert_same_audio(audio, sr, cut)
        assert (out / row["image"]).read_bytes() == load_image_bytes(cut)
        assert row["answer"] == cut.custom[fields.ANSWER]  # multi-line, unicode: CSV-quoted
    meta = [json.loads(x) for x in open(out / "metadata_en.jsonl", encoding="utf-8")]
    assert {m["id"] for m in meta} == {r["id"] for r in rows if r["language"] == "en"}
    failed = [json.loads(x) for x in open(out / "failed_fr.jsonl", encoding="utf-8")]
    assert [(f["cut_id"], f["stage"], f["reason"]) for f in failed] == [
        ("conv_2-t0-fr-v1", "gate", "high_error_rate")
    ]
    assert len(list((out / "images").iterdir())) == 2


def test_triplet_files_jsonl_index_and_a_failing_cut(source_cuts, by_id, tmp_path):
    from lhotse.utils import fastcopy

    broken = [
        fastcopy(c, custom={**c.custom, fields.ANSWER: None}) if c.id == "conv 1-t0-en-v0" else c
        for c in source_cuts
    ]
    failures: list[Failure] = []
    result = export_triplet_files(
        CutSet(broken), tmp_path, index_format="jsonl", on_failure=failures.append
    )
    assert [(f.cut_id, f.stage) for f in failures] == [("conv 1-t0-en-v0", "export_triplet_files")]
    assert result.counts.written == 3 and result.counts.failed == 1
    rows = [json.loads(x) for x in open(result.details["index"], encoding="utf-8")]
    assert sorted(r["id"] for r in rows) == sorted(c.id for c in kept(source_cuts))[1:]
    failed = [json.loads(x) for x in open(result.details["failed"]["en"], encoding="utf-8")]
    assert [(f["cut_id"], f["stage"]) for f in failed] == [
        ("conv 1-t1-en-v0", "gate"),
        ("conv 1-t0-en-v0", "export_triplet_files"),
    ] or sorted((f["cut_id"], f["stage"]) for f in failed) == [
        ("conv 1-t0-en-v0", "export_triplet_files"),
        ("conv 1-t1-en-v0", "gate"),
    ]
    assert all(f["language"] == "en" and f["prompt_text"] for f in failed)
    with pytest.raises(ValueError, match="index_format"):
        export_triplet_files(CutSet(source_cuts), tmp_path / "x", index_format="tsv")


def test_hf_dataset_load_from_disk_and_parquet(source_cuts, by_id, tmp_path):
    from datasets import Audio, load_dataset, load_from_disk

    result = export_hf(CutSet(source_cuts), tmp_path, hf_num_shards=2, settings={"tts": "x"})
    assert result.paths == {"hf": str(tmp_path / "hf")}
    assert [Path(p).name for p in result.details["parquet_files"]] == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    assert result.counts.written == 4 and result.counts.rejected == 2
    card = Path(result.details["card"]).read_text(encoding="utf-8")
    assert "| en | v0 | 2 |" in card and "tts: x" in card and "16000 Hz FLAC" in card
    arrow = load_from_disk(result.details["arrow"])
    assert isinstance(arrow.features["audio"], Audio)
    parquet = load_dataset(
        "parquet",
        data_files=result.details["parquet_files"],
        split="train",
        cache_dir=str(tmp_path / "cache"),
    )
    for ds in (arrow, parquet):
        ds = ds.cast_column("audio", Audio(decode=False))  # no torchcodec: bytes + soundfile
        assert sorted(ds["id"]) == sorted(c.id for c in kept(source_cuts))
        for row in ds:
            cut = by_id[row["id"]]
            audio, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
            assert_same_audio(audio, sr, cut)
            assert row["target_text"] == cut.custom[fields.ANSWER]
            assert isinstance(row["image"], PILImage.Image)
            assert row["language"] == cut.supervisions[0].language


def test_duplex_read_by_lhotse_and_nemo_dataset(source_cuts, by_id, tmp_path):
    failures: list[Failure] = []
    result = export_duplex(
        CutSet(source_cuts), tmp_path, duplex_tts="dummy", on_failure=failures.append
    )
    assert result.counts.written == 3 and not failures
    assert result.paths == {"duplex": str(tmp_path / "duplex")}
    assert [Path(p).name for p in result.details["shards"]["cuts"]] == ["cuts.000000.jsonl.gz"]
    cuts = {c.id: c for c in read_shar(tmp_path / "duplex")}  # ids given back ("conv 1")
    dialogue = cuts["conv 1-en-v0"]
    roles = [(s.speaker, s.text) for s in dialogue.supervisions]
    assert roles == [
        ("user", by_id["conv 1-t0-en-v0"].supervisions[0].text),
        ("agent", by_id["conv 1-t0-en-v0"].custom[fields.ANSWER]),
        ("user", by_id["conv 1-t2-en-v0"].supervisions[0].text),
        ("agent", by_id["conv 1-t2-en-v0"].custom[fields.ANSWER]),
    ]
    starts = [s.start for s in dialogue.supervisions]
    assert starts == sorted(starts)
    source, target = dialogue.load_audio()[0], dialogue.load_custom(fields.TARGET_AUDIO)[0]
    assert source.shape == target.shape
    first = dialogue.supervisions[0]
    n = int(first.duration * 16000)
    np.testing.assert_allclose(source[:n], by_id["conv 1-t0-en-v0"].load_audio()[0], atol=1e-3)
    assert np.abs(target[:n]).max() == 0  # the agent is silent while the user speaks
    # Without a TTS and without target audio: a clear failure per cut, nothing written.
    failures.clear()
    result = export_duplex(CutSet(source_cuts), tmp_path / "e", on_failure=failures.append)
    assert result.counts.written == 0 and len(failures) == result.counts.failed == 4
    assert "target_audio" in failures[0].reason and "tts" in failures[0].reason


def test_duplex_options_gap_voice_shards(source_cuts, tmp_path):
    result = export_duplex(
        CutSet(source_cuts),
        tmp_path,
        duplex_tts="dummy",
        duplex_tts_options={"num_voices": 2},
        duplex_agent_voice="v1",
        duplex_gap=1.0,
        shard_size=1,
        sampling_rate=8000,
    )
    assert len(result.details["shards"]["cuts"]) == 3
    dialogue = {c.id: c for c in read_shar(result.paths["duplex"])}["conv 1-en-v0"]
    assert dialogue.sampling_rate == 8000
    sups = dialogue.supervisions
    assert sups[1].start == pytest.approx(sups[0].end + 1.0, abs=1e-3)


@pytest.mark.slow
def test_duplex_nemo_duplex_s2s_dataset(source_cuts, tmp_path):
    pytest.importorskip("nemo.collections.speechlm2")
    from nemo.collections.speechlm2.data.s2s_dataset import DuplexS2SDataset

    from .nemo_reading import make_tokenizer

    export_duplex(CutSet(source_cuts), tmp_path, duplex_tts="dummy")
    cuts = CutSet.from_shar(in_dir=tmp_path / "duplex").to_eager()
    texts = [s.text for c in cuts for s in c.supervisions]
    tokenizer = make_tokenizer(tmp_path, texts)
    dataset = DuplexS2SDataset(
        tokenizer, frame_length=0.08, source_sample_rate=16000, target_sample_rate=16000
    )
    batch = dataset[cuts]
    for i, cut in enumerate(cuts):
        agent = " ".join(s.text for s in cut.supervisions if s.speaker == "agent")
        # NeMo's dataset collapses whitespace (newlines) in the joined target text.
        assert batch["target_texts"][i].split() == agent.split()
        n = int(batch["target_audio_lens"][i])
        np.testing.assert_allclose(
            batch["target_audio"][i, :n].numpy(), cut.load_custom(fields.TARGET_AUDIO)[0], atol=1e-4
        )
    assert batch["source_audio"].shape[0] == len(cuts)


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of every Markdown table row (separator rows left out)."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|") and not re.fullmatch(r"[|\-: ]+", line):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_report_markdown_html_plots(source_cuts, tmp_path):
    failures = [Failure("x-t0-en-v0", "synthesize", "empty text")]
    result = export_report(CutSet(source_cuts), tmp_path, failures=failures)
    assert result.paths == {"report": str(tmp_path / "report" / "report.md")}
    md = open(result.paths["report"], encoding="utf-8").read()
    assert "4 clips kept" in md and "2 rejected" in md and "1 failed" in md
    rows = table_rows(md)
    assert ["en", "3", "1", "75.0", "0.0008"] in rows
    assert ["en", "v0", "2", "0.0004", "0.03"] in rows
    assert ["low_similarity", "1"] in rows and ["synthesize", "empty text", "1"] in rows
    en_means = next(r for r in rows if r[0] == "en" and len(r) == 5 and "." in r[1])
    assert en_means[1] == "0.825"  # mean similarity of the en cuts (0.9, 0.8, 0.9, 0.7)
    html = open(result.details["html"], encoding="utf-8").read()
    assert "<table>" in html and re.search(r"<td>\s*low_similarity\s*</td>", html)
    assert set(result.details["plots"]) == {"similarity", "wer", "error_rate", "mos"}
    for name in ("similarity", "error_rate", "mos"):
        assert open(result.details["plots"][name], "rb").read(4) == b"\x89PNG"
    assert (result.counts.written, result.counts.rejected, result.counts.failed) == (4, 2, 1)


def test_report_lists_the_failed_logs_of_a_run(source_cuts, tmp_path):
    from lhotse_triplets.errors import read_failures

    write_failures(tmp_path / "run" / "failed.jsonl", [Failure("a", "score", "asr: timeout")] * 2)
    failures = read_failures(tmp_path / "run")
    result = export_report(CutSet(source_cuts), tmp_path / "e", failures=failures)
    assert ["score", "asr: timeout", "2"] in table_rows(Path(result.paths["report"]).read_text())


def test_open_export_reads_every_format_back(source_cuts, by_id, tmp_path):
    export_shar(CutSet(source_cuts), tmp_path)
    export_nemo(CutSet(source_cuts), tmp_path, image_mode="path")
    export_triplet_files(CutSet(source_cuts), tmp_path)
    export_hf(CutSet(source_cuts), tmp_path)
    expected = {c.id for c in kept(source_cuts)}
    for kind, name in [
        ("shar", "shar"),
        ("nemo", "nemo"),
        ("triplet_files", "files"),
        ("hf", "hf"),
    ]:
        assert detect_export(tmp_path / name) == kind
        assert next(open_export(tmp_path / name, format=kind)).target_text
        seen = set()
        for image, audio, sr, target, meta in open_export(tmp_path / name):
            cut = by_id[meta["id"]]
            assert target == cut.custom[fields.ANSWER], kind
            assert meta["language"] == cut.supervisions[0].language, kind
            assert_same_audio(audio, sr, cut)
            assert image.size == (64, 48), kind
            seen.add(meta["id"])
        assert seen == expected, kind
    with pytest.raises(ValueError, match="not an export"):
        detect_export(tmp_path)
    with pytest.raises(ValueError, match="known readable export formats"):
        open_export(tmp_path / "shar", format="report")


@pytest.mark.slow
def test_export_formats_yamls_with_buckets_load_in_nemo(source_cuts, tmp_path):
    pytest.importorskip("nemo.collections.speechlm2")
    from omegaconf import OmegaConf

    from lhotse_triplets.export import DEFAULT_QUESTION, export_formats

    from .nemo_reading import conversations, make_tokenizer, read_with_nemo

    results = export_formats(
        CutSet(source_cuts), tmp_path / "exp", formats=["shar", "nemo", "report"], num_buckets=3
    )
    outputs = {k: v for result in results.values() for k, v in result.paths.items()}
    texts = [DEFAULT_QUESTION, "You are a helpful visual assistant."]
    texts += [t for c in source_cuts for t in (c.supervisions[0].text, c.custom[fields.ANSWER])]
    tokenizer = make_tokenizer(tmp_path, texts)
    for key, expected in [("nemo_config", 4), ("nemo_conversation_config", 3)]:
        cfg = OmegaConf.load(outputs[key])
        assert cfg.use_bucketing and len(cfg.bucket_duration_bins) >= 1, key
        assert len(conversations(read_with_nemo(outputs[key], tokenizer))) == expected, key
