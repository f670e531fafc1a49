"""The labelling page: served locally, driven in headless Chromium (Playwright)."""

import csv
import json
import shutil
import threading
import urllib.error
import urllib.request

import pytest

from lhotse_triplets.bench.label import LabelServer, LabelStore
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
