"""The ``speakers`` recipe: speaker sets in index-tts-lora's format, on audio lists built here.

Synthetic speakers are harmonic tones of their own pitch and timbre (with a little random
variation per clip); the ``dummy`` speaker backend (band energies) tells them apart.
"""

import json
import shutil
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from lhotse import CutSet, RecordingSet, SupervisionSet

from lhotse_triplets.backends import BackendSpec, build
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.errors import reason_code
from lhotse_triplets.recipes import get_recipe
from lhotse_triplets.recipes.speakers import prepare_speaker_set, read_audio_list
from lhotse_triplets.recipes.speakers.medoid import distance_matrix, medoid
from lhotse_triplets.recipes.speakers.output import SPEAKER_INFO_FIELDS
from lhotse_triplets.recipes.speakers.split import num_valid, split_indices
from lhotse_triplets.testing.backends import DummyTTS
from lhotse_triplets.testing.files import file_blobs

SR = 16000
#: name -> (f0 Hz, harmonic weights, number of good clips)
SPEAKERS = {
    "anna": (140.0, [1.0, 0.5, 0.3, 0.2], 12),
    "bert": (230.0, [1.0, 0.1, 0.6, 0.0, 0.4], 5),
    "carl": (330.0, [0.3, 1.0, 0.1, 0.5], 3),
    "dora": (95.0, [0.2, 1.0, 0.2], 1),
}
#: Bad rows (all in anna's folder): file -> expected exclusion code.
BAD = {
    "anna/missing.wav": "missing_audio",
    "anna/garbage.wav": "unreadable_audio",
    "anna/untranscribed.wav": "empty_transcript",
    "anna/short.wav": "too_short",
    "anna/long.wav": "too_long",
    "anna/clipped.wav": "clipped",
    "anna/silent.wav": "silent",
    "../outside.wav": "outside_root",
}


def tone(rng: np.random.Generator, f0: float, weights: list[float], seconds: float) -> np.ndarray:
    """A harmonic tone of pitch ``f0`` (±2 %) and timbre ``weights``, with a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + rng.uniform(-0.02, 0.02))
    x = sum(w * np.sin(2 * np.pi * (k + 1) * f * t) for k, w in enumerate(weights))
    x = 0.3 * x / np.max(np.abs(x)) + 0.003 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def build_corpus(root: Path) -> tuple[Path, dict[str, str]]:
    """An audio list with good clips of 4 speakers and one bad row of each kind.

    :return: the list's path, and transcript by path as written.
    """
    rng = np.random.default_rng(7)
    lines, texts = [], {}
    for speaker, (f0, weights, n) in SPEAKERS.items():
        (root / speaker).mkdir(parents=True)
        for i in range(n):
            rel = f"{speaker}/{i:03d}.wav"  # 000.wav in every folder: shared base names
            sf.write(root / rel, tone(rng, f0, weights, rng.uniform(1.5, 5.0)), SR)
            texts[rel] = f"{speaker.title()} reads sentence number {i}."
            lines.append(f"{rel}\t{texts[rel]}")
    # a transcript holding "|" (split on the first separator only), in both separators' lines
    texts["anna/000.wav"] = "Either this | or that."
    lines[0] = f"anna/000.wav|{texts['anna/000.wav']}"
    texts["anna/001.wav"] = "Pipes | inside | a tab line."
    lines[1] = f"anna/001.wav\t{texts['anna/001.wav']}"
    f0, weights, _ = SPEAKERS["anna"]
    sf.write(root / "anna/untranscribed.wav", tone(rng, f0, weights, 2.0), SR)
    sf.write(root / "anna/short.wav", tone(rng, f0, weights, 0.5), SR)
    sf.write(root / "anna/long.wav", tone(rng, f0, weights, 21.0), SR)
    sf.write(root / "anna/clipped.wav", np.clip(5 * tone(rng, f0, weights, 2.0), -1, 1), SR)
    sf.write(root / "anna/silent.wav", np.zeros(2 * SR, dtype=np.float32), SR)
    (root / "anna/garbage.wav").write_bytes(b"RIFF\x00\x01garbage, not audio" * 20)
    sf.write(root.parent / "outside.wav", tone(rng, f0, weights, 2.0), SR)
    for rel in BAD:
        lines.append(f"{rel}\t" if rel == "anna/untranscribed.wav" else f"{rel}\tSome words.")
    body = "\n\n".join(lines[:3]) + "\n" + "\n".join(lines[3:]) + "\n"  # blank lines too
    body = body.replace(lines[4] + "\n", lines[4] + "\r\n")  # one CRLF line
    path = root / "list.tsv"
    path.write_bytes(body.encode("utf-8"))
    return path, texts


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    return build_corpus(tmp_path_factory.mktemp("speakers") / "corpus")


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "set"
    prepare_speaker_set(corpus[0], out, speaker_from_folder=True, embedder="dummy")
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def expected_sizes(n: int, ratio: float = 0.1) -> tuple[int, int]:
    valid = 0 if n < 2 else min(n - 1, max(1, int(n * ratio + 0.5)))
    return n - valid, valid


def test_split_sizes_are_never_empty_on_the_train_side() -> None:
    assert [num_valid(n, 0.1) for n in (0, 1, 2, 3, 9, 15, 270)] == [0, 0, 1, 1, 1, 2, 27]
    assert num_valid(4, 0.9) == 3  # capped at n - 1
    train, valid = split_indices(9, valid_ratio=0.1, seed=0, speaker="x")
    assert len(valid) == 1 and sorted(train + valid) == list(range(9))
    assert split_indices(1, valid_ratio=0.5, seed=0, speaker="x") == ([0], [])


def pair(vectors: np.ndarray, a: int, b: int, metric: str) -> float:
    """One distance, the slow way (what index-tts-lora's loop computes)."""
    if metric == "euclidean":
        return float(np.linalg.norm(vectors[a] - vectors[b]))
    u, v = vectors[a], vectors[b]
    return 1 - float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_medoid_matches_the_quadratic_loop() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((9, 5)).astype(np.float32)
    for metric in ("cosine", "euclidean"):
        d = distance_matrix(vectors, metric)
        assert d.shape == (9, 9) and np.allclose(np.diag(d), 0) and np.allclose(d, d.T, atol=1e-6)
        totals = [sum(pair(vectors, i, j, metric) for j in range(9) if j != i) for i in range(9)]
        index, total = medoid(d)
        assert index == int(np.argmin(totals)) and total == pytest.approx(min(totals), rel=1e-4)


def test_audio_list_parsing(corpus) -> None:
    path, texts = corpus
    clips = [c for c in read_audio_list(path, speaker_from_folder=True) if hasattr(c, "path")]
    by_path = {c.raw_path: c for c in clips}
    assert by_path["anna/000.wav"].text == "Either this | or that."
    assert by_path["anna/001.wav"].text == "Pipes | inside | a tab line."
    assert by_path["anna/003.wav"].text == texts["anna/003.wav"]  # the CRLF line
    assert by_path["bert/000.wav"].speaker == "bert"
    assert by_path["anna/000.wav"].clip_id != by_path["bert/000.wav"].clip_id
    third = path.parent / "third.tsv"
    third.write_text("anna/002.wav\tHello.\tzoe\nbert/001.wav\tHi.\n")
    items = list(read_audio_list(third))
    assert items[0].speaker == "zoe" and reason_code(items[1].reason) == "no_speaker"
    assert read_audio_list(third, speaker="x").__next__().speaker == "x"
    odd = path.parent / "odd.tsv"
    odd.write_bytes(b"anna/002.wav\tHello.\nanna/\xff.wav\tBad bytes.\n./anna/002.wav\tAgain.\n")
    items = list(read_audio_list(odd, speaker="x"))
    assert [getattr(i, "reason", "kept").split(":")[0] for i in items] == [
        "kept",
        "invalid_utf8",
        "duplicate_audio",
    ]
    plain = path.parent / "plain.tsv"
    plain.write_text("\n" + "anna/002.wav\tHello.\n")
    with pytest.raises(ValueError, match=r"plain.tsv, line 2: no speaker; give --speaker"):
        list(read_audio_list(plain))


def test_speaker_set_files(corpus, prepared) -> None:
    _, texts = corpus
    info = json.loads((prepared / "speaker_info.json").read_text())
    assert [e["speaker"] for e in info] == list(SPEAKERS)
    for entry in info:
        speaker = entry["speaker"]
        assert tuple(entry) == SPEAKER_INFO_FIELDS
        train, valid = (
            read_jsonl(Path(entry["train_jsonl"])),
            read_jsonl(Path(entry["valid_jsonl"])),
        )
        n = SPEAKERS[speaker][2]
        assert (len(train), len(valid)) == expected_sizes(n)
        assert entry["sample_num"] == n
        clips = train + valid
        assert {Path(c["audio"]).parent.name for c in clips} == {speaker}
        assert len({c["audio"] for c in clips}) == n  # none lost, none twice
        durations = [sf.info(c["audio"]).duration for c in clips]
        assert [c["duration"] for c in clips] == [round(d, 4) for d in durations]
        for c in clips:
            rel = f"{speaker}/{Path(c['audio']).name}"
            assert c["text"] == texts[rel] and Path(c["audio"]).is_absolute()
        total = sum(durations)
        assert entry["total_duration_in_seconds"] == pytest.approx(total, abs=1e-3)
        assert entry["total_duration_in_minutes"] == pytest.approx(total / 60, abs=1e-3)
        assert entry["total_duration_in_hours"] == pytest.approx(total / 3600, abs=1e-3)
        assert entry["avg_duration"] == pytest.approx(total / n, abs=1e-3)
        folder = Path(entry["train_jsonl"]).parent
        assert folder == prepared / speaker
        distances = np.load(folder / "distance_matrix.npy")
        assert distances.shape == (n, n)
        condition = np.load(entry["medoid_condition"])
        info_m = json.loads((folder / "medoid_info.json").read_text())
        # the medoid is one of its own speaker's clips, the one of least total distance
        assert info_m["audio"] == clips[info_m["index"]]["audio"]
        assert info_m["text"] == clips[info_m["index"]]["text"]
        assert info_m["index"] == int(np.argmin(distances.sum(axis=1)))
        audio, rate = sf.read(info_m["audio"], dtype="float32")
        embedder = build("speaker", "dummy")
        assert np.allclose(condition, embedder.embed([audio])[0], atol=1e-5) and rate == SR


def test_exclusions_are_reported_per_clip(prepared) -> None:
    failed = read_jsonl(prepared / "speakers_failed_all.jsonl")
    assert {f["audio"]: reason_code(f["reason"]) for f in failed} == BAD
    assert all(f["stage"] == "prepare" and f["line"] > 0 for f in failed)
    kept = CutSet.from_file(prepared / "speakers_cuts_all.jsonl.gz")
    assert len(kept) == sum(n for *_, n in SPEAKERS.values())
    assert not {Path(c.recording.sources[0].source).name for c in kept} & {
        Path(p).name for p in BAD
    }


def test_lhotse_manifests_and_catalog(corpus, prepared) -> None:
    from lhotse_triplets.voices import VoiceCatalog

    for split in ("train", "valid"):
        recordings = RecordingSet.from_file(prepared / f"speakers_recordings_{split}.jsonl.gz")
        sups = SupervisionSet.from_file(prepared / f"speakers_supervisions_{split}.jsonl.gz")
        assert sorted(r.id for r in recordings) == sorted(s.recording_id for s in sups)
        assert all(s.speaker in SPEAKERS and s.text and s.language == "en" for s in sups)
    catalog = VoiceCatalog.from_yaml(prepared / "voices.yaml")
    assert sorted(catalog.references) == sorted(SPEAKERS)
    for name, voice in catalog.references.items():
        medoid_info = json.loads((prepared / name / "medoid_info.json").read_text())
        assert voice.is_reference and voice.language == "en"
        assert voice.text == medoid_info["text"]
        assert Path(voice.audio).read_bytes() == Path(medoid_info["audio"]).read_bytes()
    result = CliRunner().invoke(
        cli, ["voices", "-c", str(prepared / "voices.yaml"), "-e", "fishspeech"]
    )
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in SPEAKERS)
    assert f"{len(SPEAKERS)} cloning references" in result.output


def test_rerun_rewrites_and_the_seed_decides_the_split(corpus, tmp_path) -> None:
    path, _ = corpus
    out = tmp_path / "set"

    def valid_sets(seed: int) -> dict[str, list[str]]:
        prepare_speaker_set(
            path, out, speaker_from_folder=True, embedder="dummy", seed=seed, valid_ratio=0.5
        )
        info = json.loads((out / "speaker_info.json").read_text())
        assert len(info) == len(SPEAKERS)  # rewritten, never appended
        return {
            e["speaker"]: [c["audio"] for c in read_jsonl(Path(e["valid_jsonl"]))] for e in info
        }

    first = valid_sets(0)
    assert valid_sets(0) == first
    assert valid_sets(1) != first
    assert [len(first[s]) for s in SPEAKERS] == [6, 3, 2, 0]  # round half up, capped at n - 1


def test_duplicate_base_names_stay_apart_with_indextts(corpus, tmp_path, monkeypatch) -> None:
    """One speaker, clips named 000.wav in four folders; the (stand-in) IndexTTS extractor's
    per-clip files never overwrite each other, and the medoid's conditioning is its own."""

    class FakeExtractor:
        def __init__(self, checkpoints: Path, device: str = "cpu") -> None:
            self.checkpoints = checkpoints

        def condition_of(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
            return np.array([audio.size, sampling_rate, float(np.abs(audio).sum())], np.float32)

        def extract(self, audio, sampling_rate, out_dir: Path, stem: str) -> dict[str, str]:
            out_dir.mkdir(parents=True, exist_ok=True)
            out = {}
            for key in ("codes", "mels", "condition"):
                out[key] = str(out_dir / f"{stem}_{key}.npy")
                np.save(out[key], self.condition_of(audio, sampling_rate))
            return out

    module = types.ModuleType("lhotse_triplets.recipes.speakers.indextts")
    module.IndexTTSExtractor = FakeExtractor
    monkeypatch.setitem(sys.modules, module.__name__, module)
    path, _ = corpus
    names = [f"{s}/000.wav" for s in SPEAKERS]
    listing = path.parent / "same_names.tsv"
    listing.write_text("".join(f"{n}\tClip {i}.\n" for i, n in enumerate(names)))
    (tmp_path / "ckpt").mkdir()
    out = tmp_path / "solo"
    cuts = prepare_speaker_set(
        listing, out, speaker="solo", embedder="dummy", indextts_checkpoints=tmp_path / "ckpt"
    )
    assert len({c.id for c in cuts}) == 4
    clips = read_jsonl(out / "solo/metadata_train.jsonl") + read_jsonl(
        out / "solo/metadata_valid.jsonl"
    )
    assert sorted(c["audio"] for c in clips) == sorted(str(path.parent / n) for n in names)
    for key in ("codes", "mels", "condition"):
        files = {c[key] for c in clips}
        assert len(files) == 4 and all(Path(f).is_file() for f in files)
        values = {np.load(f).tobytes() for f in files}
        assert len(values) == 4  # each file holds its own clip's values
    medoid_info = json.loads((out / "solo/medoid_info.json").read_text())
    audio, rate = sf.read(medoid_info["audio"], dtype="float32")
    expected = FakeExtractor(tmp_path).condition_of(audio, rate)
    assert np.allclose(np.load(out / "solo/medoid_condition.npy"), expected)


def test_asr_checks_and_fills_transcripts(tmp_path) -> None:
    tts = DummyTTS()
    said = ["the speaker set check one two", "another clip of the same voice", "a third clip"]
    listed = [said[0], "completely different words", ""]
    for i, text in enumerate(said):
        sf.write(tmp_path / f"{i}.wav", tts.synthesize([text], language="en", voice="v0")[0], SR)
    listing = tmp_path / "list.tsv"
    listing.write_text("".join(f"{i}.wav\t{t}\n" for i, t in enumerate(listed)))
    kwargs = dict(speaker="tts", embedder="dummy", asr="dummy", min_duration=0.3)
    cuts = prepare_speaker_set(listing, tmp_path / "out", transcribe=True, **kwargs)
    assert sorted(c.supervisions[0].text for c in cuts) == sorted([said[0], said[2]])
    failed = read_jsonl(tmp_path / "out/speakers_failed_all.jsonl")
    assert [(f["audio"], reason_code(f["reason"])) for f in failed] == [
        ("1.wav", "transcript_mismatch")
    ]
    cuts = prepare_speaker_set(listing, None, **kwargs)  # without --transcribe: excluded
    assert [c.supervisions[0].text for c in cuts] == [said[0]]
    with pytest.raises(ValueError, match="--transcribe needs an ASR backend"):
        prepare_speaker_set(listing, None, speaker="tts", embedder="dummy", transcribe=True)


def test_a_clip_the_encoder_fails_on_is_excluded(corpus, tmp_path, monkeypatch) -> None:
    """The batch fails, each clip is retried alone; only the culprit is excluded."""
    from lhotse_triplets.testing.backends import DummySpeaker

    embed = DummySpeaker.embed

    def picky(self, audios):
        if any(a.size > 4 * SR for a in audios):
            raise RuntimeError("clip too long for this encoder")
        return embed(self, audios)

    monkeypatch.setattr(DummySpeaker, "embed", picky)
    path, _ = corpus
    listing = path.parent / "bert.tsv"
    listing.write_text("".join(f"bert/{i:03d}.wav\tClip {i}.\n" for i in range(5)))
    long = [
        f"bert/{i:03d}.wav"
        for i in range(5)
        if sf.info(path.parent / f"bert/{i:03d}.wav").duration > 4
    ]
    assert long  # the fixture has one
    out = tmp_path / "out"
    cuts = prepare_speaker_set(
        listing, out, speaker="bert", embedder="dummy", embedder_options=["bands=16"]
    )
    assert len(cuts) == 5 - len(long)
    failed = read_jsonl(out / "speakers_failed_all.jsonl")
    assert [(f["audio"], reason_code(f["reason"])) for f in failed] == [
        (p, "embedding_failed") for p in long
    ]
    assert "clip too long for this encoder" in failed[0]["reason"]
    assert np.load(out / "bert/medoid_condition.npy").shape == (16,)


def test_cli(corpus, tmp_path) -> None:
    path, _ = corpus
    out = tmp_path / "cli"
    runner = CliRunner()
    args = ["prepare", "speakers", str(path), str(out), "--embedder", "dummy"]
    result = runner.invoke(cli, [*args, "--speaker-from-folder", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert f"Prepared {sum(n for *_, n in SPEAKERS.values())} cuts" in result.output
    assert f"{len(BAD)} failed" in result.output
    assert len(json.loads((out / "speaker_info.json").read_text())) == len(SPEAKERS)
    assert get_recipe("speakers") is prepare_speaker_set
    result = runner.invoke(cli, [*args, "--speaker", "x", "--speaker-from-folder"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: give either --speaker NAME or --speaker-from-folder, not both"
    )
    result = runner.invoke(cli, [*args, "--valid-ratio", "1.5"])
    assert result.exit_code == 1 and "--valid-ratio must lie between 0 and 1" in result.output
    assert runner.invoke(cli, ["prepare", "speakers", "--help"]).exit_code == 0


def test_cli_encoder_options_distance_and_indextts(corpus, tmp_path) -> None:
    """The options the README shows: encoder options, the distance, IndexTTS checkpoints."""
    path, _ = corpus
    runner = CliRunner()
    args = ["prepare", "speakers", str(path)]
    out = tmp_path / "options"
    result = runner.invoke(
        cli,
        [*args, str(out), "--speaker-from-folder", "--embedder", "dummy"]
        + ["--embedder-options", "bands=16", "--distance", "euclidean"],
    )
    assert result.exit_code == 0, result.output
    for entry in json.loads((out / "speaker_info.json").read_text()):
        assert np.load(entry["medoid_condition"]).shape == (16,)  # the option reached the encoder
    result = runner.invoke(
        cli,
        [*args, str(tmp_path / "bad"), "--speaker-from-folder", "--embedder", "dummy"]
        + ["--embedder-options", "colour=red"],
    )
    assert result.exit_code == 1
    [line] = [x for x in result.output.splitlines() if x.startswith("Error")]
    assert "colour" in line and "bands" in line
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    result = runner.invoke(
        cli,
        [*args, str(tmp_path / "itts"), "--speaker-from-folder", "--embedder", "dummy"]
        + ["--indextts-checkpoints", str(checkpoints)],
    )
    assert result.exit_code == 1
    [line] = [x for x in result.output.splitlines() if x.startswith("Error")]
    assert "index-tts" in line and "pip install" in line


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_reference_audio_never_reaches_the_export(prepared, tmp_path) -> None:
    """Synthesize with the set's catalog as cloning references and export Shar: no byte, path
    or transcript of a reference clip inside."""
    from lhotse_triplets.export import export_shar
    from lhotse_triplets.testing.cuts import prompt_cut
    from lhotse_triplets.testing.speech_server import SpeechServer
    from lhotse_triplets.transforms.synthesize import Synthesize
    from lhotse_triplets.voices import VoiceCatalog

    catalog_path = prepared / "voices.yaml"
    references = VoiceCatalog.from_yaml(catalog_path).references
    needles = []
    for voice in references.values():
        original = json.loads((prepared / voice.name / "medoid_info.json").read_text())["audio"]
        data = Path(voice.audio).read_bytes()
        samples = sf.read(voice.audio, dtype="int16")[0].tobytes()
        needles += [data[44:4000], samples[1000:3000], voice.audio.encode(), original.encode()]
        needles += [voice.text.encode(), b"medoid.wav"]
    cuts = CutSet.from_cuts(
        prompt_cut(f"c{i}", f"How many cubes are there in picture {i}?", f"{i} cubes.")
        for i in range(3)
    )
    with SpeechServer("espeak") as server:
        spec = BackendSpec(
            "tts",
            "fishspeech",
            {"base_url": server.url, "references": str(catalog_path), "sampling_rate": 22050},
        )
        spoken = list(Synthesize({"en": spec}, audio_dir=tmp_path / "audio").apply(cuts))
        assert server.requests["/v1/tts"] == 3
    assert Counter(c.supervisions[0].speaker in references for c in spoken) == {True: 3}
    out = tmp_path / "export" / "shar"
    export_shar(CutSet.from_cuts(spoken), out, shard_size=2)
    assert any(p.is_file() for p in out.rglob("*"))
    for path, blob in file_blobs(out):
        for needle in needles:
            assert needle not in blob, f"reference data found in {path}"
