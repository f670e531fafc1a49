"""FishSpeech / OpenAudio through its HTTP API (``python -m tools.api_server``).

Each text is one ``POST /v1/tts`` with a ``ServeTTSRequest`` body (msgpack, as FishSpeech's own
client sends it, or JSON with base64 audio): ``text``, ``references: [{audio, text}]`` for
zero-shot cloning, ``reference_id`` for a voice stored on the server, ``format`` and the sampling
settings. Voices are the cloning references of the catalog (their clip and transcript are sent
with every request) and ``reference_ids`` stored on the server; with neither, the voice
``default`` sends no reference (FishSpeech then picks a voice of its own). The model runs on the
server: no local thread limit applies (``engine.threads_per_worker``).
"""

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.tts._http import (
    decode_audio,
    http_client,
    map_bounded,
    post_with_retries,
)
from lhotse_triplets.backends.tts._text import checked_audio, speakable
from lhotse_triplets.backends.tts.references import ReferenceVoices
from lhotse_triplets.errors import ItemError

#: Languages FishSpeech / OpenAudio S1 is trained on (its README).
LANGUAGES = ("en", "zh", "ja", "ko", "fr", "de", "es", "ar", "ru", "nl", "it", "pl", "pt")

FORMATS = ("wav", "flac", "pcm")

#: The voice that sends no reference.
DEFAULT_VOICE = "default"


@register("tts", "fishspeech")
class FishSpeechTTS(ReferenceVoices, PicklesByOptions):
    """FishSpeech's ``/v1/tts`` HTTP API, with zero-shot cloning from references.

    :param base_url: the server root, e.g. ``http://127.0.0.1:8080``.
    :param references: cloning references, ``{name: {audio, text, language}}`` or a catalog
        YAML path (see :mod:`lhotse_triplets.voices`).
    :param reference_ids: voices stored on the server, a list or ``{language: [ids]}``.
    :param languages: ISO 639-1 codes offered.
    :param cross_lingual: offer every reference in every language.
    :param api_key: bearer token (``--api-key`` of the server), if any.
    :param format: ``wav``, ``flac`` or ``pcm`` (16-bit at ``sampling_rate``).
    :param sampling_rate: the rate audio is returned at (OpenAudio S1: 44.1 kHz).
    :param encoding: ``msgpack`` (FishSpeech's own) or ``json`` (audio as base64).
    :param request: more ``ServeTTSRequest`` fields (``temperature``, ``top_p``,
        ``chunk_length``, ``seed``, ``normalize``, ...), sent as they are.
    :param language_field: request field carrying the language (FishSpeech ignores it; the
        local test server reads it); ``None`` sends none.
    :param timeout: seconds to wait for one response.
    :param retries: further tries after a 5xx/429/timeout/refused connection.
    :param backoff: seconds before the first retry, doubled each time.
    :param concurrency: requests in flight at once within a batch.

    Example::

        tts = build("tts", "fishspeech", base_url="http://gpu01:8080",
                    references={"anna": {"audio": "anna.wav", "text": "Hello!", "language": "en"}})
        [audio] = tts.synthesize(["What is on the table?"], language="en", voice="anna")
    """

    engine = "fishspeech"
    requires: ClassVar[list[tuple[str, str]]] = [("httpx", "httpx")]

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        references: Mapping[str, Any] | str | Path | None = None,
        reference_ids: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        languages: Sequence[str] = LANGUAGES,
        cross_lingual: bool = False,
        api_key: str | None = None,
        format: str = "wav",
        sampling_rate: int = 44100,
        encoding: str = "msgpack",
        request: Mapping[str, Any] | None = None,
        language_field: str | None = "language",
        timeout: float = 120.0,
        retries: int = 2,
        backoff: float = 1.0,
        concurrency: int = 2,
    ) -> None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
        if encoding not in ("msgpack", "json"):
            raise ValueError(f"encoding must be 'msgpack' or 'json'; got {encoding!r}")
        self._options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        presets = reference_ids
        if not references and not reference_ids:
            presets = [DEFAULT_VOICE]
        self._init_voices(languages, presets, references, cross_lingual)
        self.url = base_url.rstrip("/") + "/v1/tts"
        self.api_key = api_key
        self.format = format
        self._sampling_rate = int(sampling_rate)
        self.encoding = encoding
        self.request = dict(request or {})
        self.language_field = language_field
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.concurrency = max(1, int(concurrency))
        self._client: Any = None
        self._audio_cache: dict[str, bytes] = {}

    @property
    def sampling_rate(self) -> int:
        return self._sampling_rate

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform at :attr:`sampling_rate` per text (concurrent requests)."""
        reference = self._voice(language, voice)
        body: dict[str, Any] = {"format": self.format, **self.request}
        if reference is not None:
            body["references"] = [
                {"audio": self._reference_audio(reference.audio), "text": reference.text}
            ]
        elif voice != DEFAULT_VOICE:
            body["reference_id"] = voice
        if self.language_field:
            body[self.language_field] = language
        texts = [speakable(t, "fishspeech") for t in texts]
        return map_bounded(partial(self._one, body=body), texts, self.concurrency)

    def _one(self, text: str, *, body: dict) -> np.ndarray:
        body = {**body, "text": text}
        if self.encoding == "msgpack":
            import msgpack

            request = {
                "content": msgpack.packb(body, use_bin_type=True),
                "headers": {"Content-Type": "application/msgpack"},
            }
        else:
            import base64

            if "references" in body:
                body["references"] = [
                    {**r, "audio": base64.b64encode(r["audio"]).decode("ascii")}
                    for r in body["references"]
                ]
            request = {"json": body}
        data = post_with_retries(
            self._http(),
            self.url,
            engine="fishspeech",
            text=text,
            retries=self.retries,
            backoff=self.backoff,
            **request,
        )
        audio = decode_audio(data, self.format, self._sampling_rate, engine="fishspeech", text=text)
        return checked_audio(audio, "fishspeech", text)

    def _reference_audio(self, path: str) -> bytes:
        if path not in self._audio_cache:
            try:
                self._audio_cache[path] = Path(path).read_bytes()
            except OSError as e:
                raise ItemError(f"TTS fishspeech cannot read reference audio {path}: {e}") from e
        return self._audio_cache[path]

    def _http(self) -> Any:
        if self._client is None:
            self._client = http_client(self.timeout, self.api_key, self.concurrency)
        return self._client
