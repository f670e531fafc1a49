"""What the HTTP TTS clients share: requests with retries, bounded concurrency, audio decoding."""

import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from lhotse_triplets.audio import resample, to_mono_float32
from lhotse_triplets.backends._http import RequestFailed, request_with_retries
from lhotse_triplets.errors import ItemError

T = TypeVar("T")


def short(text: str, n: int = 60) -> str:
    """``text`` cut to ``n`` characters, for error messages."""
    return text if len(text) <= n else text[: n - 1] + "…"


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
    """POST ``request`` to ``url``, retrying as ``backends._http.request_with_retries`` does.

    :return: the response body.
    :raises ItemError: naming the engine, the text and what went wrong.
    """
    try:
        response = request_with_retries(
            client, "POST", url, retries=retries, backoff=backoff, **request
        )
    except RequestFailed as e:
        raise ItemError(f"TTS {engine} failed on {short(text)!r}: {e.problem}") from None
    return response.content


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
