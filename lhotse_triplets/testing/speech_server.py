"""A local speech server: OpenAI ``/v1/audio/speech`` and FishSpeech ``/v1/tts`` over any backend.

It serves a registered offline TTS backend (espeak-ng by default, Kokoro, Piper, ...) through
the two HTTP APIs that many TTS servers speak, so that the HTTP clients
(``openai_speech``, ``fishspeech``) are tested against a real server, and so that a user can put
an offline engine behind an OpenAI-compatible URL::

    python -m lhotse_triplets.testing.speech_server --backend espeak --port 8000

Endpoints (stdlib ``ThreadingHTTPServer``, one thread per request):

- ``GET /v1/models``: ``{"object": "list", "data": [{"id": <model>, ...}]}``.
- ``POST /v1/audio/speech``: OpenAI's request (``model``, ``input``, ``voice``,
  ``response_format`` wav/flac/pcm, ``speed``) plus an optional ``language`` (ISO 639-1,
  default ``--language``). ``pcm`` is 16-bit little-endian mono at the backend's rate.
- ``POST /v1/tts``: FishSpeech's ``ServeTTSRequest`` as JSON or msgpack (``text``,
  ``references: [{audio, text}]``, ``reference_id``, ``format``, ...). An offline backend cannot
  clone, so a reference picks one of the backend's voices deterministically (from a hash of the
  reference audio); ``reference_id`` names a backend voice.

Errors are JSON: ``{"error": {"message", "type"}}`` (OpenAI style) with 400 for a bad request,
404 for an unknown model or voice, 500 when synthesis fails. For tests,
:meth:`SpeechServer.fail_next` makes the next requests fail with a status, ``delay`` slows
every request down, and the server counts requests, statuses and the most requests it had in
flight at once.
"""

import argparse
import base64
import hashlib
import io
import json
import threading
import time
from collections import Counter

import numpy as np

from lhotse_triplets.backends.registry import build
from lhotse_triplets.testing.http import Handler, HTTPError, LocalServer, Reply, json_reply

#: Formats this server writes (mp3/opus would need an encoder not installed here).
FORMATS = ("wav", "flac", "pcm")


def encode_audio(audio: np.ndarray, sampling_rate: int, response_format: str) -> bytes:
    """``audio`` as WAV/FLAC bytes (16-bit) or raw 16-bit little-endian PCM."""
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    if response_format == "pcm":
        return (audio * 32767.0).astype("<i2").tobytes()
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, sampling_rate, format=response_format.upper(), subtype="PCM_16")
    return buf.getvalue()


class SpeechServer(LocalServer):
    """An HTTP speech server on ``host:port`` (port 0: any free port) over one TTS backend.

    :param backend: registered TTS backend name (``espeak``, ``kokoro``, ``piper``, ...).
    :param options: the backend's options.
    :param model: the model id served (``/v1/models``); requests naming another get 404.
    :param language: language used when a request names none.
    :param api_key: when set, requests must send ``Authorization: Bearer <api_key>``.

    Example::

        with SpeechServer("espeak") as server:
            print(server.base_url)  # http://127.0.0.1:PORT/v1
    """

    def __init__(
        self,
        backend: str = "espeak",
        options: dict | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str | None = None,
        language: str = "en",
        api_key: str | None = None,
    ) -> None:
        super().__init__(_SpeechHandler, host, port, api_key)
        self.backend_name = backend
        self.tts = build("tts", backend, **dict(options or {}))
        self.model = model or f"local-{backend}"
        self.language = language
        self.delay = 0.0
        self.requests: Counter = Counter()  # path -> count
        self.received: list[dict] = []  # request bodies (references as sha256), newest last
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: list[int] = []
        self._synth_lock = threading.Lock()

    # -- control ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ``http://host:port/v1``."""
        return f"{self.url}/v1"

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` speech requests with ``status`` (to test retries)."""
        with self._lock:
            self._faults.extend([status] * n)

    # -- synthesis --------------------------------------------------------------------------
    def _voices(self, language: str) -> list[str]:
        try:
            return self.tts.voices(language)
        except Exception as e:
            raise HTTPError(400, f"language {language!r} is not spoken here: {e}") from e

    def _speak(self, text: str, language: str, voice: str) -> np.ndarray:
        voices = self._voices(language)
        if voice not in voices:
            raise HTTPError(
                404,
                f"voice {voice!r} not found for language {language!r}; voices: {', '.join(voices)}",
                "not_found_error",
            )
        if not isinstance(text, str) or not text.strip():
            raise HTTPError(400, "input is empty")
        try:
            with self._synth_lock:
                [audio] = self.tts.synthesize([text], language=language, voice=voice)
        except Exception as e:
            raise HTTPError(500, f"synthesis failed: {e}", "server_error") from e
        return audio

    def openai_speech(self, body: dict) -> tuple[bytes, str]:
        """Answer a ``/v1/audio/speech`` request: (audio bytes, content type)."""
        if body.get("model") != self.model:
            raise HTTPError(
                404, f"model {body.get('model')!r} not found; served: {self.model}", "not_found"
            )
        fmt = body.get("response_format", "wav")
        if fmt not in FORMATS:
            raise HTTPError(400, f"response_format {fmt!r} not supported; use {FORMATS}")
        language = body.get("language") or self.language
        audio = self._speak(body.get("input"), language, str(body.get("voice")))
        speed = float(body.get("speed") or 1.0)
        rate = self.tts.sampling_rate
        if not 0.25 <= speed <= 4.0:
            raise HTTPError(400, f"speed must be within 0.25..4.0, got {speed}")
        if speed != 1.0:  # naive time scaling by resampling: enough for a test server
            from lhotse_triplets.audio import resample

            audio = resample(audio, int(rate * speed), rate)
        return encode_audio(audio, rate, fmt), f"audio/{fmt}"

    def fish_tts(self, body: dict) -> tuple[bytes, str]:
        """Answer a FishSpeech ``/v1/tts`` request."""
        fmt = body.get("format", "wav")
        if fmt not in FORMATS:
            raise HTTPError(400, f"format {fmt!r} not supported; use {FORMATS}")
        language = body.get("language") or self.language
        voices = self._voices(language)
        references = body.get("references") or []
        if references:
            ref = references[0]
            audio = ref.get("audio")
            if isinstance(audio, str):
                audio = base64.b64decode(audio)
            if not audio or not ref.get("text"):
                raise HTTPError(400, "each reference needs audio bytes and its text")
            digest = int(hashlib.sha256(audio).hexdigest(), 16)
            voice = voices[digest % len(voices)]
        elif body.get("reference_id"):
            voice = str(body["reference_id"])
        else:
            voice = voices[0]
        audio = self._speak(body.get("text"), language, voice)
        return encode_audio(audio, self.tts.sampling_rate, fmt), f"audio/{fmt}"

    # -- HTTP -------------------------------------------------------------------------------
    def _record(self, path: str, body: dict) -> None:
        kept = dict(body)
        if kept.get("references"):
            kept["references"] = [
                {
                    "text": r.get("text"),
                    "sha256": hashlib.sha256(
                        r["audio"]
                        if isinstance(r.get("audio"), bytes)
                        else base64.b64decode(r.get("audio") or "")
                    ).hexdigest(),
                }
                for r in body["references"]
            ]
        with self._lock:
            self.requests[path] += 1
            self.received.append({"path": path, **kept})

    def speak_request(self, path: str, raw: bytes, content_type: str) -> Reply:
        """Answer a POST to one of the speech routes (faults and delay applied)."""
        if path not in ("/v1/audio/speech", "/v1/tts"):
            raise HTTPError(404, f"no route {path}", "not_found")
        body = _decode_body(raw, content_type)
        self._record(path, body)
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            raise HTTPError(fault, "injected failure", "server_error")
        speak = self.openai_speech if path == "/v1/audio/speech" else self.fish_tts
        data, media_type = speak(body)
        return 200, data, media_type, {}


def _decode_body(raw: bytes, content_type: str) -> dict:
    try:
        if "msgpack" in content_type:
            import msgpack

            body = msgpack.unpackb(raw, raw=False)
        else:
            body = json.loads(raw or b"{}")
    except Exception as e:
        raise HTTPError(400, f"cannot decode the request body: {e}") from e
    if not isinstance(body, dict):
        raise HTTPError(400, "the request body must be an object")
    return body


class _SpeechHandler(Handler):
    def get(self, path: str) -> Reply:
        server = self.owner
        if path != "/v1/models":
            return super().get(path)
        with server._lock:
            server.requests["/v1/models"] += 1
        return json_reply(
            {
                "object": "list",
                "data": [{"id": server.model, "object": "model", "owned_by": "local"}],
            }
        )

    def post(self, path: str, body: bytes) -> Reply:
        server = self.owner
        with server._lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            content_type = self.headers.get("Content-Type", "application/json")
            return server.speak_request(path, body, content_type)
        finally:
            with server._lock:
                server.in_flight -= 1


def main(argv: list[str] | None = None) -> None:
    """``python -m lhotse_triplets.testing.speech_server``: serve a backend until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="espeak", help="registered TTS backend")
    parser.add_argument("--option", action="append", default=[], help="KEY=VALUE (YAML value)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default=None, help="model id (default: local-<backend>)")
    parser.add_argument("--language", default="en", help="language when a request names none")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    args = parser.parse_args(argv)
    import yaml

    options = {}
    for pair in args.option:
        key, _, value = pair.partition("=")
        options[key] = yaml.safe_load(value)
    server = SpeechServer(
        args.backend, options, args.host, args.port, args.model, args.language, args.api_key
    )
    print(f"Serving TTS {args.backend!r} as model {server.model!r} at {server.base_url}")
    print(f"  POST {server.base_url}/audio/speech   POST {server.base_url}/tts")
    server.serve_forever()


if __name__ == "__main__":
    main()
