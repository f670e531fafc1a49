"""Rephrasing through any OpenAI-compatible chat server: vLLM, SGLang, llama.cpp, hosted APIs.

Requests go out concurrently from a bounded thread pool over one ``httpx`` client; 429, 5xx,
timeouts and connection errors are retried with exponential backoff (``Retry-After`` is
honoured), other errors are not. An item that still fails comes back as an exception, which the
stage records and replaces with its fallback; it never stops the run. The model runs on the
server: no local thread limit applies (``engine.threads_per_worker``).

Serve a model with vLLM and point the backend at it::

    vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000
    lhotse-triplets rephrase IN OUT -b openai_chat -O base_url=http://localhost:8000/v1 \\
        -O model=Qwen/Qwen2.5-7B-Instruct -l en,fr,de,ja,zh
"""

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from lhotse_triplets.backends._http import RequestFailed, request_with_retries
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.llm.prompt import build_messages, fingerprint, parse_reply
from lhotse_triplets.backends.registry import register

logger = logging.getLogger(__name__)


class ChatRequestError(RuntimeError):
    """A chat request failed for good (after retries, or with a non-retryable status)."""


@register("llm", "openai_chat")
class OpenAIChatRephraser(PicklesByOptions):
    """Spoken-style rewrites (and translations) from an OpenAI-compatible ``/chat/completions``.

    :param model: model id on the server; default ``$LHOTSE_TRIPLETS_LLM_MODEL``, else the
        first model the server lists at ``/models``.
    :param base_url: default ``$OPENAI_BASE_URL``, else ``http://127.0.0.1:8000/v1``.
    :param api_key: default ``$OPENAI_API_KEY`` (local servers need none).
    :param max_concurrency: requests in flight at once.
    :param timeout: seconds per request.
    :param max_retries: retries of a request after a 429/5xx/timeout/connection error.
    :param backoff: first retry delay in seconds; doubles each retry (with jitter).
    :param max_tokens: bound on the length of a reply.
    :param temperature: 0 is greedy decoding.

    Example::

        llm = build("llm", "openai_chat", base_url="http://localhost:8000/v1", model="qwen")
        llm.rephrase(["The large ball is what color?"], language="en", source_language="en")
    """

    requires: ClassVar[list[tuple[str, str]]] = [("httpx", "httpx")]

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_tokens: int = 128,
        temperature: float = 0.0,
        system_prompt: str | None = None,
    ) -> None:
        self._options = dict(
            model=model,
            base_url=base_url,
            api_key=api_key,
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_tokens=max_tokens,
            temperature=temperature,
            system_prompt=system_prompt,
        )
        import httpx

        self.base_url = (
            base_url or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8000/v1"
        ).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.max_concurrency = max(1, int(max_concurrency))
        self.max_retries, self.backoff = int(max_retries), float(backoff)
        self.max_tokens, self.temperature = int(max_tokens), float(temperature)
        self.system_prompt = system_prompt
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=self.max_concurrency),
        )
        self.model = model or os.environ.get("LHOTSE_TRIPLETS_LLM_MODEL") or self._first_model()

    def _first_model(self) -> str:
        response = self._request("GET", "/models")
        models = [m["id"] for m in response.get("data", [])]
        if not models:
            raise ChatRequestError(f"{self.base_url}/models lists no model; pass model=...")
        return models[0]

    def _request(self, method: str, path: str, payload: dict | None = None) -> dict:
        try:
            response = request_with_retries(
                self._client,
                method,
                self.base_url + path,
                retries=self.max_retries,
                backoff=self.backoff,
                json=payload,
            )
        except RequestFailed as e:
            raise ChatRequestError(f"chat request ({method}) failed: {e.problem}") from None
        return response.json()

    def complete(self, messages: list[dict[str, str]]) -> str:
        """One chat completion: the reply's text."""
        payload = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.temperature == 0:
            payload["seed"] = 0
        reply = self._request("POST", "/chat/completions", payload)
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise ChatRequestError(f"unexpected reply: {str(reply)[:200]}") from None

    def rephrase(
        self,
        texts: Sequence[str],
        *,
        language: str,
        source_language: str,
        contexts: Sequence[str | None] = (),
        translations: Sequence[dict | None] = (),
    ) -> list[Any]:
        """One rewrite per text (``str``), or the exception that made that item fail."""
        contexts = list(contexts) or [None] * len(texts)

        def one(i: int) -> str | Exception:
            messages = build_messages(
                texts[i], language, source_language, contexts[i], self.system_prompt
            )
            try:
                return parse_reply(self.complete(messages))
            except ChatRequestError as e:
                return e

        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(texts) or 1)) as pool:
            return list(pool.map(one, range(len(texts))))

    def fingerprint(self) -> str:
        return fingerprint(
            "openai_chat",
            model=self.model,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            system_prompt=self.system_prompt,
        )
