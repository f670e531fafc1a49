"""The browse index answers count / page / filters / sort / search / facets / conversation as a
brute force over ``iter_records`` does, and is reused until the input changes."""

import os
from collections import Counter

import pytest

from lhotse_triplets.browse.index import BrowseIndex, Filters, default_index_path
from lhotse_triplets.browse.records import iter_records
from tests.browse.test_records import make_run


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("index")) / "export"


@pytest.fixture(scope="module")
def index(export, tmp_path_factory):
    return BrowseIndex.open(export, tmp_path_factory.mktemp("ix") / "i.sqlite", progress=False)


def _select(records, f: Filters):
    out = []
    for r in records:
        if any(getattr(f, n) not in (None, getattr(r, n)) for n in ("language", "voice", "kind")):
            continue
        if f.reason is not None and f.reason not in r.reasons:
            continue
        fields = (r.id, r.text, r.asr_text, r.answer, r.source_text, r.conversation_id)
        if f.q and not any(f.q.casefold() in (v or "").casefold() for v in fields):
            continue
        out.append(r)
    return out


FILTERS = [
    Filters(),
    Filters(language="fr"),
    Filters(language="en", voice="v4", kind="nemo"),
    Filters(q="CYLINDER"),
    Filters(q="sample-000001", kind="shar"),
    Filters(language="de"),
]


def test_count_page_and_facets_equal_a_brute_force(export, index):
    records = list(iter_records(export))
    for f in FILTERS:
        expected = _select(records, f)
        assert index.count(f) == len(expected)
        got = [r for _, r in index.page(f, limit=10_000)]
        assert got == expected
        facets = index.facets(f)
        assert dict(facets["language"]) == dict(Counter(r.language for r in expected if r.language))
        assert dict(facets["kind"]) == dict(Counter(r.kind for r in expected))


def test_sort_by_score_puts_rows_without_it_last_and_pages_cover_all(export, index):
    records = list(iter_records(export))
    page = [r for _, r in index.page(Filters(), sort="duration", descending=True, limit=10_000)]
    with_d = sorted((r.duration for r in records if r.duration is not None), reverse=True)
    assert [r.duration for r in page[: len(with_d)]] == with_d
    page = [r for _, r in index.page(Filters(), sort="mos", limit=10_000)]
    have = [r for r in page if "mos" in r.scores]
    assert page[: len(have)] == have and all("mos" not in r.scores for r in page[len(have) :])
    assert "mos" in index.score_names()
    keys = [k for off in range(0, len(records), 7) for k, _ in index.page(offset=off, limit=7)]
    assert len(keys) == len(set(keys)) == len(records)
    key, record = index.page(Filters(kind="hf"), limit=1)[0]
    assert index.record(key) == record
    with pytest.raises(ValueError, match="Cannot sort"):
        index.page(sort="nope")


def test_conversation_is_a_thread_in_turn_order(export, index):
    _, first = index.page(Filters(kind="ttt"), limit=1)[0]
    thread = index.conversation(first.conversation_id, kind="ttt")
    assert thread and [r.turn for _, r in thread] == sorted(r.turn for _, r in thread)
    assert {r.kind for _, r in thread} == {"ttt"}


def test_reason_filter_and_facet(tmp_path):
    run = make_run(tmp_path)
    index = BrowseIndex.open(run, tmp_path / "i.sqlite", progress=False)
    records = list(iter_records(run))
    reasons = Counter(x for r in records for x in r.reasons)
    assert reasons and dict(index.facets()["reason"]) == dict(reasons)
    reason = next(iter(reasons))
    assert index.count(Filters(reason=reason)) == reasons[reason]
    assert index.count(Filters(status="rejected")) == sum(r.status == "rejected" for r in records)


def test_the_index_is_reused_until_the_input_changes(export, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = default_index_path(export)
    assert path.is_relative_to(tmp_path / "cache") and not path.is_relative_to(export)
    BrowseIndex.open(export, progress=False)
    built = path.stat().st_mtime_ns
    BrowseIndex.open(export, progress=False)
    assert path.stat().st_mtime_ns == built
    metadata = export / "files" / "metadata_en.jsonl"
    os.utime(metadata, ns=(built + 10**9, built + 10**9))
    BrowseIndex.open(export, progress=False)
    assert path.stat().st_mtime_ns != built
