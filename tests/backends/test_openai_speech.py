"""The HTTP TTS clients against a REAL local server (``lhotse_triplets.testing.speech_server``).

The server runs in this process on 127.0.0.1 and synthesizes with espeak-ng; nothing is mocked
on the client side: requests go over TCP, audio comes back encoded and is decoded.
"""

import json
import pickle
import shutil
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from lhotse_triplets.backends import build
from lhotse_triplets.backends.base import TTSBackend
from lhotse_triplets.errors import ItemError
from lhotse_triplets.testing.speech_server import SpeechServer

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

TEXT = "What color is the large metal cube behind the sphere?"


@pytest.fixture()
def server():
    with SpeechServer("espeak", model="local-espeak") as s:
        yield s


def client(server: SpeechServer, **options) -> TTSBackend:
    options = {
        "base_url": server.base_url,
        "model": server.model,
        "voices": ["m1", "f2", "m3"],
        "languages": ["en", "de"],
        "backoff": 0.01,
        **options,
    }
    return build("tts", "openai_speech", **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def speech_seconds(audio: np.ndarray, sampling_rate: int) -> float:
    """Seconds of the clip louder than 1% of its peak (a rough voiced duration)."""
    frames = audio[: len(audio) // 256 * 256].reshape(-1, 256)
    loud = np.abs(frames).max(axis=1) > 0.01 * np.abs(audio).max()
    return loud.sum() * 256 / sampling_rate


@pytest.mark.parametrize("response_format", ["wav", "flac", "pcm"])
def test_round_trip_is_the_servers_speech(server: SpeechServer, response_format: str) -> None:
    rate = server.tts.sampling_rate
    tts = client(server, response_format=response_format, sampling_rate=rate)
    assert isinstance(tts, TTSBackend)
    [audio] = tts.synthesize([TEXT], language="en", voice="f2")
    [local] = server.tts.synthesize([TEXT], language="en", voice="f2")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert tts.sampling_rate == rate
    # the same clip, through 16-bit encoding: same length, same samples within quantisation
    assert audio.shape == local.shape
    assert np.max(np.abs(audio - local)) < 2e-4
    assert 2.0 < speech_seconds(audio, rate) < 6.0
    [request] = server.received
    assert request["input"] == TEXT and request["voice"] == "f2"
    assert request["language"] == "en" and request["response_format"] == response_format


def test_audio_is_resampled_to_the_clients_rate(server: SpeechServer) -> None:
    tts = client(server, sampling_rate=16000)
    [audio] = tts.synthesize(["Hello there, how are you?"], language="en", voice="m1")
    [local] = server.tts.synthesize(["Hello there, how are you?"], language="en", voice="m1")
    assert abs(audio.shape[0] / 16000 - local.shape[0] / server.tts.sampling_rate) < 0.01


def test_language_and_speed_reach_the_server(server: SpeechServer) -> None:
    tts = client(server, speed=1.5, sampling_rate=server.tts.sampling_rate)
    [fast] = tts.synthesize(["Welche Farbe hat der große Würfel?"], language="de", voice="m3")
    assert server.received[-1]["language"] == "de" and server.received[-1]["speed"] == 1.5
    [normal] = server.tts.synthesize(
        ["Welche Farbe hat der große Würfel?"], language="de", voice="m3"
    )
    assert fast.shape[0] < normal.shape[0] / 1.3


def test_a_batch_runs_concurrently_but_bounded(server: SpeechServer) -> None:
    server.delay = 0.3
    tts = client(server, concurrency=3)
    texts = [f"Question number {n}: what is it?" for n in range(7)]
    start = time.perf_counter()
    audios = tts.synthesize(texts, language="en", voice="m1")
    elapsed = time.perf_counter() - start
    assert len(audios) == 7 and server.requests["/v1/audio/speech"] == 7
    assert server.max_in_flight == 3
    assert elapsed < 7 * 0.3  # serial would take at least 2.1 s
    # results come back in input order: longer numbers give longer clips for the same template
    assert [r["input"] for r in sorted(server.received, key=lambda r: r["input"])] == sorted(texts)


def test_5xx_is_retried_and_counted(server: SpeechServer) -> None:
    server.fail_next(2, status=503)
    [audio] = client(server, retries=3).synthesize([TEXT], language="en", voice="m1")
    assert audio.size > 0
    assert server.requests["/v1/audio/speech"] == 3
    assert server.statuses[503] == 2 and server.statuses[200] == 1


def test_5xx_after_the_last_retry_names_the_item(server: SpeechServer) -> None:
    server.fail_next(10, status=500)
    with pytest.raises(ItemError, match=r"What color is the large.*HTTP 500.*injected.*3 tries"):
        client(server, retries=2).synthesize([TEXT], language="en", voice="m1")
    assert server.requests["/v1/audio/speech"] == 3


def test_unknown_voice_on_the_server_is_a_4xx_without_retries(server: SpeechServer) -> None:
    tts = client(server, voices=["m1", "zz9"])
    with pytest.raises(ItemError, match=r"HTTP 404.*voice 'zz9' not found"):
        tts.synthesize([TEXT], language="en", voice="zz9")
    assert server.requests["/v1/audio/speech"] == 1


def test_unknown_model_names_the_model(server: SpeechServer) -> None:
    with pytest.raises(ItemError, match=r"HTTP 404.*model 'gpt-x' not found"):
        client(server, model="gpt-x").synthesize([TEXT], language="en", voice="m1")


def test_voice_unknown_to_the_client_fails_before_any_request(server: SpeechServer) -> None:
    with pytest.raises(ValueError, match="nobody"):
        client(server).synthesize([TEXT], language="en", voice="nobody")
    with pytest.raises(ItemError, match="'ja'"):
        client(server).voices("ja")
    assert server.requests["/v1/audio/speech"] == 0


def test_timeout_names_the_item(server: SpeechServer) -> None:
    server.delay = 1.0
    with pytest.raises(ItemError, match=r"What color.*timed out"):
        client(server, timeout=0.2, retries=1).synthesize([TEXT], language="en", voice="m1")


def test_server_down_names_the_item_and_the_url() -> None:
    port = free_port()
    tts = build(
        "tts",
        "openai_speech",
        base_url=f"http://127.0.0.1:{port}/v1",
        voices=["m1"],
        retries=1,
        backoff=0.01,
    )
    with pytest.raises(ItemError, match=rf"What color.*cannot reach http://127.0.0.1:{port}"):
        tts.synthesize([TEXT], language="en", voice="m1")


def test_api_key_from_the_environment_is_sent(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("LHOTSE_TRIPLETS_TTS_API_KEY", "sk-local")
    with SpeechServer("espeak", api_key="sk-local") as server:
        [audio] = client(server).synthesize(["Yes."], language="en", voice="m1")
        assert audio.size > 0
        monkeypatch.setenv("LHOTSE_TRIPLETS_TTS_API_KEY", "wrong")
        with pytest.raises(ItemError, match="HTTP 401"):
            client(server).synthesize(["Yes."], language="en", voice="m1")


def test_models_endpoint_lists_the_served_model(server: SpeechServer) -> None:
    data = httpx.get(f"{server.base_url}/models").json()
    assert [m["id"] for m in data["data"]] == ["local-espeak"]


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="mp3"):
        build("tts", "openai_speech", response_format="mp3")
    with pytest.raises(ValueError, match="concurrency"):
        build("tts", "openai_speech", concurrency=0)
    with pytest.raises(ValueError, match="A-Za-z0-9"):
        build("tts", "openai_speech", voices=["a b"])


def test_per_language_voices_and_pickling(server: SpeechServer) -> None:
    tts = client(server, voices={"en": ["m1"], "de": ["f2", "m3"]}, languages=None)
    assert tts.languages() == ["en", "de"] and tts.voices("de") == ["f2", "m3"]
    clone = pickle.loads(pickle.dumps(tts))
    assert clone.voices("de") == ["f2", "m3"]
    [audio] = clone.synthesize(["Ja."], language="de", voice="f2")
    assert audio.size > 0


def test_the_server_runs_as_a_command() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lhotse_triplets.testing.speech_server", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert models["data"][0]["id"] == "local-espeak"
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/audio/speech",
            json={"model": "local-espeak", "input": "Hi.", "voice": "m1"},
            timeout=30,
        )
        assert response.status_code == 200 and response.content[:4] == b"RIFF"
        bad = httpx.post(
            f"http://127.0.0.1:{port}/v1/audio/speech",
            content=b"not json",
            headers={"Content-Type": "application/json"},
        )
        assert bad.status_code == 400 and "decode" in json.loads(bad.content)["error"]["message"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
