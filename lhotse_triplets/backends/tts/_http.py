"""What the HTTP TTS clients share: retries with backoff, bounded concurrency, audio decoding."""

import io
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from lhotse_triplets.audio import resample, to_mono_float32
from lhotse_triplets.errors import ItemError

T = TypeVar("T")

#: Statuses worth retrying: the server is overloaded or failed on this request.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def short(text: str, n: int = 60) -> str:
    """``text`` cut to ``n`` characters, for error messages."""
    return text if len(text) <= n else text[: n - 1] + "…"


def server_message(response: Any) -> str:
    """The error message in a server's JSON answer (OpenAI / FastAPI style), else its text."""
    try:
        body = response.json()
    except Exception:
        return response.text[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if body.get("detail"):
            return str(body["detail"])
        if error:
            return str(error)
    return str(body)[:300]


def post_with_retries(
    client: Any,
    url: str,
    *,
    engine: str,
    text: str,
    retries: int,
    backoff: float,
    **request: Any,
) -> bytes:
    """POST ``request`` to ``url``; retry on 5xx/429/timeouts/connection errors with backoff.

    :return: the response body.
    :raises ItemError: naming the engine, the text and what went wrong, after the last try
        (4xx other than 408/409/425/429 are not retried).
    """
    import httpx

    attempt = 0
    while True:
        try:
            response = client.post(url, **request)
        except httpx.TimeoutException as e:
            problem = f"timed out after {client.timeout.read or 0:g} s ({type(e).__name__})"
        except httpx.TransportError as e:
            problem = f"cannot reach {url}: {type(e).__name__}: {e}"
        else:
            if response.status_code < 300:
                return response.content
            problem = f"HTTP {response.status_code} from {url}: {server_message(response)}"
            if response.status_code not in RETRY_STATUSES:
                raise ItemError(f"TTS {engine} failed on {short(text)!r}: {problem}")
        if attempt >= retries:
            tries = f" (after {attempt + 1} tries)" if attempt else ""
            raise ItemError(f"TTS {engine} failed on {short(text)!r}: {problem}{tries}")
        time.sleep(backoff * (2**attempt) * (1 + 0.1 * random.random()))
        attempt += 1


def decode_audio(
    data: bytes, response_format: str, sampling_rate: int, *, engine: str, text: str
) -> np.ndarray:
    """Response bytes as float32 mono at ``sampling_rate`` (``pcm``: 16-bit LE at that rate)."""
    if response_format == "pcm":
        if len(data) % 2:
            raise ItemError(f"TTS {engine} returned odd-length PCM for {short(text)!r}")
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    import soundfile as sf

    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    except Exception as e:
        raise ItemError(
            f"TTS {engine} returned undecodable {response_format} audio for {short(text)!r}: {e}"
        ) from e
    return resample(to_mono_float32(audio), rate, sampling_rate)


def map_bounded(fn: Callable[[T], Any], items: Sequence[T], concurrency: int) -> list[Any]:
    """``[fn(x) for x in items]`` with at most ``concurrency`` calls at once, order kept.

    Every call finishes before an error is raised: the first error (in item order) is raised
    with the others' results dropped, so that a batch is retried item by item by the stage.
    """
    if concurrency <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        futures = [pool.submit(fn, x) for x in items]
        return [f.result() for f in futures]


def http_client(timeout: float, api_key: str | None, concurrency: int) -> Any:
    """An ``httpx.Client`` with a bearer token (if any) and at most ``concurrency`` connections."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers=headers,
        limits=httpx.Limits(max_connections=concurrency),
    )
