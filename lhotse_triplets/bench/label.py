"""``bench label``: a local audition and labelling page for the clips of a benchmark.

A stdlib HTTP server (bound to 127.0.0.1 by default) serves one static page (shipped as package
data) and a small JSON API:

- ``GET /`` the page; ``GET /api/clips`` the clips (``clips.jsonl``) and the current labels;
- ``GET /audio/<cut_id>`` the clip's audio: looked up by id in the clip table, and only served
  when the file lies inside the benchmark directory (no path comes from the client);
- ``POST /api/label`` ``{"cut_id": ..., "label": "good" | "bad" | null}`` records a label.

Every request must name the server in its ``Host`` header (the bound ``host:port``, or a
loopback name for it: ``localhost``, ``127.0.0.1``, ``[::1]``), so a page on another site cannot
reach it through a DNS name of its own (DNS rebinding): others get 421. A ``POST`` must come from
the page itself: an ``Origin`` (or, without one, a ``Referer``) of another site is refused with
403, and only ``application/json`` bodies are taken (415 otherwise), which a cross-site form
cannot send without the browser asking first. Binding to an address other than a loopback one
logs a warning: anyone who can reach it can change labels.

Labels go to ``DIR/labels.csv`` (``cut_id,label``) on every click: the whole file is rewritten to
a temporary file and renamed, so it is never half-written; the last click on a clip wins, and
``null`` removes its label. Reloading the page or restarting the server shows them again.
"""

import csv
import io
import json
import logging
import mimetypes
import os
import threading
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lhotse_triplets.bench.calibrate import load_clips
from lhotse_triplets.bench.report import CLIP_COLUMNS
from lhotse_triplets.serving import LocalHandler, LocalServer, static_page
from lhotse_triplets.serving import is_loopback as is_loopback  # re-exported

logger = logging.getLogger(__name__)

LABELS = ("good", "bad")
#: Clip columns the page gets: every clip column but the audio path (audio is served by id).
PAGE_COLUMNS = tuple(c for c in CLIP_COLUMNS if c != "audio")


class LabelStore:
    """``cut_id -> label`` persisted in a CSV, rewritten atomically on every change."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.labels: dict[str, str] = {}
        if self.path.exists():
            with self.path.open(newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if row.get("cut_id") and row.get("label") in LABELS:
                        self.labels[row["cut_id"]] = row["label"]

    def set(self, cut_id: str, label: str | None) -> None:
        """Record (or, with ``None``, remove) the label of ``cut_id`` and save the file."""
        if label is not None and label not in LABELS:
            raise ValueError(f"label must be one of {LABELS} or null, got {label!r}")
        with self._lock:
            if label is None:
                self.labels.pop(cut_id, None)
            else:
                self.labels.pop(cut_id, None)  # most recent click last in the file
                self.labels[cut_id] = label
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["cut_id", "label"])
            writer.writerows(self.labels.items())
            tmp = self.path.with_name(f".tmp.{self.path.name}")
            tmp.write_text(buf.getvalue(), encoding="utf-8")
            os.replace(tmp, self.path)


def page_html() -> bytes:
    """The labelling page (package data)."""
    return static_page("lhotse_triplets.bench", "label.html")


class LabelServer(LocalServer):
    """The labelling server of one benchmark directory.

    :param allowed_hosts: more names the page may be reached by (``Host`` header values without
        the port), e.g. the machine's name when bound to ``0.0.0.0``.
    """

    log = logger
    exposed_warning = (
        "The labelling page is bound to %s, not a loopback address: anyone who can reach "
        "this machine on port %d can read the clips and change labels."
    )

    def __init__(
        self,
        bench_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 8765,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        self.bench_dir = Path(bench_dir).resolve()
        clips = load_clips(self.bench_dir)
        if not clips:
            raise ValueError(f"{bench_dir} has no clips to label (run `bench run` first)")
        self.clips = [{k: c.get(k) for k in PAGE_COLUMNS} for c in clips]
        self.audio = {c["cut_id"]: c.get("audio") for c in clips}
        self.store = LabelStore(self.bench_dir / "labels.csv")
        super().__init__(host, port, _Handler, allowed_hosts)

    def audio_path(self, cut_id: str) -> Path | None:
        """The audio file of a known clip, if it lies inside the benchmark directory."""
        rel = self.audio.get(cut_id)
        if not rel:
            return None
        path = (self.bench_dir / rel).resolve()
        if not path.is_relative_to(self.bench_dir) or not path.is_file():
            return None
        return path


class _Handler(LocalHandler):
    server: LabelServer

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, page_html(), "text/html; charset=utf-8")
        elif path == "/api/clips":
            self._json(
                HTTPStatus.OK, {"clips": self.server.clips, "labels": self.server.store.labels}
            )
        elif path.startswith("/audio/"):
            cut_id = unquote(path[len("/audio/") :])
            file = self.server.audio_path(cut_id)
            if file is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no audio for clip {cut_id!r}"})
                return
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if file.suffix == ".flac":
                ctype = "audio/flac"
            self._send(HTTPStatus.OK, file.read_bytes(), ctype)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        if not self._host_ok() or not self._post_ok():
            return
        if urlsplit(self.path).path != "/api/label":
            self._json(HTTPStatus.NOT_FOUND, {"error": "POST /api/label only"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(min(length, 1 << 16)) or b"{}")
            cut_id, label = body["cut_id"], body.get("label")
        except (ValueError, KeyError, TypeError) as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"expected {{cut_id, label}}: {e}"})
            return
        if cut_id not in self.server.audio:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"unknown clip {cut_id!r}"})
            return
        try:
            self.server.store.set(cut_id, label)
        except ValueError as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
            return
        self._json(
            HTTPStatus.OK,
            {"cut_id": cut_id, "label": label, "labelled": len(self.server.store.labels)},
        )


def serve(
    bench_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    allowed_hosts: tuple[str, ...] = (),
) -> None:
    """Serve the labelling page of ``bench_dir`` until interrupted.

    Example::

        serve("bench-out", port=8765)   # open http://127.0.0.1:8765/
    """
    server = LabelServer(bench_dir, host, port, allowed_hosts)
    print(f"Labelling {len(server.clips)} clips of {bench_dir} at {server.url}")
    print(f"Labels are saved to {server.store.path} as you click. Ctrl-C to stop.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print(f"{len(server.store.labels)} labels in {server.store.path}")
