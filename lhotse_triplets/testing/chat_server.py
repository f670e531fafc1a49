"""A small OpenAI-compatible chat server that rewrites with the rule-based rephraser.

It serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on a real socket, like vLLM,
SGLang or llama.cpp's server, so the ``openai_chat`` backend is tested end to end (HTTP,
concurrency, retries, timeouts) without a model. It reads the ``<text>...</text>`` of the last
user message and the target language from the prompt, and answers with the rule-based rewrite;
it can also be told to misbehave:

- ``fail_first=N`` (with ``fail_status=500`` or ``429``): the first N requests fail;
- ``delay=S``: every answer waits S seconds (timeouts);
- ``mode``: ``rules`` (default), ``garbage`` (random tokens), ``preamble`` ("Sure! Here is..."),
  ``quoted``, ``echo`` (the text unchanged), or ``fixed`` (always ``reply``: e.g. the answer, or
  what an injection asks for).

Run it for manual tests: ``python -m lhotse_triplets.testing.chat_server --port 8000``.

Example::

    with ChatServer(mode="rules") as server:
        rephraser = build("llm", "openai_chat", base_url=server.url, model="rules")
        rephraser.rephrase(["What number of cubes are there?"], language="en", source_language="en")
        server.requests  # 1
"""

import argparse
import json
import random
import re
import time

from lhotse_triplets.backends.llm.prompt import LANGUAGE_NAMES
from lhotse_triplets.backends.llm.rules import RuleRephraser
from lhotse_triplets.testing.http import Handler, HTTPError, LocalServer, Reply, json_reply

MODES = ("rules", "garbage", "preamble", "quoted", "echo", "fixed")
_TEXT = re.compile(r"<text>(.*?)</text>", re.DOTALL)
_NAME_TO_CODE = {name.split(" ")[0]: code for code, name in LANGUAGE_NAMES.items()}


class ChatServer(LocalServer):
    """An OpenAI-compatible chat server on ``127.0.0.1`` in a background thread.

    :param port: 0 picks a free port (see :attr:`url`).
    :param model: the model id it reports and accepts (any id is accepted).
    :param api_key: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        mode: str = "rules",
        reply: str = "",
        fail_first: int = 0,
        fail_status: int = 500,
        delay: float = 0.0,
        model: str = "rules",
        api_key: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; expected one of {', '.join(MODES)}")
        super().__init__(_ChatHandler, host, port, api_key)
        self.mode, self.reply, self.delay, self.model = mode, reply, delay, model
        self.fail_first, self.fail_status = fail_first, fail_status
        self.requests = 0
        self.prompts: list[list[dict]] = []
        self._rules = RuleRephraser()
        self._random = random.Random(0)

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, ``http://host:port/v1``."""
        return f"{super().url}/v1"

    # -- answering -----------------------------------------------------------------------------
    def next_request(self) -> int:
        """Count a request; return how many came before it."""
        with self._lock:
            self.requests += 1
            return self.requests - 1

    def answer(self, messages: list[dict]) -> str:
        with self._lock:
            self.prompts.append(messages)
        last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        m = _TEXT.search(last)
        text = m.group(1).strip() if m else last.strip()
        if self.mode == "fixed":
            return self.reply
        if self.mode == "echo":
            return text
        if self.mode == "garbage":
            with self._lock:
                return " ".join(
                    "".join(self._random.choices("abcdefghijklmnopqrstuvwxyz", k=5))
                    for _ in range(8)
                )
        language = _target_language(last)
        rewrite = self._rules.rephrase([text], language="en", source_language="en")[0] or text
        if language != "en":  # the rules cannot translate: a real LLM would
            rewrite = text
        if self.mode == "preamble":
            return f"Sure! Here is the spoken version: {rewrite}"
        if self.mode == "quoted":
            return f'"{rewrite}"'
        return rewrite


def _target_language(prompt: str) -> str:
    m = re.search(r"(?:into|in) spoken (\w+)", prompt)
    return _NAME_TO_CODE.get(m.group(1), "en") if m else "en"


class _ChatHandler(Handler):
    def get(self, path: str) -> Reply:
        if path != "/v1/models":
            return super().get(path)
        return json_reply({"object": "list", "data": [{"id": self.owner.model, "object": "model"}]})

    def post(self, path: str, body: bytes) -> Reply:
        server = self.owner
        if path != "/v1/chat/completions":
            return super().post(path, body)
        try:
            request = json.loads(body)
            messages = request["messages"]
        except (ValueError, KeyError) as e:
            raise HTTPError(400, f"bad request: {e}") from None
        n = server.next_request()
        if n < server.fail_first:
            error = HTTPError(server.fail_status, "try again")
            if server.fail_status == 429:
                error.headers = {"Retry-After": "0"}
            raise error
        if server.delay:
            time.sleep(server.delay)
        content = server.answer(messages)
        return json_reply(
            {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model") or server.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--mode", choices=MODES, default="rules")
    parser.add_argument("--reply", default="", help="The answer in --mode fixed.")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=500)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--model", default="rules")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    server = ChatServer(
        args.port,
        mode=args.mode,
        reply=args.reply,
        fail_first=args.fail_first,
        fail_status=args.fail_status,
        delay=args.delay,
        model=args.model,
        api_key=args.api_key,
        host=args.host,
    )
    print(f"OpenAI-compatible chat server on {server.url} (mode {args.mode}); Ctrl-C stops it")
    server.serve_forever()


if __name__ == "__main__":
    main()
