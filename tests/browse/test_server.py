"""The ``browse`` server: its JSON API and media over a dummy run, and its guards (no browser)."""

import copy
import http.client
import io
import json
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner
from lhotse import CutSet
from PIL import Image

from lhotse_triplets import fields
from lhotse_triplets.browse.index import BrowseIndex
from lhotse_triplets.browse.records import iter_records
from lhotse_triplets.browse.server import BrowseServer, word_diff
from lhotse_triplets.config import load_config
from lhotse_triplets.pipeline import run_pipeline
from lhotse_triplets.testing.configs import DUMMY_RUN

#: What the run fixture changes in its gate stage (the dummy models hear every word right and
#: give every clip the same scores): one misheard word, two rejected clips.
MISHEARD = ("gray", "grey")
REJECTED = {1: "mos", 2: "similarity,error_rate"}


def make_run(root, formats=("shar", "triplets")):
    """A dummy run in ``root/run`` whose gate stage has one clip with a misheard word and two
    rejected clips (see :data:`REJECTED`)."""
    cfg = copy.deepcopy(DUMMY_RUN)
    cfg["export"] = {"formats": list(formats)}
    (root / "run.yaml").write_text(yaml.safe_dump(cfg))
    run_dir = root / "run"
    run_pipeline(load_config(root / "run.yaml"), run_dir, progress=False)
    shard = sorted((run_dir / "gate").glob("cuts.*.jsonl.gz"))[0]
    cuts = list(CutSet.from_file(shard))
    changed = []
    for i, cut in enumerate(cuts):
        custom = cut.custom or {}
        if i == 0:
            words = custom[fields.ASR_TEXT].split()
            words[words.index(MISHEARD[0])] = MISHEARD[1]  # the sample's first prompt has "gray"
            cut = cut.with_custom(fields.ASR_TEXT, " ".join(words))
        elif i in REJECTED:
            cut = cut.with_custom(fields.REJECT_REASON, REJECTED[i])
        changed.append(cut)
    CutSet.from_cuts(changed).to_file(shard)
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("browse"))


def start(path, cache) -> BrowseServer:
    index = BrowseIndex.open(path, index_path=cache / "index.sqlite", progress=False)
    server = BrowseServer(index, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serving(path, cache):
    server = start(path, cache)
    yield server, list(iter_records(path))
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def served(run_dir, tmp_path_factory):
    """The server over the run directory (its gate stage: 32 clips, 2 rejected)."""
    yield from serving(run_dir, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def served_export(run_dir, tmp_path_factory):
    """The server over the run's export (Shar and triplets: every clip twice)."""
    yield from serving(run_dir / "export", tmp_path_factory.mktemp("cache"))


def get(server, path: str) -> dict:
    with urllib.request.urlopen(server.url + path.lstrip("/")) as r:
        assert r.headers["Content-Type"] == "application/json"
        return json.loads(r.read())


def status_of(server, path: str, headers=None) -> int:
    """Status of a GET sent exactly as given (no client-side path normalisation)."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        for name, value in {"Host": f"{host}:{port}", **(headers or {})}.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_items_count_every_record_and_pages_cover_them_once(served):
    server, records = served
    body = get(server, "/api/items?per_page=7")
    assert body["total"] == len(records) == 32
    assert body["pages"] == 5 and body["page"] == 1 and len(body["items"]) == 7
    seen = []
    for page in range(1, body["pages"] + 1):
        items = get(server, f"/api/items?per_page=7&page={page}")["items"]
        seen += [(i["kind"], i["id"]) for i in items]
    assert sorted(seen) == sorted((r.kind, r.id) for r in records)
    last = get(server, "/api/items?per_page=7&page=999")  # clamped to the last page
    assert last["page"] == 5 and len(last["items"]) == 32 - 4 * 7
    item = last["items"][0]
    assert {"key", "diff", "media", "text", "asr_text", "scores", "status", "reasons"} <= set(item)
    assert not {"audio", "image", "target_audio"} & set(item)  # locators never leave the server
    assert get(server, f"/api/item/{item['key']}") == item


def test_filters_search_and_facets_agree_with_the_records(served):
    server, records = served
    fr = get(server, "/api/items?language=fr&per_page=500")
    assert fr["total"] == sum(r.language == "fr" for r in records) == 16
    assert {i["language"] for i in fr["items"]} == {"fr"}
    rejected = get(server, "/api/items?status=rejected")
    assert rejected["total"] == 2
    reasons = sorted(r for i in rejected["items"] for r in i["reasons"])
    assert reasons == ["error_rate", "mos", "similarity"]
    assert get(server, "/api/items?reason=mos")["total"] == 1
    assert get(server, "/api/items?status=kept")["total"] == 30
    one = records[5]
    assert get(server, f"/api/items?q={one.id.upper()}")["total"] == 1
    facets = get(server, "/api/facets")
    assert facets["total"] == 32
    languages = dict(map(tuple, facets["facets"]["language"]))
    assert languages == dict(Counter(r.language for r in records))
    assert dict(map(tuple, facets["facets"]["status"])) == {"kept": 30, "rejected": 2}
    assert {"mos", "similarity", "duration", "id"} <= set(facets["sorts"])
    only_fr = get(server, "/api/facets?language=fr")
    assert dict(map(tuple, only_fr["facets"]["language"])) == {"fr": 16}


def test_export_kinds_and_their_media(served_export):
    server, records = served_export
    assert get(server, "/api/items")["total"] == len(records) == 64
    kinds = dict(map(tuple, get(server, "/api/facets")["facets"]["kind"]))
    assert kinds == {"shar": 32, "triplets": 32}
    for kind in kinds:
        item = get(server, f"/api/items?kind={kind}&per_page=1")["items"][0]
        check_media(server, item)


def test_sort_by_score_and_duration(served):
    server, records = served
    up = get(server, "/api/items?sort=duration&per_page=500")["items"]
    down = get(server, "/api/items?sort=duration&desc=1&per_page=500")["items"]
    durations = [i["duration"] for i in up]
    assert durations == sorted(durations) and durations[0] < durations[-1]
    assert [i["duration"] for i in down] == sorted(durations, reverse=True)
    by_mos = [i["scores"].get("mos") for i in get(server, "/api/items?sort=mos")["items"]]
    assert by_mos == sorted(by_mos)
    assert status_of(server, "/api/items?sort=nonsense") == 400
    assert status_of(server, "/api/items?page=x") == 400


def test_diff_marks_the_misheard_word(served):
    server, _ = served
    (item,) = get(server, f"/api/items?q={MISHEARD[1]}")["items"]
    changed = [d for d in item["diff"] if d[0] != "equal"]
    assert changed == [["replace", [MISHEARD[0]], [MISHEARD[1]]]]
    assert word_diff("A red cube.", "a red cube") == [
        ["equal", ["A", "red", "cube."], ["a", "red", "cube"]]
    ]
    assert [d[0] for d in word_diff("one two three", "one three four")] == [
        "equal",
        "delete",
        "equal",
        "insert",
    ]
    assert word_diff(None, "x") == []


def test_conversation_is_a_thread_in_turn_order(served):
    server, records = served
    turns = [r for r in records if r.conversation_id == "sample-000001"]
    assert len({r.turn for r in turns}) > 1
    body = get(server, "/api/conversation?id=sample-000001")
    assert sorted(i["id"] for i in body["items"]) == sorted(r.id for r in turns)
    order = [i["turn"] for i in body["items"]]
    assert order == sorted(order)
    assert status_of(server, "/api/conversation") == 400


def check_media(server, item) -> None:
    """The item's audio and image are served and decode."""
    with urllib.request.urlopen(server.url + item["media"]["audio"].lstrip("/")) as r:
        assert r.headers["Content-Type"].startswith("audio/")
        audio, sr = sf.read(io.BytesIO(r.read()))
    assert sr > 0 and len(audio) / sr == pytest.approx(item["duration"], abs=0.05)
    with urllib.request.urlopen(server.url + item["media"]["image"].lstrip("/")) as r:
        assert r.headers["Content-Type"].startswith("image/")
        assert Image.open(io.BytesIO(r.read())).size[0] > 0
    assert item["media"]["target_audio"] is None


def test_media_is_served_and_decodes(served):
    server, _ = served
    item = get(server, "/api/items?per_page=1")["items"][0]
    check_media(server, item)
    # A byte range (the audio player seeking): 206 with the asked bytes.
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", item["media"]["audio"], headers={"Range": "bytes=0-3"})
    response = conn.getresponse()
    assert response.status == 206 and len(response.read()) == 4
    assert response.headers["Content-Range"].startswith("bytes 0-3/")
    conn.close()


def test_paths_never_come_from_the_client(served):
    server, _ = served
    key = get(server, "/api/items?per_page=1")["items"][0]["key"]
    assert status_of(server, f"/media/{key}/audio") == 200
    refused = [
        f"/media/{key}/../../../../etc/passwd",
        f"/media/{key}/%2e%2e/%2e%2e/etc/passwd",
        f"/media/{key}/%2E%2E%2Fsummary.json",
        "/media/..%2f..%2fsummary.json/audio",
        "/media//etc/passwd",
        "/media/%2Fetc%2Fpasswd/audio",
        f"/media/{key}/audio%00.png",
        f"/media/{key}/recording",  # not a media field
        f"/media/{key}/target_audio",  # the record has none
        "/media/99999999/audio",  # no such key
        "/media/-1/audio",
        "/../summary.json",
        "/static/../../summary.json",
        "/api/item/99999999",
    ]
    for path in refused:
        assert status_of(server, path) == 404, path


def test_wrong_host_is_refused(served):
    server, _ = served
    port = server.server_address[1]
    assert status_of(server, "/api/items", {"Host": f"evil.example:{port}"}) == 421
    assert status_of(server, "/", {"Host": "127.0.0.1:1"}) == 421
    assert status_of(server, "/", {"Host": f"localhost:{port}"}) == 200


def test_page_is_self_contained(served):
    server, _ = served
    with urllib.request.urlopen(server.url) as r:
        html = r.read().decode()
        policy = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "http://" not in html and "https://" not in html  # nothing from the internet
    for testid in ("total", "filter-language", "next-page", "last-page", "search"):
        assert f'data-testid="{testid}"' in html


def test_browse_command(run_dir, tmp_path, monkeypatch):
    """``browse PATH --port 0 --index FILE --no-open`` reaches ``serve`` with its options."""
    import lhotse_triplets.browse.server as server_module
    from lhotse_triplets.bin.browse_cmds import browse

    called = {}
    monkeypatch.setattr(server_module, "serve", lambda *a, **k: called.update(args=a, **k))
    index = tmp_path / "i.sqlite"
    args = [str(run_dir), "--port", "0", "--index", str(index), "--no-open", "--rebuild"]
    result = CliRunner().invoke(browse, args)
    assert result.exit_code == 0, result.output
    assert called["args"] == (str(run_dir),)
    assert called["port"] == 0 and called["host"] == "127.0.0.1"
    assert called["index_path"] == str(index) and called["rebuild"] and not called["open_browser"]
    assert "--no-open" in CliRunner().invoke(browse, ["--help"]).output


def test_every_output_kind_is_browsed_and_described(tmp_path):
    """browse and describe on each export kind of a run, a stage directory, a dialogue manifest:
    the page's API lists every record of the input, its media decode, describe counts them."""
    from click.testing import CliRunner

    from lhotse_triplets.bin.cli import cli
    from lhotse_triplets.testing.dialogues import dialogue_turn_cuts

    from .test_records import FORMATS
    from .test_records import make_run as make_full_run

    (tmp_path / "full").mkdir()
    run = make_full_run(tmp_path / "full")
    dialogue = tmp_path / "turns.jsonl.gz"
    dialogue_turn_cuts(tmp_path / "wav", {"c1": 4, "c2": 2}).to_file(dialogue)
    exports = {
        kind: run / "export" / d
        for kind, d in [
            ("shar", "shar"),
            ("triplets", "triplets.jsonl"),
            ("triplet_files", "files"),
            ("nemo", "nemo"),
            ("hf", "hf"),
            ("duplex", "duplex"),
            ("ttt", "ttt"),
        ]
    }
    assert sorted(exports) == sorted(FORMATS)
    inputs = {**exports, "stage": run / "gate", "manifest": dialogue}
    for kind, path in inputs.items():
        server = start(path, tmp_path / f"cache-{kind}")
        try:
            records = list(iter_records(path))
            page = get(server, "/api/items?per_page=500")
            assert page["total"] == len(records) > 0, kind
            item = next(i for i in page["items"] if i["media"]["audio"])
            with urllib.request.urlopen(server.url + item["media"]["audio"].lstrip("/")) as r:
                audio, sr = sf.read(io.BytesIO(r.read()))
            assert len(audio) > 0 and sr > 0, kind
        finally:
            server.shutdown()
            server.server_close()
        result = CliRunner().invoke(cli, ["describe", str(path), "--json"])
        assert result.exit_code == 0, (kind, result.output)
        assert json.loads(result.stdout)["records"] == len(records), kind
