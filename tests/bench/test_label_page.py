"""The labelling page: served locally, driven in headless Chromium (Playwright)."""

import csv
import http.client
import json
import logging
import shutil
import threading
import urllib.error
import urllib.request

import pytest

from lhotse_triplets.bench.label import LabelServer, LabelStore, is_loopback
from lhotse_triplets.bench.run import run_bench

from .conftest import dummy_bench_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def bench_dir(tmp_path, prompt_dir):
    out = tmp_path / "bench"
    run_bench(dummy_bench_config(prompt_dir), out, progress=False)
    return out


def start(bench_dir) -> LabelServer:
    server = LabelServer(bench_dir, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(server: LabelServer) -> None:
    server.shutdown()
    server.server_close()


def read_csv(path) -> dict[str, str]:
    with path.open() as f:
        return {r["cut_id"]: r["label"] for r in csv.DictReader(f)}


def post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_label_api_validates_and_serves_only_clip_audio(bench_dir):
    server = start(bench_dir)
    try:
        url = server.url
        clips = json.loads(urllib.request.urlopen(url + "api/clips").read())["clips"]
        assert len(clips) == 24
        cut_id = clips[0]["cut_id"]
        with urllib.request.urlopen(url + "audio/" + cut_id) as r:
            assert r.headers["Content-Type"] == "audio/flac" and r.read(4) == b"fLaC"
        # Paths never come from the client: traversal attempts are unknown clips.
        for bad in ("audio/..%2Fconfig.yaml", "audio/../../etc/passwd", "audio/%2Fetc%2Fpasswd"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(url + bad)
            assert e.value.code == 404
        assert post(url + "api/label", {"cut_id": "nope", "label": "good"})[0] == 400
        status, body = post(url + "api/label", {"cut_id": cut_id, "label": "maybe"})
        assert status == 400 and "label must be one of" in body["error"]
        assert post(url + "api/label", {"cut_id": cut_id, "label": "good"})[0] == 200
        assert post(url + "api/label", {"cut_id": cut_id, "label": "bad"})[0] == 200
        assert read_csv(bench_dir / "labels.csv") == {cut_id: "bad"}  # last click wins
        assert post(url + "api/label", {"cut_id": cut_id, "label": None})[0] == 200
        assert read_csv(bench_dir / "labels.csv") == {}
    finally:
        stop(server)


def raw_request(server, method, path, body=b"", headers=None) -> tuple[int, dict]:
    """A request with exactly the headers given (``Host`` included), as a hostile page sends."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def label_body(cut_id, label="bad") -> bytes:
    return json.dumps({"cut_id": cut_id, "label": label}).encode()


def test_cross_site_requests_cannot_change_labels(bench_dir):
    server = start(bench_dir)
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        cut_id = json.loads(urllib.request.urlopen(server.url + "api/clips").read())["clips"][0][
            "cut_id"
        ]
        json_type = {"Content-Type": "application/json"}
        # The attack of the issue: a foreign page's form posting text/plain with its Origin.
        refused = [
            ({"Host": host, "Origin": "http://evil.example", **json_type}, 403),
            ({"Host": host, "Origin": "null", **json_type}, 403),
            ({"Host": host, "Origin": "https://127.0.0.1:1", **json_type}, 403),
            ({"Host": host, "Referer": "http://evil.example/page", **json_type}, 403),
            ({"Host": host, "Content-Type": "text/plain"}, 415),
            ({"Host": host, "Origin": f"http://{host}", "Content-Type": "text/plain"}, 415),
            ({"Host": host}, 415),
            ({"Host": f"evil.example:{server.server_address[1]}", **json_type}, 421),
            ({"Host": "127.0.0.1:1", **json_type}, 421),
            ({**json_type}, 421),  # no Host at all
        ]
        for headers, status in refused:
            got, body = raw_request(server, "POST", "/api/label", label_body(cut_id), headers)
            assert (got, "error" in body) == (status, True), headers
        assert not (bench_dir / "labels.csv").exists()  # nothing was recorded
        # A rebinding page reads nothing either: GETs check Host too.
        assert raw_request(server, "GET", "/api/clips", headers={"Host": "evil.example"})[0] == 421
        # The page itself: same origin (any loopback name for the port), JSON body.
        port = server.server_address[1]
        for own in (host, f"localhost:{port}", f"[::1]:{port}"):
            headers = {"Host": own, "Origin": f"http://{own}", **json_type}
            assert raw_request(server, "POST", "/api/label", label_body(cut_id), headers)[0] == 200
        headers = {
            "Host": host,
            "Referer": f"http://{host}/",
            **{"Content-Type": "application/json; charset=utf-8"},
        }
        assert (
            raw_request(server, "POST", "/api/label", label_body(cut_id, "good"), headers)[0] == 200
        )
        assert read_csv(bench_dir / "labels.csv") == {cut_id: "good"}
    finally:
        stop(server)


def test_non_loopback_binding_warns(bench_dir, caplog):
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with caplog.at_level(logging.WARNING, logger="lhotse_triplets.bench.label"):
        stop(start(bench_dir))
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="lhotse_triplets.bench.label"):
        server = LabelServer(bench_dir, "0.0.0.0", 0, allowed_hosts=("labels.lan",))
        server.server_close()
    assert any("not a loopback address" in r.getMessage() for r in caplog.records)
    port = server.server_address[1]
    assert server.host_allowed(f"labels.lan:{port}") and server.host_allowed(f"localhost:{port}")
    assert not server.host_allowed(f"evil.example:{port}")


def test_label_command_passes_allow_host_to_the_server(bench_dir, monkeypatch):
    """`bench label --allow-host NAME` (the README's flag) reaches the server's allowed hosts."""
    from click.testing import CliRunner

    import lhotse_triplets.bench.label as label_module
    from lhotse_triplets.bin.cli import cli

    made = []

    def serve_once(bench_dir, host, port, allowed_hosts=()):
        made.append(LabelServer(bench_dir, host, port, allowed_hosts))
        made[-1].server_close()

    monkeypatch.setattr(label_module, "serve", serve_once)
    args = ["bench", "label", str(bench_dir), "--port", "0", "--allow-host", "labels.lan"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    port = made[0].server_address[1]
    assert made[0].host_allowed(f"labels.lan:{port}")
    assert not made[0].host_allowed(f"evil.example:{port}")


def test_label_store_survives_reopen(tmp_path):
    store = LabelStore(tmp_path / "labels.csv")
    store.set("a", "good")
    store.set("b", "bad")
    store.set("a", "bad")
    assert LabelStore(tmp_path / "labels.csv").labels == {"b": "bad", "a": "bad"}
    assert not list(tmp_path.glob(".tmp*"))


@pytest.mark.slow
def test_label_page_in_headless_chromium(bench_dir):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed")
    server = start(bench_dir)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
            )
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_selector(".clip")
            assert page.locator(".clip").count() == 24

            # Play the first clip: its audio element starts and advances.
            first = page.locator(".clip").nth(0)
            page.evaluate(
                """() => { const a = document.querySelector('.clip audio');
                   window.__played = false;
                   a.addEventListener('playing', () => { window.__played = true; }); }"""
            )
            first.locator(".meta").click()  # select the row (not a button)
            page.keyboard.press(" ")  # space: play
            page.wait_for_function(
                "() => window.__played && document.querySelector('.clip audio').currentTime > 0",
                timeout=15000,
            )

            # Filter to the quiet engine, label three: two buttons and one keyboard shortcut.
            page.select_option("#f-engine", "quiet")
            rows = page.locator(".clip")
            assert rows.count() == 12
            ids = [rows.nth(i).get_attribute("data-cut-id") for i in range(3)]
            rows.nth(0).locator("button.bad").click()
            rows.nth(1).locator("button.good").click()
            page.keyboard.press("j")  # current: row 1 -> row 2
            page.keyboard.press("b")
            expected = {ids[0]: "bad", ids[1]: "good", ids[2]: "bad"}
            page.wait_for_function("() => document.querySelectorAll('.clip.bad').length === 2")
            assert read_csv(bench_dir / "labels.csv") == expected

            # Reload: the labels are shown again.
            page.reload()
            page.wait_for_selector(".clip")
            assert page.locator(".clip.bad").count() == 2
            assert page.locator(".clip.good").count() == 1
            row = page.locator(f'.clip[data-cut-id="{ids[1]}"]')
            assert "good" in row.get_attribute("class").split()
            assert "on" in row.locator("button.good").get_attribute("class").split()

            # Restart the server: still there.
            stop(server)
            server = start(bench_dir)
            page.goto(server.url)
            page.wait_for_selector(".clip")
            page.select_option("#f-labelled", "bad")
            shown = {
                page.locator(".clip").nth(i).get_attribute("data-cut-id")
                for i in range(page.locator(".clip").count())
            }
            assert shown == {ids[0], ids[2]}
            browser.close()
        assert read_csv(bench_dir / "labels.csv") == expected
    finally:
        stop(server)
