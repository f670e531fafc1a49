"""A whole run with an API key and a cloning reference: neither appears in any file the run
writes (config, state, logs, shards, every export format), searched byte by byte, inside
compressed files, tar members and parquet values too.

The TTS is the real FishSpeech client against the local speech server (started here on
127.0.0.1, requiring the key), cloning from a reference listed in a voice catalog.
"""

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
import yaml

from lhotse_triplets.config import load_config
from lhotse_triplets.pipeline import run_pipeline
from lhotse_triplets.testing.speech_server import SpeechServer

SECRET = "sk-LEAK-CANARY-7f3a9c"
TRANSCRIPT = "Canary transcript of the private reference clip."


def _catalog(tmp_path: Path) -> tuple[Path, Path, bytes]:
    refs = tmp_path / "private-voices"
    refs.mkdir()
    rng = np.random.default_rng(7)
    audio = (0.2 * rng.standard_normal(24000)).astype(np.float32)
    sf.write(refs / "anna-private.wav", audio, 16000, subtype="PCM_16")
    catalog = refs / "voices.yaml"
    entry = {"audio": "anna-private.wav", "text": TRANSCRIPT, "language": "en"}
    catalog.write_text(yaml.safe_dump({"references": {"anna": entry}}))
    samples = sf.read(refs / "anna-private.wav", dtype="int16")[0].tobytes()
    return refs, catalog, samples[2000:4000]


def _blobs(path: Path) -> list[tuple[str, bytes]]:
    """The bytes of ``path`` and of what it holds (gunzipped, tar members, parquet values)."""
    data = path.read_bytes()
    out = [(str(path), data)]
    if path.name.endswith(".gz"):
        out.append((f"{path} (gunzipped)", gzip.decompress(data)))
    if path.name.endswith(".tar"):
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    out.append((f"{path}:{member.name}", tar.extractfile(member).read()))
    if path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
        out.append((f"{path} (rows)", repr(rows).encode()))
    return out


def test_no_secret_nor_reference_in_any_file_of_a_run(tmp_path):
    refs, catalog, ref_samples = _catalog(tmp_path)
    with SpeechServer("dummy", api_key=SECRET) as server:
        tts = {
            "name": "fishspeech",
            "options": {
                "base_url": server.url,
                "api_key": SECRET,
                "references": str(catalog),
                "sampling_rate": 16000,
                "languages": ["en"],
            },
        }
        config = {
            "languages": ["en"],
            "prepare": {"recipe": "sample", "options": {"num_conversations": 3}},
            "rephrase": {"embed": None},
            "synthesize": {"tts": {"default": tts}, "voices": {"en": ["anna"]}},
            "score": {"asr": {"name": "dummy"}, "embed": {"name": "dummy"}, "mos": None},
            "gate": {"min_similarity": 0.5, "max_error_rate": 0.5, "min_mos": None},
            "export": {
                "formats": ["shar", "nemo", "triplets", "triplet_files", "hf", "report"],
            },
            "shard_size": 2,
        }
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(config))
        out = tmp_path / "run"
        summary = run_pipeline(load_config(path), out, progress=False)
        assert server.requests["/v1/tts"] > 0  # the key and the reference were really used
        assert all(r["references"][0]["text"] == TRANSCRIPT for r in server.received)
    assert summary.kept > 0 and not summary.failed
    needles = {
        "api key": SECRET.encode(),
        "reference transcript": TRANSCRIPT.encode(),
        "reference folder": str(refs).encode(),
        "reference file name": b"anna-private.wav",
        "reference samples": ref_samples,
    }
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20 and any(p.suffix == ".parquet" for p in files)
    assert any(p.name.endswith(".tar") for p in files)
    for path in files:
        for where, blob in _blobs(path):
            for what, needle in needles.items():
                assert needle not in blob, f"{what} found in {where}"
    # The record still says what was used, without showing it.
    saved = yaml.safe_load((out / "config.yaml").read_text())
    options = saved["synthesize"]["tts"]["default"]["options"]
    assert options["api_key"] == "<redacted>"
    assert options["references"].startswith("<reference sha1:")
