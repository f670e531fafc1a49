"""The browse index: every :class:`~lhotse_triplets.browse.records.Record` of an input in a
SQLite file (stdlib ``sqlite3``), built once, so pages, filters, sorts and facets are queries.

Contract::

    @dataclass
    class Filters: language: str|None=None; voice: str|None=None; engine: str|None=None;
        status: str|None=None; reason: str|None=None; kind: str|None=None; q: str|None=None
        # q: case-insensitive substring over id, text, asr_text, answer, source_text,
        # conversation_id
    class BrowseIndex:
        root: Path                      # the input path (media locators are relative to it)
        @classmethod
        def open(cls, path, index_path=None, rebuild=False, progress=True) -> "BrowseIndex"
            # builds the SQLite index once, reuses it when the input has not changed (a stamp of
            # the input files' sizes+mtimes stored in the index); default index location: a
            # cache dir (~/.cache/lhotse-triplets/browse/<sha1 of resolved path>.sqlite,
            # XDG_CACHE_HOME honoured), NEVER inside the input (it may be read-only)
        def count(self, filters: Filters) -> int
        def page(self, filters: Filters, sort: str | None = None, descending: bool = False,
                 offset: int = 0, limit: int = 50) -> list[tuple[int, Record]]
            # (row key, record); sort by any score name, duration, id, language, voice, engine,
            # status; rows without the score last
        def record(self, key: int) -> Record
        def conversation(self, conversation_id: str, kind: str|None = None)
            -> list[tuple[int, Record]]   # a thread, turn order
        def facets(self, filters: Filters | None = None) -> dict[str, list[tuple[str, int]]]
            # language, voice, engine, status, reason, kind -> (value, count), most common first
        def score_names(self) -> list[str]
        def build_stats(self) -> dict  # rows, seconds it took to build, index bytes

``root`` is :func:`~lhotse_triplets.browse.records.media_root` of the input (the input folder,
a file's folder, or the run folder of a stage inside a run). The build streams records into the
database in batches inside one transaction (memory stays flat) and writes it to a temporary
file renamed into place, so a killed build leaves no half index. One index object may be used
from several threads (queries are serialised).

Example::

    >>> index = BrowseIndex.open("out/export")
    >>> index.count(Filters(language="fr", status="kept"))
    16
    >>> [record.id for _, record in index.page(Filters(q="cylinder"), sort="mos", limit=3)]
"""

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from lhotse.utils import Pathlike
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.browse.records import Record, input_kinds, iter_records, media_root

#: Bumped when the table layout changes (an older index is rebuilt).
SCHEMA = 2
#: Records per ``executemany`` batch while building.
BATCH = 2000
#: Columns a page may be sorted by besides the scores.
SORTABLE = ("duration", "id", "language", "voice", "engine", "status")
#: Facet columns (``reason`` comes from the reasons table).
FACETS = ("language", "voice", "engine", "status", "reason", "kind")
_TEXT = ("id", "kind", "conversation_id", "role", "language", "voice", "engine", "text")
_TEXT2 = ("source_text", "asr_text", "answer", "status")
_MEDIA = ("audio", "target_audio", "image")
_SEARCHED = ("id", "text", "asr_text", "answer", "source_text", "conversation_id")
_SCORE_COLUMNS = {name: f"s_{name}" for name in fields.SCORES}
_COLUMNS = (*_TEXT, "turn", *_TEXT2, "reasons", "duration", *_MEDIA, *_SCORE_COLUMNS.values())


@dataclass
class Filters:
    """What a page shows: equality on the columns, a reject/failure reason, a text search."""

    language: str | None = None
    voice: str | None = None
    engine: str | None = None
    status: str | None = None
    reason: str | None = None
    kind: str | None = None
    #: Case-insensitive substring of id, text, asr_text, answer, source_text, conversation_id.
    q: str | None = None


def cache_dir() -> Path:
    """Where indexes live: ``$XDG_CACHE_HOME/lhotse-triplets/browse`` (``~/.cache`` default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lhotse-triplets" / "browse"


def default_index_path(path: Pathlike) -> Path:
    """The cache file of ``path``'s index (never inside the input)."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode("utf-8")).hexdigest()
    return cache_dir() / f"{digest}.sqlite"


def input_stamp(path: Pathlike) -> str:
    """A digest of the names, sizes and modification times of every file the input is read
    from: it changes when the input does."""
    digest = hashlib.sha1(f"{SCHEMA}".encode())
    for kind, source in input_kinds(path):
        files = (
            [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        )
        for file in files:
            stat = file.stat()
            digest.update(f"{kind}\0{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _haystack(record: Record) -> str:
    return "\n".join(str(getattr(record, name) or "") for name in _SEARCHED).casefold()


def _row(record: Record) -> tuple:
    values = [getattr(record, name) for name in (*_TEXT, "turn", *_TEXT2)]
    values += [json.dumps(record.reasons, ensure_ascii=False), record.duration]
    values += [getattr(record, name) for name in _MEDIA]
    values += [record.scores.get(name) for name in _SCORE_COLUMNS]
    return (*values, _haystack(record))


def _create(db: sqlite3.Connection) -> None:
    columns = ", ".join(
        f"{c} {'REAL' if c.startswith('s_') or c == 'duration' else ''}" for c in _COLUMNS
    )
    db.execute(f"CREATE TABLE records (key INTEGER PRIMARY KEY, {columns}, haystack TEXT)")
    db.execute("CREATE TABLE reasons (key INTEGER, reason TEXT)")
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")


def _create_indexes(db: sqlite3.Connection) -> None:
    for column in ("language", "voice", "engine", "status", "kind", "duration", "id"):
        db.execute(f"CREATE INDEX i_{column} ON records ({column})")
    db.execute("CREATE INDEX i_conversation ON records (conversation_id, turn)")
    # What ``page()`` orders by (values first, then missing ones, then input order), both ways:
    # an index scan instead of sorting the whole table on every page.
    for column in [*_SCORE_COLUMNS.values(), "duration"]:
        for way in ("ASC", "DESC"):
            db.execute(
                f"CREATE INDEX i_{column}_{way.lower()} ON records "
                f"({column} IS NULL, {column} {way}, key)"
            )
    db.execute("CREATE INDEX i_reason ON reasons (reason, key)")
    db.execute("CREATE INDEX i_reason_key ON reasons (key)")


def _batches(records: Iterable[Record]) -> Iterator[list[tuple[int, Record]]]:
    batch: list[tuple[int, Record]] = []
    for key, record in enumerate(records, start=1):
        batch.append((key, record))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def build_index(path: Pathlike, index_path: Path, stamp: str, progress: bool = True) -> None:
    """Write the index of ``path`` to ``index_path`` (replacing it atomically)."""
    start = time.perf_counter()
    index_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_name(f".tmp.{os.getpid()}.{index_path.name}")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    try:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        _create(db)
        marks = ", ".join("?" * (len(_COLUMNS) + 2))
        rows = 0
        records = tqdm(iter_records(path), desc="Indexing", unit="record", disable=not progress)
        with db:
            for batch in _batches(records):
                db.executemany(
                    f"INSERT INTO records VALUES ({marks})", ((k, *_row(r)) for k, r in batch)
                )
                db.executemany(
                    "INSERT INTO reasons VALUES (?, ?)",
                    ((k, reason) for k, r in batch for reason in r.reasons),
                )
                rows += len(batch)
            _create_indexes(db)
            meta = {
                "schema": SCHEMA,
                "stamp": stamp,
                "rows": rows,
                "path": str(Path(path).resolve()),
            }
            meta["seconds"] = round(time.perf_counter() - start, 3)
            db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
        db.execute("ANALYZE")
    finally:
        db.close()
    tmp.replace(index_path)


def _read_meta(index_path: Path) -> dict[str, str]:
    try:
        db = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True)
        try:
            return dict(db.execute("SELECT name, value FROM meta"))
        finally:
            db.close()
    except sqlite3.Error:
        return {}


def _where(filters: Filters | None) -> tuple[str, list[Any]]:
    filters = filters or Filters()
    clauses, params = [], []
    for name in ("language", "voice", "engine", "status", "kind"):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{name} = ?")
            params.append(value)
    if filters.reason is not None:
        clauses.append("key IN (SELECT key FROM reasons WHERE reason = ?)")
        params.append(filters.reason)
    if filters.q:
        clauses.append("instr(haystack, ?) > 0")
        params.append(filters.q.casefold())
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _record(row: sqlite3.Row) -> Record:
    values = {
        f.name: row[f.name] for f in dataclass_fields(Record) if f.name not in ("scores", "reasons")
    }
    scores = {name: row[c] for name, c in _SCORE_COLUMNS.items() if row[c] is not None}
    return Record(**values, scores=scores, reasons=json.loads(row["reasons"] or "[]"))


class BrowseIndex:
    """An opened index (see the module docstring); make one with :meth:`open`."""

    def __init__(self, path: Path, index_path: Path, root: Path) -> None:
        self.path = path
        self.index_path = index_path
        self.root = root
        self._db = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        path: Pathlike,
        index_path: Pathlike | None = None,
        rebuild: bool = False,
        progress: bool = True,
    ) -> "BrowseIndex":
        """The index of ``path``, built unless an index of the unchanged input exists.

        :param index_path: the SQLite file (default :func:`default_index_path`).
        :param rebuild: build even when the existing index is current.

        Example::

            >>> index = BrowseIndex.open("out/export/shar", progress=False)
        """
        path = Path(path)
        index_path = Path(index_path) if index_path is not None else default_index_path(path)
        stamp = input_stamp(path)
        meta = _read_meta(index_path) if index_path.is_file() else {}
        if rebuild or meta.get("stamp") != stamp or meta.get("schema") != str(SCHEMA):
            build_index(path, index_path, stamp, progress=progress)
        return cls(path, index_path, media_root(path))

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, list(params)).fetchall()

    def count(self, filters: Filters | None = None) -> int:
        """How many records ``filters`` select."""
        where, params = _where(filters)
        return self._query(f"SELECT count(*) FROM records{where}", params)[0][0]

    def _order(self, sort: str | None, descending: bool) -> str:
        if sort is None:
            return "key"
        column = _SCORE_COLUMNS.get(sort) or (sort if sort in SORTABLE else None)
        if column is None:
            known = ", ".join([*SORTABLE, *_SCORE_COLUMNS])
            raise ValueError(f"Cannot sort by {sort!r}; known: {known}")
        return f"{column} IS NULL, {column} {'DESC' if descending else 'ASC'}, key"

    def page(
        self,
        filters: Filters | None = None,
        sort: str | None = None,
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> list[tuple[int, Record]]:
        """``(key, record)`` of one page of the selected records, sorted (records without the
        sort value last, then in input order).

        :raises ValueError: for an unknown sort column.
        """
        where, params = _where(filters)
        order = self._order(sort, descending)
        sql = f"SELECT * FROM records{where} ORDER BY {order} LIMIT ? OFFSET ?"
        rows = self._query(sql, [*params, max(0, int(limit)), max(0, int(offset))])
        return [(row["key"], _record(row)) for row in rows]

    def record(self, key: int) -> Record:
        """The record with row key ``key``.

        :raises KeyError: when there is none.
        """
        rows = self._query("SELECT * FROM records WHERE key = ?", [int(key)])
        if not rows:
            raise KeyError(f"no record with key {key}")
        return _record(rows[0])

    def conversation(
        self, conversation_id: str, kind: str | None = None
    ) -> list[tuple[int, Record]]:
        """The records of one conversation (of one input kind), in turn order."""
        sql = "SELECT * FROM records WHERE conversation_id = ?"
        params: list[Any] = [conversation_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        rows = self._query(sql + " ORDER BY turn IS NULL, turn, key", params)
        return [(row["key"], _record(row)) for row in rows]

    def facets(self, filters: Filters | None = None) -> dict[str, list[tuple[str, int]]]:
        """Per facet column, ``(value, count)`` over the selected records, most common first
        (``None`` values left out)."""
        where, params = _where(filters)
        out = {}
        for name in FACETS:
            if name == "reason" and not where:  # the reasons table alone: no scan of records
                sql = "SELECT reason, count(*) AS n FROM reasons GROUP BY reason"
                sql += " ORDER BY n DESC, reason"
            elif name == "reason":
                sql = (
                    f"SELECT reason, count(*) AS n FROM reasons WHERE key IN "
                    f"(SELECT key FROM records{where}) GROUP BY reason ORDER BY n DESC, reason"
                )
            else:
                sql = (
                    f"SELECT {name}, count(*) AS n FROM records{where}"
                    f"{' AND' if where else ' WHERE'} {name} IS NOT NULL "
                    f"GROUP BY {name} ORDER BY n DESC, {name}"
                )
            out[name] = [(row[0], row[1]) for row in self._query(sql, params)]
        return out

    def score_names(self) -> list[str]:
        """The scores at least one record has, in :data:`~lhotse_triplets.fields.SCORES` order."""
        return [
            name
            for name, column in _SCORE_COLUMNS.items()
            if self._query(f"SELECT 1 FROM records WHERE {column} IS NOT NULL LIMIT 1")
        ]

    def build_stats(self) -> dict:
        """``{"rows", "seconds", "bytes"}``: records, build time, index file size."""
        meta = dict(self._query("SELECT name, value FROM meta"))
        return {
            "rows": int(meta["rows"]),
            "seconds": float(meta["seconds"]),
            "bytes": self.index_path.stat().st_size,
        }

    def __enter__(self) -> "BrowseIndex":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
