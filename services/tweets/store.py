"""SQLite storage for tweets: WAL journal, ``synchronous=FULL``, one writer thread.

A post is acknowledged only after its transaction commits with a full sync, so an
acknowledged tweet survives a crash of the process (the "nothing lost" check relies on it).
All database work runs on one dedicated thread so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS tweets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

SEED_TWEETS = [
    ("user0001", "just setting up my twttr"),
    ("user0002", "the timeline is fast today #failwhale"),
    ("user0003", "who else is watching the rollout dashboards? #sre"),
    ("user0004", "retries with jitter, always #sre"),
    ("user0005", "status page says all systems operational #failwhale"),
    ("user0006", "caches hide a lot of sins"),
]


def db_path(data_dir: Path, instance: str) -> Path:
    """Where the tweets instance ``instance`` keeps its database in the lab's data folder."""
    return data_dir / f"{instance}.sqlite3"


def stored_ids(path: Path) -> set[int]:
    """The IDs of every tweet committed to the database at ``path`` (none if it does not exist yet).

    Read-only and from any process: WAL lets it read while the service writes, and what it
    sees is exactly what a crash would leave, since a post is acknowledged only once committed.
    """
    if not path.exists():
        return set()
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT id FROM tweets")}
    finally:
        db.close()


class TweetStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        if db.execute("SELECT COUNT(*) FROM tweets").fetchone()[0] == 0:
            now = time.time()
            db.executemany(
                "INSERT INTO tweets (user, text, created_at) VALUES (?, ?, ?)",
                [(u, t, now - 60 * (len(SEED_TWEETS) - i)) for i, (u, t) in enumerate(SEED_TWEETS)],
            )
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    async def close(self) -> None:
        await self._run(self._close)
        self._pool.shutdown(wait=True)

    def _insert(self, user: str, text: str) -> dict[str, Any]:
        assert self._db is not None
        now = time.time()
        cur = self._db.execute("INSERT INTO tweets (user, text, created_at) VALUES (?, ?, ?)", (user, text, now))
        return {"id": cur.lastrowid, "user": user, "text": text, "created_at": now}

    def _recent(self, limit: int) -> list[dict[str, Any]]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT id, user, text, created_at FROM tweets ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [{"id": r[0], "user": r[1], "text": r[2], "created_at": r[3]} for r in rows]

    def _get(self, tweet_id: int) -> dict[str, Any] | None:
        assert self._db is not None
        r = self._db.execute("SELECT id, user, text, created_at FROM tweets WHERE id = ?", (tweet_id,)).fetchone()
        return None if r is None else {"id": r[0], "user": r[1], "text": r[2], "created_at": r[3]}

    async def insert(self, user: str, text: str) -> dict[str, Any]:
        return await self._run(self._insert, user, text)

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        return await self._run(self._recent, limit)

    async def get(self, tweet_id: int) -> dict[str, Any] | None:
        return await self._run(self._get, tweet_id)
