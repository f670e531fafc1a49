"""``browse``: a local page to see and hear any input of this library, served from its index.

A :class:`BrowseServer` (stdlib, bound to 127.0.0.1 by default, guarded like every local page by
:mod:`lhotse_triplets.serving`: a ``Host`` that does not name the server gets 421) serves one
static page (package data, nothing fetched from the internet) and a JSON API over a
:class:`~lhotse_triplets.browse.index.BrowseIndex`:

- ``GET /`` the page;
- ``GET /api/items?language=&voice=&engine=&status=&reason=&kind=&q=`` (filters)
  ``&sort=&desc=1&page=N&per_page=50`` -> ``{"total", "page", "pages", "per_page", "items"}``;
  an item is the record's fields plus ``key`` (the row key), ``diff`` (:func:`word_diff` of the
  spoken text and the ASR text) and ``media`` (``{"audio"|"target_audio"|"image": URL or
  null}``; the locators themselves are never sent);
- ``GET /api/facets`` (same filters) -> ``{"facets": {name: [[value, count], ...]}, "scores",
  "sorts", "total", "name"}``;
- ``GET /api/conversation?id=...&kind=...`` -> ``{"id", "items": [item in turn order]}``;
- ``GET /api/item/<key>`` -> one item;
- ``GET /media/<key>/<audio|target_audio|image>`` -> the bytes of the record's media, read by
  :func:`~lhotse_triplets.browse.media.open_media` from inside the input: no path ever comes from
  the client, and an unknown key, a record without that media, or a request naming anything else
  (``..``, ``%2e%2e``, an absolute path, a NUL) is a 404. ``Range`` requests are answered (206) so
  the audio player can seek.

Example::

    index = BrowseIndex.open("run/export")
    server = BrowseServer(index, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.url)
"""

import dataclasses
import logging
import math
import re
import threading
import time
import webbrowser
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from lhotse_triplets.browse.index import BrowseIndex, Filters
from lhotse_triplets.browse.media import open_media
from lhotse_triplets.browse.records import Record
from lhotse_triplets.metrics import word_ops
from lhotse_triplets.serving import LocalHandler, LocalServer, static_page

logger = logging.getLogger(__name__)

#: Record fields holding a media locator, served at ``/media/<key>/<field>``.
MEDIA_FIELDS = ("audio", "target_audio", "image")
#: Sort keys besides the score names.
SORTS = ("duration", "id", "language", "voice", "engine", "status")
#: Filter names (query parameters of ``/api/items`` and ``/api/facets``).
FILTERS = tuple(f.name for f in dataclasses.fields(Filters))
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
#: The page may load scripts, styles, images and media from itself only (and images as data:).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)
_MEDIA_PATH = re.compile(r"/media/(\d{1,18})/(audio|target_audio|image)")
_ITEM_PATH = re.compile(r"/api/item/(\d{1,18})")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class BadRequest(ValueError):
    """A query parameter the API does not take (answered 400)."""


def word_diff(text: str | None, asr_text: str | None, language: str | None = None) -> list[list]:
    """Word-level difference of what was meant to be said and what the ASR heard, as the page
    gets it: ``[op, text_words, asr_words]`` entries of :func:`~lhotse_triplets.metrics.word_ops`
    (case and punctuation do not count); empty when either text is missing.

    Example::

        >>> word_diff("A red cube.", "a bed cube")
        [['equal', ['A'], ['a']], ['replace', ['red'], ['bed']], ['equal', ['cube.'], ['cube']]]
    """
    if text is None or asr_text is None:
        return []
    return [[op, said, heard] for op, said, heard in word_ops(text, asr_text, language)]


def _finite(value):
    """``value`` with non-finite floats as ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def item_dict(key: int, record: Record) -> dict:
    """What the page gets of a record: its fields (media as URLs), ``key`` and ``diff``."""
    item = {k: _finite(v) for k, v in dataclasses.asdict(record).items()}
    item["media"] = {f: f"/media/{key}/{f}" if item.pop(f) else None for f in MEDIA_FIELDS}
    item["key"] = key
    item["diff"] = word_diff(record.text, record.asr_text, record.language)
    return item


def page_html() -> bytes:
    """The browse page (package data)."""
    return static_page("lhotse_triplets.browse", "browse.html")


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1].strip() or None if values else None


def _int(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    value = _one(query, name)
    if value is None:
        return default
    try:
        return min(max(int(value), low), high)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {value!r}") from None


def parse_filters(query: dict[str, list[str]]) -> Filters:
    """The :class:`Filters` of a query string (``parse_qs`` form); empty values mean no filter."""
    return Filters(**{name: _one(query, name) for name in FILTERS})


class BrowseServer(LocalServer):
    """The browse server of one :class:`BrowseIndex`.

    :param allowed_hosts: more names the page may be reached by (``Host`` header values without
        the port), e.g. the machine's name when bound to ``0.0.0.0``.
    """

    log = logger
    exposed_warning = (
        "The browse page is bound to %s, not a loopback address: anyone who can reach this "
        "machine on port %d can see and hear the data."
    )

    def __init__(
        self,
        index: BrowseIndex,
        host: str = "127.0.0.1",
        port: int = 8765,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        self.index = index  # its queries are serialised: one index serves every thread
        self.root = Path(index.root)
        self.scores = index.score_names()
        #: Sort keys ``/api/items`` takes: the score names, then :data:`SORTS`.
        self.sorts = [*self.scores, *SORTS]
        super().__init__(host, port, _Handler, allowed_hosts)

    def items(self, query: dict[str, list[str]]) -> dict:
        """The answer of ``/api/items``: one page of the filtered, sorted records."""
        filters = parse_filters(query)
        sort = _one(query, "sort")
        if sort is not None and sort not in self.sorts:
            raise BadRequest(f"unknown sort {sort!r}; known: {', '.join(self.sorts)}")
        descending = _one(query, "desc") in ("1", "true", "yes")
        per_page = _int(query, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
        total = self.index.count(filters)
        pages = max(1, math.ceil(total / per_page))
        page = _int(query, "page", 1, 1, pages)
        rows = self.index.page(filters, sort, descending, (page - 1) * per_page, per_page)
        return {
            "total": total,
            "page": page,
            "pages": pages,
            "per_page": per_page,
            "items": [item_dict(key, record) for key, record in rows],
        }

    def facets(self, query: dict[str, list[str]]) -> dict:
        """The answer of ``/api/facets``: values and counts of each filter, score names, sorts."""
        filters = parse_filters(query)
        facets = self.index.facets(filters)
        return {
            "facets": {name: [list(vc) for vc in values] for name, values in facets.items()},
            "scores": self.scores,
            "sorts": self.sorts,
            "total": self.index.count(filters),
            "name": self.root.name,
        }

    def conversation(self, query: dict[str, list[str]]) -> dict:
        """The answer of ``/api/conversation``: the turns of one conversation, in order."""
        conversation_id = _one(query, "id")
        if conversation_id is None:
            raise BadRequest("id is required")
        rows = self.index.conversation(conversation_id, _one(query, "kind"))
        return {"id": conversation_id, "items": [item_dict(k, r) for k, r in rows]}

    def record(self, key: int) -> Record | None:
        """The record of row ``key``, ``None`` when there is none."""
        try:
            return self.index.record(key)
        except (KeyError, IndexError, LookupError, ValueError):
            return None

    def media(self, key: int, field: str) -> tuple[bytes, str] | None:
        """``(data, content type)`` of a record's media, ``None`` when it has none or it is not
        readable inside the input."""
        record = self.record(key)
        locator = getattr(record, field, None) if record is not None else None
        if not locator:
            return None
        try:
            return open_media(self.root, locator)
        except FileNotFoundError as e:
            logger.debug("media %s/%s: %s", key, field, e)
            return None


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single ``Range: bytes=a-b`` header, else ``None``."""
    match = _RANGE.fullmatch((header or "").strip())
    if not match or not (match[1] or match[2]) or size == 0:
        return None
    if not match[1]:  # the last N bytes
        return max(0, size - int(match[2])), size
    start = int(match[1])
    end = min(int(match[2]) + 1, size) if match[2] else size
    return (start, end) if start < end else None


def _suspicious(raw_path: str) -> bool:
    """Whether a request path tries to name a file (``..``, encoded dots, NUL, backslash)."""
    lowered = raw_path.lower()
    return any(s in lowered for s in ("..", "%2e", "%00", "\x00", "%5c", "\\", "//"))


class _Handler(LocalHandler):
    server: BrowseServer

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self._host_ok():
            return
        parts = urlsplit(self.path)
        if _suspicious(parts.path):
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        path = unquote(parts.path)
        try:
            self._route(path, parse_qs(parts.query))
        except BadRequest as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})

    do_HEAD = do_GET

    def _route(self, path: str, query: dict[str, list[str]]) -> None:
        api = {
            "/api/items": self.server.items,
            "/api/facets": self.server.facets,
            "/api/conversation": self.server.conversation,
        }
        if path in ("/", "/index.html"):
            self._send(
                HTTPStatus.OK,
                page_html(),
                "text/html; charset=utf-8",
                {"Content-Security-Policy": PAGE_POLICY},
            )
        elif path in api:
            self._json(HTTPStatus.OK, api[path](query))
        elif match := _ITEM_PATH.fullmatch(path):
            record = self.server.record(int(match[1]))
            if record is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no item {match[1]}"})
            else:
                self._json(HTTPStatus.OK, item_dict(int(match[1]), record))
        elif match := _MEDIA_PATH.fullmatch(path):
            self._media(int(match[1]), match[2])
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    def _media(self, key: int, field: str) -> None:
        found = self.server.media(key, field)
        if found is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no {field} for item {key}"})
            return
        data, content_type = found
        span = _byte_range(self.headers.get("Range"), len(data))
        if span is None:
            self._send(HTTPStatus.OK, data, content_type, {"Accept-Ranges": "bytes"})
            return
        start, end = span
        content_range = f"bytes {start}-{end - 1}/{len(data)}"
        self._send(
            HTTPStatus.PARTIAL_CONTENT,
            data[start:end],
            content_type,
            {"Accept-Ranges": "bytes", "Content-Range": content_range},
        )


def serve(
    path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    index_path: str | Path | None = None,
    rebuild: bool = False,
    open_browser: bool = True,
    allowed_hosts: tuple[str, ...] = (),
) -> None:
    """Index ``path`` (once; reused while the input is unchanged) and serve its page until
    interrupted.

    Example::

        serve("run/export", port=8765)   # open http://127.0.0.1:8765/
    """
    started = time.perf_counter()
    index = BrowseIndex.open(path, index_path=index_path, rebuild=rebuild, progress=True)
    stats = index.build_stats()
    print(
        f"Index of {path}: {stats.get('rows', '?')} rows (built in "
        f"{stats.get('seconds', 0):.1f} s, opened in {time.perf_counter() - started:.1f} s)"
    )
    server = BrowseServer(index, host, port, allowed_hosts)
    print(f"Browsing {path} at {server.url}  (Ctrl-C to stop)")
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(server.url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
