"""What the local test servers share: a threaded HTTP server on 127.0.0.1 in the background, and a
request handler that answers JSON errors, checks a bearer key and counts statuses.

A server subclasses :class:`LocalServer` and gives it a :class:`Handler` subclass implementing
:meth:`Handler.get` / :meth:`Handler.post`; the handler reaches the server object as
``self.owner``.
"""

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: What a route answers: status, body bytes, content type, extra headers.
Reply = tuple[int, bytes, str, dict[str, str]]


class HTTPError(Exception):
    """An error answer: ``{"error": {"message", "type"}}`` (OpenAI style) with ``status``."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers: dict[str, str] = {}


def json_reply(payload: Any, status: int = 200) -> Reply:
    """A JSON answer."""
    return status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json", {}


class Handler(BaseHTTPRequestHandler):
    """Base handler: authorization, routing to :meth:`get`/:meth:`post`, JSON errors."""

    protocol_version = "HTTP/1.1"

    @property
    def owner(self) -> "LocalServer":
        return self.server.owner  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    # -- routes (subclasses) ---------------------------------------------------------------------
    def get(self, path: str) -> Reply:
        raise HTTPError(404, f"no route {self.path}", "not_found")

    def post(self, path: str, body: bytes) -> Reply:
        raise HTTPError(404, f"no route {self.path}", "not_found")

    # -- plumbing --------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._answer(lambda: self.get(self.path.rstrip("/")))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(lambda: self.post(self.path.rstrip("/"), raw))

    def _answer(self, route: Any) -> None:
        try:
            self._authorize()
            status, data, content_type, headers = route()
        except HTTPError as e:
            payload = {"error": {"message": e.message, "type": e.kind}}
            status, data, content_type, _ = json_reply(payload, e.status)
            headers = e.headers
        except Exception as e:  # a bug here must still answer the client
            payload = {"error": {"message": f"{type(e).__name__}: {e}", "type": "server_error"}}
            status, data, content_type, headers = json_reply(payload, 500)
        self.owner.count_status(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorize(self) -> None:
        key = self.owner.api_key
        if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
            raise HTTPError(401, "invalid api key", "authentication_error")


class LocalServer:
    """A ``ThreadingHTTPServer`` on ``host:port`` (port 0: any free port) run in a thread.

    :param handler: the :class:`Handler` subclass answering requests.
    :param api_key: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
    """

    def __init__(
        self,
        handler: type[Handler],
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
    ) -> None:
        self.api_key = api_key
        #: status -> answers sent
        self.statuses: Counter = Counter()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self._httpd.server_address[0]}:{self.port}"

    def count_status(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def start(self) -> "LocalServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve_forever() loop
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C (for ``python -m ...``)."""
        try:
            self._httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._httpd.server_close()
