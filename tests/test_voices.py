"""The voice catalog and cloning references; reference audio never reaches an export.

The cloning path that runs here is FishSpeech's HTTP API (``fishspeech`` backend) against the
local speech server on 127.0.0.1 (espeak-ng behind it): the reference clip and transcript travel
in each request, as with a real FishSpeech server.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner
from lhotse import CutSet

from lhotse_triplets.backends import BackendSpec, build
from lhotse_triplets.backends.tts.references import load_references
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.errors import ItemError
from lhotse_triplets.testing.cuts import prompt_cut
from lhotse_triplets.testing.files import file_blobs
from lhotse_triplets.testing.speech_server import SpeechServer
from lhotse_triplets.transforms.synthesize import Synthesize
from lhotse_triplets.voices import VoiceCatalog

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def write_reference(path: Path, seed: int = 0) -> Path:
    """A 1.5 s reference clip with a recognisable (seeded random) waveform."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.5 * 16000)) / 16000
    audio = 0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(path, audio.astype(np.float32), 16000, subtype="PCM_16")
    return path


@pytest.fixture()
def catalog_file(tmp_path: Path) -> Path:
    refs = tmp_path / "refs"
    refs.mkdir()
    write_reference(refs / "anna.wav", 1)
    write_reference(refs / "bernd.wav", 2)
    data = {
        "references": {
            "anna_en": {
                "audio": "refs/anna.wav",
                "text": "Hello, my name is Anna.",
                "language": "en",
            },
            "bernd_de": {"audio": "refs/bernd.wav", "text": "Guten Tag.", "language": "de"},
        },
        "engines": {"espeak": {"variants": ["m1", "f2"]}},
    }
    path = tmp_path / "voices.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_references_load_from_yaml_with_paths_relative_to_it(catalog_file: Path) -> None:
    refs = load_references(catalog_file)
    assert sorted(refs) == ["anna_en", "bernd_de"]
    anna = refs["anna_en"]
    assert anna.is_reference and anna.language == "en" and anna.text == "Hello, my name is Anna."
    assert anna.audio == str((catalog_file.parent / "refs" / "anna.wav").resolve())


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"audio": "missing.wav", "text": "Hi", "language": "en"}, "does not exist"),
        ({"audio": "refs/anna.wav", "text": " ", "language": "en"}, "transcript"),
        ({"audio": "refs/anna.wav", "text": "Hi", "language": "english"}, "ISO 639-1"),
        ({"audio": "refs/anna.wav", "text": "Hi", "language": "en", "speed": 2}, "speed"),
        ({"text": "Hi", "language": "en"}, "no audio"),
    ],
)
def test_bad_references_are_named(catalog_file: Path, spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=rf"'bad'.*{message}|{message}.*"):
        load_references({"bad": spec}, catalog_file.parent)


@needs_espeak
def test_catalog_lists_presets_and_references_per_engine(catalog_file: Path) -> None:
    catalog = VoiceCatalog.from_yaml(catalog_file)
    espeak = catalog.voices_for("espeak", "en")
    assert [(v.name, v.kind) for v in espeak] == [("m1", "preset"), ("f2", "preset")]
    fish = catalog.voices_for("fishspeech", "en")
    assert [(v.name, v.kind) for v in fish] == [("anna_en", "reference")]
    assert [v.name for v in catalog.voices_for("fishspeech", "de")] == ["bernd_de"]
    assert catalog.options_for("fishspeech")["references"]["anna_en"]["language"] == "en"
    assert "references" not in catalog.options_for("espeak")


def test_cloning_engine_offers_references_as_voices(catalog_file: Path) -> None:
    tts = build("tts", "fishspeech", references=str(catalog_file))
    assert tts.voices("en") == ["anna_en"] and tts.voices("de") == ["bernd_de"]
    cross = build("tts", "fishspeech", references=str(catalog_file), cross_lingual=True)
    assert cross.voices("ja") == ["anna_en", "bernd_de"]
    with pytest.raises(ValueError, match="carl"):
        tts.synthesize(["Hi"], language="en", voice="carl")
    with pytest.raises(ItemError, match="'xx'"):
        tts.voices("xx")


@needs_espeak
def test_reference_is_sent_to_the_server(catalog_file: Path) -> None:
    import hashlib

    refs = load_references(catalog_file)
    with SpeechServer("espeak") as server:
        for encoding in ("msgpack", "json"):
            tts = build(
                "tts",
                "fishspeech",
                base_url=server.url,
                references=str(catalog_file),
                sampling_rate=22050,
                encoding=encoding,
            )
            [audio] = tts.synthesize(
                ["What shape is the red object?"], language="en", voice="anna_en"
            )
            assert audio.dtype == np.float32 and audio.shape[0] / 22050 > 1.0
            [ref] = server.received[-1]["references"]
            assert ref["text"] == "Hello, my name is Anna."
            assert (
                ref["sha256"]
                == hashlib.sha256(Path(refs["anna_en"].audio).read_bytes()).hexdigest()
            )
            assert server.received[-1]["text"] == "What shape is the red object?"


@needs_espeak
def test_reference_audio_never_reaches_the_export(catalog_file: Path, tmp_path: Path) -> None:
    """Synthesize with a cloning reference, export Shar: no byte or path of the clip inside."""
    from lhotse_triplets.export import export_shar

    refs = load_references(catalog_file)
    ref_path = refs["anna_en"].audio
    ref_bytes = Path(ref_path).read_bytes()
    ref_samples = sf.read(ref_path, dtype="int16")[0].tobytes()
    cuts = CutSet.from_cuts(
        prompt_cut(f"c{i}", f"How many cubes are there in picture {i}?", f"{i} cubes.")
        for i in range(3)
    )
    with SpeechServer("espeak") as server:
        spec = BackendSpec(
            "tts",
            "fishspeech",
            {"base_url": server.url, "references": str(catalog_file), "sampling_rate": 22050},
        )
        synth = Synthesize({"en": spec}, audio_dir=tmp_path / "audio")
        spoken = list(synth.apply(cuts))
        assert server.requests["/v1/tts"] == 3
    assert [c.supervisions[0].speaker for c in spoken] == ["anna_en"] * 3
    out = tmp_path / "export" / "shar"
    export_shar(CutSet.from_cuts(spoken), out, shard_size=2)
    assert any(p.is_file() for p in out.rglob("*"))
    needles = [ref_bytes[44:4000], ref_samples[1000:3000], ref_path.encode(), b"anna.wav", b"refs/"]
    for path, blob in file_blobs(out):
        for needle in needles:
            assert needle not in blob, f"reference data found in {path}"
    # and the cuts only name the voice
    for cut in spoken:
        assert ref_path not in str(cut.to_dict())


@needs_espeak
def test_voices_command_lists_the_catalog(catalog_file: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["voices", "--catalog", str(catalog_file), "-e", "fishspeech"])
    assert result.exit_code == 0, result.output
    assert (
        "anna_en" in result.output and "bernd_de" in result.output and "reference" in result.output
    )
    result = runner.invoke(
        cli,
        ["voices", "--catalog", str(catalog_file), "-e", "espeak", "-e", "fishspeech", "-l", "en"],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("espeak" in line and " f2 " in f"{line} " for line in lines)
    assert "bernd_de" not in result.output
    assert "3 voices" in result.output
    assert runner.invoke(cli, ["voices", "--help"]).exit_code == 0
