"""The guard shared by this library's local pages (``bench label``, ``browse``).

Both pages are a stdlib :class:`~http.server.ThreadingHTTPServer` bound to 127.0.0.1 by default.
:class:`LocalServer` and :class:`LocalHandler` hold what they share:

- every request must name the server in its ``Host`` header (the bound ``host:port``, or a
  loopback name for it: ``localhost``, ``127.0.0.1``, ``[::1]``), so a page on another site cannot
  reach it through a DNS name of its own (DNS rebinding): others get 421;
- a state-changing request must come from the page itself: an ``Origin`` (or, without one, a
  ``Referer``) of another site is refused with 403, and only ``application/json`` bodies are taken
  (415 otherwise), which a cross-site form cannot send without the browser asking first;
- binding to an address other than a loopback one logs a warning (:attr:`LocalServer.exposed`);
- answers are sent with ``Cache-Control: no-store`` by :meth:`LocalHandler._send` /
  :meth:`LocalHandler._json`.

Example::

    class Handler(LocalHandler):
        def do_GET(self):
            if self._host_ok():
                self._json(200, {"hello": "world"})

    server = LocalServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
"""

import importlib.resources
import ipaddress
import json
import logging
import socket
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

#: Host names that always mean this machine.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address to bind) is only reachable from this machine.

    Example::

        >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def static_page(package: str, name: str) -> bytes:
    """The bytes of ``<package>/static/<name>``, a page shipped as package data.

    Example::

        >>> static_page("lhotse_triplets.browse", "browse.html")[:15]
        b'<!doctype html>'
    """
    return (importlib.resources.files(package) / "static" / name).read_bytes()


class LocalServer(ThreadingHTTPServer):
    """A threading HTTP server that knows the ``Host`` names it answers to.

    :param host: the address to bind (a warning is logged on :attr:`log` when not a loopback one:
        :attr:`exposed_warning` says what others could do).
    :param allowed_hosts: more names the page may be reached by (``Host`` header values without
        the port), e.g. the machine's name when bound to ``0.0.0.0``.
    """

    daemon_threads = True
    #: The logger of the page (subclasses use their module's, so its messages name the page).
    log = logger
    #: Warning logged when bound to a non-loopback address (``%s`` host, ``%d`` port).
    exposed_warning = (
        "The page is bound to %s, not a loopback address: anyone who can reach this machine on "
        "port %d can use it."
    )

    def __init__(
        self,
        host: str,
        port: int,
        handler: type[BaseHTTPRequestHandler],
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        super().__init__((host, port), handler)
        self.hosts = self._allowed_hosts(host, allowed_hosts)
        self.exposed = not is_loopback(host)
        if self.exposed:
            self.log.warning(self.exposed_warning, host, self.server_address[1])

    def _allowed_hosts(self, host: str, extra: tuple[str, ...]) -> frozenset[str]:
        """``Host`` header values (``name:port``) this server answers to."""
        port = self.server_address[1]
        names = {host, *extra, *LOOPBACK_NAMES}
        if not is_loopback(host):  # reached from other machines by this machine's names
            names |= {socket.gethostname(), socket.getfqdn()}
        names |= {f"[{n}]" for n in names if ":" in n and not n.startswith("[")}
        return frozenset(f"{n.lower()}:{port}" for n in names)

    @property
    def url(self) -> str:
        """The page's address (``http://host:port/``)."""
        host, port = self.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request's ``Host`` header names this server."""
        return host is not None and host.strip().lower() in self.hosts

    def same_origin(self, origin: str) -> bool:
        """Whether ``origin`` (an ``Origin`` header, or a ``Referer`` URL) is this page's own."""
        parts = urlsplit(origin)
        return parts.scheme == "http" and self.host_allowed(parts.netloc)


class LocalHandler(BaseHTTPRequestHandler):
    """Request handler helpers of a :class:`LocalServer`: answers, and the Host/Origin guards."""

    server: LocalServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        self.server.log.debug("%s %s", self.address_string(), format % args)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``status`` with ``body`` and ``headers`` (no body for ``HEAD``), never cached."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        """Answer ``status`` with ``obj`` as JSON."""
        self._send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json")

    def _host_ok(self) -> bool:
        """Refuse (421) a request whose ``Host`` does not name this server."""
        if self.server.host_allowed(self.headers.get("Host")):
            return True
        self._json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "unexpected Host header"})
        return False

    def _origin_ok(self) -> bool:
        """Refuse (403) a request whose ``Origin`` (or, without one, ``Referer``) is another
        site's."""
        origin = self.headers.get("Origin")
        referer = self.headers.get("Referer")
        if origin is not None and not self.server.same_origin(origin):
            self._json(HTTPStatus.FORBIDDEN, {"error": f"cross-origin request from {origin}"})
            return False
        if origin is None and referer is not None and not self.server.same_origin(referer):
            self._json(HTTPStatus.FORBIDDEN, {"error": "cross-origin request (Referer)"})
            return False
        return True

    def _post_ok(self) -> bool:
        """Refuse a cross-site request (403) and a body that is not JSON (415)."""
        if not self._origin_ok():
            return False
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            self._json(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                {"error": f"expected Content-Type application/json, got {ctype or 'none'}"},
            )
            return False
        return True
