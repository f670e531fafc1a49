"""An on-disk cache of rewrites (sqlite), so that re-running or resuming never asks the LLM twice.

The key is a hash of the backend's fingerprint (name, model, options, prompt template), the
source and target languages, the context and the text. Worker processes share one file (sqlite
locks it); each process opens its own connection.

Example::

    cache = RewriteCache("out/rephrase/cache.sqlite")
    key = cache.key("openai_chat:3f2a...", "en", "fr", None, "What color is the cube?")
    cache.get_many([key])  # {} the first time
    cache.put_many({key: "De quelle couleur est le cube ?"})
"""

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path


class RewriteCache:
    """``key -> rewrite`` in an sqlite file; opened lazily, dropped when pickled."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "_conn": None}

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60)
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS rewrites (key TEXT PRIMARY KEY, text TEXT NOT NULL)"
            )
            self._conn.commit()
        return self._conn

    @staticmethod
    def key(
        fingerprint: str, source_language: str, language: str, context: str | None, text: str
    ) -> str:
        payload = json.dumps(
            [fingerprint, source_language, language, context, text], ensure_ascii=False
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = self.conn.execute(
                f"SELECT key, text FROM rewrites WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            out.update(rows.fetchall())
        return out

    def put_many(self, items: dict[str, str]) -> None:
        if items:
            with self.conn:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO rewrites (key, text) VALUES (?, ?)", items.items()
                )

    def __len__(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM rewrites").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
