"""The ``browse`` page, driven in headless Chromium (Playwright), as the labelling page's test.

Screenshots: when ``LT_SCREENSHOTS`` names a folder, ``browse.png`` is saved there (the docs use
it); otherwise into the test's tmp folder.
"""

import os
import shutil
import threading
from collections import Counter
from pathlib import Path

import pytest

from lhotse_triplets.browse.index import BrowseIndex
from lhotse_triplets.browse.records import iter_records
from lhotse_triplets.browse.server import BrowseServer

from .test_server import MISHEARD, REJECTED, make_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("browse-page"))


def start(path, cache) -> BrowseServer:
    server = BrowseServer(BrowseIndex.open(path, index_path=cache, progress=False), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
        )
        yield browser
        browser.close()


def total(page) -> int:
    return int(page.get_by_test_id("total").inner_text())


def wait_total(page, n: int) -> None:
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=total]').textContent === '{n}'"
    )


def check_plays_and_shows(page) -> None:
    """The first row's clip plays (``playing`` fires, time advances) and its image decodes."""
    page.evaluate(
        """() => { const a = document.querySelector('[data-testid=row] audio');
           window.__played = false;
           a.addEventListener('playing', () => { window.__played = true; }); }"""
    )
    page.locator("[data-testid=row] [data-testid=where]").first.click()  # select row 0
    page.keyboard.press(" ")  # space: play
    page.wait_for_function(
        "() => window.__played"
        " && document.querySelector('[data-testid=row] audio').currentTime > 0",
        timeout=15000,
    )
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=thumb]');"
        " return i && i.complete && i.naturalWidth > 0; }",
        timeout=15000,
    )


def screenshot_dir(tmp_path) -> Path:
    folder = Path(os.environ.get("LT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_browse_page_in_headless_chromium(run_dir, browser, tmp_path):
    records = list(iter_records(run_dir))
    languages = Counter(r.language for r in records)
    server = start(run_dir, tmp_path / "index.sqlite")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        page.wait_for_selector("[data-testid=row]")
        assert total(page) == len(records) == 32
        assert page.get_by_test_id("row").count() == 32  # one page of 50

        # One language: the count drops to that language's, every row is in it.
        page.get_by_test_id("filter-language").select_option("fr")
        wait_total(page, languages["fr"])
        wheres = page.locator("[data-testid=row] [data-testid=where]").all_inner_texts()
        assert len(wheres) == languages["fr"] and all(w.startswith("fr") for w in wheres)
        check_plays_and_shows(page)

        # The misheard word is marked: the said word struck out, the heard one inserted.
        page.get_by_test_id("filter-language").select_option("")
        page.get_by_test_id("search").fill(MISHEARD[1])
        wait_total(page, 1)
        row = page.get_by_test_id("row")
        assert row.get_by_test_id("diff-del").inner_text() == MISHEARD[0]
        assert row.get_by_test_id("diff-ins").inner_text() == MISHEARD[1]
        assert "diff-del" in row.get_by_test_id("diff-del").get_attribute("class")

        # Rejected clips show their reasons.
        page.get_by_test_id("search").fill("")
        page.get_by_test_id("filter-status").select_option("rejected")
        wait_total(page, len(REJECTED))
        reasons = page.locator("[data-testid=row] [data-testid=reason]").all_inner_texts()
        assert sorted(reasons) == sorted(r for v in REJECTED.values() for r in v.split(","))
        assert page.locator("[data-testid=row] [data-testid=status]").all_inner_texts() == [
            "rejected"
        ] * len(REJECTED)

        # A thread: the conversation's turns in order.
        page.get_by_test_id("filter-status").select_option("")
        wait_total(page, 32)
        page.get_by_test_id("thread-toggle").first.click()
        page.wait_for_selector("[data-testid=thread] [data-testid=turn]")

        # Pagination: 5 per page -> 7 pages; `n` goes to the next, "last" reaches the end.
        page.goto(server.url + "?per_page=5")
        page.wait_for_selector("[data-testid=row]")
        assert page.get_by_test_id("page-info").inner_text() == "page 1 of 7"
        first_ids = page.locator("[data-testid=row]").evaluate_all(
            "rows => rows.map(r => r.dataset.id)"
        )
        page.keyboard.press("n")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=page-info]').textContent === 'page 2 of 7'"
        )
        assert page.locator("[data-testid=row]").first.get_attribute("data-id") not in first_ids
        page.keyboard.press("j")  # selection moves down
        assert "selected" in page.get_by_test_id("row").nth(1).get_attribute("class")
        page.get_by_test_id("last-page").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=page-info]').textContent === 'page 7 of 7'"
        )
        assert page.get_by_test_id("row").count() == 32 - 6 * 5
        assert page.get_by_test_id("next-page").is_disabled()

        # The screenshot of the docs: English clips, a diff and images in view.
        page.goto(server.url + "?language=en&per_page=4")
        page.wait_for_selector("[data-testid=diff-del]")
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=thumb]')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        shot = screenshot_dir(tmp_path) / "browse.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert not errors, errors
    finally:
        server.shutdown()
        server.server_close()


def test_browse_page_on_the_quick_start(quickstart_run, browser, tmp_path):
    """The README's quick start, real models: count, one language, a clip plays, an image."""
    run_dir, _ = quickstart_run
    records = list(iter_records(run_dir))
    languages = Counter(r.language for r in records)
    server = start(run_dir, tmp_path / "index.sqlite")
    try:
        page = browser.new_page()
        page.goto(server.url)
        page.wait_for_selector("[data-testid=row]")
        assert total(page) == len(records) > 0
        language = languages.most_common()[-1][0]
        page.get_by_test_id("filter-language").select_option(language)
        wait_total(page, languages[language])
        check_plays_and_shows(page)
    finally:
        server.shutdown()
        server.server_close()
