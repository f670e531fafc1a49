"""What the HTTP backends share (TTS and chat clients): one request with retries and backoff."""

import logging
import random
import time
from typing import Any

logger = logging.getLogger(__name__)

#: Statuses worth retrying: the server is overloaded or failed on this request.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

#: Longest wait a server's ``Retry-After`` may ask for.
MAX_RETRY_AFTER = 60.0


class RequestFailed(Exception):
    """A request failed for good: ``problem`` says how (status and server message, or the
    transport error), ``retried`` whether it was a retryable failure that ran out of tries."""

    def __init__(self, problem: str, retried: bool) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retried = retried


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


def request_with_retries(
    client: Any, method: str, url: str, *, retries: int, backoff: float, **request: Any
) -> Any:
    """Send ``request`` with ``client`` (an ``httpx.Client``); retry 408/409/425/429/5xx, timeouts
    and connection errors up to ``retries`` times, waiting ``backoff * 2**attempt`` seconds (with
    jitter) or what the server's ``Retry-After`` asks (at most a minute).

    :return: the successful (< 300) ``httpx.Response``.
    :raises RequestFailed: at once for other statuses; after the last try for retryable ones.
    """
    import httpx

    attempt = 0
    while True:
        wait = None
        try:
            response = client.request(method, url, **request)
        except httpx.TimeoutException as e:
            problem = f"timed out after {client.timeout.read or 0:g} s ({type(e).__name__})"
        except httpx.TransportError as e:
            problem = f"cannot reach {url}: {type(e).__name__}: {e}"
        else:
            if response.status_code < 300:
                return response
            problem = f"HTTP {response.status_code} from {url}: {server_message(response)}"
            if response.status_code not in RETRY_STATUSES:
                raise RequestFailed(problem, retried=False)
            wait = _retry_after(response.headers.get("Retry-After"))
        if attempt >= retries:
            tries = f" (after {attempt + 1} tries)" if attempt else ""
            raise RequestFailed(problem + tries, retried=True)
        if wait is None:
            wait = backoff * (2**attempt) * (1 + 0.1 * random.random())
        logger.debug("%s %s: %s; retry %d in %.2f s", method, url, problem, attempt + 1, wait)
        time.sleep(wait)
        attempt += 1


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), MAX_RETRY_AFTER) if value is not None else None
    except ValueError:  # an HTTP date: use our own backoff
        return None
