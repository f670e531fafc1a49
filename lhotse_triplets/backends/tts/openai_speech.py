"""A client for any OpenAI-compatible ``POST /v1/audio/speech`` server.

OpenAI's own API speaks it, and so do many self-hosted TTS servers (Kokoro-FastAPI, vLLM-Omni,
openedai-speech, CosyVoice/Index-TTS/Chatterbox wrappers, and
``python -m lhotse_triplets.testing.speech_server``, which serves any offline backend here).
The request is ``{"model", "input", "voice", "response_format", "speed"}`` plus, when
``language_field`` is set, the prompt's language (self-hosted servers read it; OpenAI's API does
not know it: set ``language_field: null`` there). A batch is sent as concurrent requests,
at most ``concurrency`` at once; 5xx, 429, timeouts and refused connections are retried with
exponential backoff; other 4xx fail the item at once with the server's message. The model runs
on the server: no local thread limit applies (``engine.threads_per_worker``).
"""

import os
from collections.abc import Mapping, Sequence
from functools import partial
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
from lhotse_triplets.backends.tts._text import (
    check_voice,
    check_voice_ids,
    checked_audio,
    speakable,
    unsupported_language,
)

#: OpenAI's preset voices (``gpt-4o-mini-tts`` / ``tts-1``).
OPENAI_VOICES = ("alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer")

#: Languages offered when none are configured.
DEFAULT_LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "pl", "ru", "ja", "zh", "ko", "hi")

#: Environment variables read for the API key, in order.
API_KEY_ENV = ("LHOTSE_TRIPLETS_TTS_API_KEY", "OPENAI_API_KEY")

RESPONSE_FORMATS = ("wav", "flac", "pcm")


@register("tts", "openai_speech")
class OpenAISpeechTTS(PicklesByOptions):
    """TTS through an OpenAI-compatible ``/v1/audio/speech`` endpoint.

    :param base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` or
        ``https://api.openai.com/v1``.
    :param model: the model id sent with each request.
    :param voices: voice ids, a list for every language or ``{language: [voices]}``
        (default: OpenAI's presets).
    :param languages: ISO 639-1 codes offered (default: the keys of ``voices`` when it is a
        mapping, else a broad list).
    :param api_key: bearer token; default: ``$LHOTSE_TRIPLETS_TTS_API_KEY`` or
        ``$OPENAI_API_KEY`` (none sent when neither is set).
    :param response_format: ``wav``, ``flac`` or ``pcm`` (16-bit mono at ``sampling_rate``).
    :param sampling_rate: the rate of the returned audio (decoded audio is resampled to it).
    :param speed: speaking speed sent to the server (``None``: not sent).
    :param language_field: request field carrying the language (``None``: not sent).
    :param instructions: optional ``instructions`` (style prompt, ``gpt-4o-mini-tts``).
    :param extra_body: more request fields, sent as they are.
    :param timeout: seconds to wait for one response.
    :param retries: further tries after a retryable failure.
    :param backoff: seconds before the first retry, doubled each time.
    :param concurrency: requests in flight at once within a batch.

    Example::

        tts = build("tts", "openai_speech", base_url="http://127.0.0.1:8000/v1",
                    model="local-espeak", voices=["m1", "f2"])
        [audio] = tts.synthesize(["What is on the table?"], language="en", voice="f2")
    """

    requires: ClassVar[list[tuple[str, str]]] = [("httpx", "httpx")]

    def __init__(
        self,
        base_url: str = "https://api.openai.com/v1",
        model: str = "gpt-4o-mini-tts",
        voices: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        languages: Sequence[str] | None = None,
        api_key: str | None = None,
        response_format: str = "wav",
        sampling_rate: int = 24000,
        speed: float | None = None,
        language_field: str | None = "language",
        instructions: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        concurrency: int = 4,
    ) -> None:
        if response_format not in RESPONSE_FORMATS:
            raise ValueError(
                f"response_format must be one of {', '.join(RESPONSE_FORMATS)}; "
                f"got {response_format!r}"
            )
        if int(concurrency) < 1 or int(retries) < 0 or float(timeout) <= 0:
            raise ValueError(
                f"need concurrency >= 1, retries >= 0, timeout > 0; got {concurrency}, "
                f"{retries}, {timeout}"
            )
        self._options = dict(
            base_url=base_url,
            model=model,
            voices=voices,
            languages=languages,
            api_key=api_key,
            response_format=response_format,
            sampling_rate=sampling_rate,
            speed=speed,
            language_field=language_field,
            instructions=instructions,
            extra_body=extra_body,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            concurrency=concurrency,
        )
        self.url = base_url.rstrip("/") + "/audio/speech"
        self.model = model
        if isinstance(voices, Mapping):
            self._voices = {str(k): check_voice_ids(v) for k, v in voices.items()}
            default_languages: Sequence[str] = list(self._voices)
        else:
            shared = check_voice_ids(voices or OPENAI_VOICES)
            default_languages = DEFAULT_LANGUAGES
            self._voices = {lang: shared for lang in (languages or DEFAULT_LANGUAGES)}
        self._languages = [str(x) for x in (languages or default_languages)]
        self.api_key = api_key or next(
            (os.environ[k] for k in API_KEY_ENV if k in os.environ), None
        )
        self.response_format = response_format
        self._sampling_rate = int(sampling_rate)
        self.speed = speed
        self.language_field = language_field
        self.instructions = instructions
        self.extra_body = dict(extra_body or {})
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.concurrency = int(concurrency)
        self._client: Any = None

    @property
    def sampling_rate(self) -> int:
        return self._sampling_rate

    def languages(self) -> list[str]:
        """ISO 639-1 codes offered."""
        return list(self._languages)

    def voices(self, language: str) -> list[str]:
        """Voice ids for ``language``."""
        if language not in self._languages or language not in self._voices:
            raise unsupported_language("openai_speech", language, self._languages)
        return list(self._voices[language])

    def synthesize(self, texts: Sequence[str], *, language: str, voice: str) -> list[np.ndarray]:
        """One float32 mono waveform at :attr:`sampling_rate` per text (concurrent requests).

        :raises ItemError: for a text the server failed on (after retries), naming the text,
            the HTTP status and the server's message.
        """
        check_voice(self, "openai_speech", language, voice)
        texts = [speakable(t, "openai_speech") for t in texts]
        return map_bounded(
            partial(self._one, language=language, voice=voice), texts, self.concurrency
        )

    def _one(self, text: str, *, language: str, voice: str) -> np.ndarray:
        body: dict[str, Any] = {
            "model": self.model,
            "input": text,
            "voice": voice,
            "response_format": self.response_format,
        }
        if self.speed is not None:
            body["speed"] = float(self.speed)
        if self.language_field:
            body[self.language_field] = language
        if self.instructions:
            body["instructions"] = self.instructions
        body.update(self.extra_body)
        data = post_with_retries(
            self._http(),
            self.url,
            engine="openai_speech",
            text=text,
            retries=self.retries,
            backoff=self.backoff,
            json=body,
        )
        audio = decode_audio(
            data, self.response_format, self._sampling_rate, engine="openai_speech", text=text
        )
        return checked_audio(audio, "openai_speech", text)

    def _http(self) -> Any:
        if self._client is None:
            self._client = http_client(self.timeout, self.api_key, self.concurrency)
        return self._client
