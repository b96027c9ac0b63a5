"""The store's records in a SQLite file: they survive restarts, no server needed.

Every process on the machine may open the same file (WAL mode): each commit is
one ``BEGIN IMMEDIATE`` transaction, so its checks and its writes are one step
for all of them. SQLite is one machine: processes on several machines need a
backend on a shared database server.

Records are kept as JSON text (readable with the ``sqlite3`` shell, and queried
with ``json_extract``). The key column has no declared type, so the integer 1
and the text "1" stay distinct keys.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from livepages.sqlite import SQLiteWorker, immediate, open_database
from livepages.store.backend import Check, Key, Row, Scalar, Scan, Write
from livepages.store.errors import StoreConflict, StoreUnavailable

__all__ = ["SQLiteBackend"]

_T = TypeVar("_T")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS livepages_store_records (
        collection TEXT NOT NULL,
        key NOT NULL,
        version INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (collection, key)
    ) WITHOUT ROWID""",
    # The version of each collection (bumped by every commit that writes in it; a
    # record's version is its collection's at its last write) and its key counter.
    """CREATE TABLE IF NOT EXISTS livepages_store_collections (
        name TEXT PRIMARY KEY NOT NULL,
        version INTEGER NOT NULL DEFAULT 0,
        last_key INTEGER NOT NULL DEFAULT 0
    )""",
)
_READ = "SELECT key, data, version FROM livepages_store_records WHERE collection = ? AND key = ?"
_SCAN = "SELECT key, data, version FROM livepages_store_records WHERE collection = ?"
_FIELD = " AND json_extract(data, ?) IS ?"
_ORDER = " ORDER BY key"
_RECORD_VERSION = "SELECT version FROM livepages_store_records WHERE collection = ? AND key = ?"
_COLLECTION_VERSION = "SELECT version FROM livepages_store_collections WHERE name = ?"
_BUMP = """INSERT INTO livepages_store_collections (name, version) VALUES (?, 1)
    ON CONFLICT (name) DO UPDATE SET version = version + 1
    RETURNING version"""
_PUT = """INSERT INTO livepages_store_records (collection, key, version, data)
    VALUES (?, ?, ?, ?)
    ON CONFLICT (collection, key) DO UPDATE SET version = excluded.version, data = excluded.data"""
_DELETE = "DELETE FROM livepages_store_records WHERE collection = ? AND key = ? RETURNING 1"
# One statement: no other process can take the same key between a read and a write.
_NEXT_KEY = """INSERT INTO livepages_store_collections (name, last_key)
    VALUES (:name, COALESCE((SELECT max(key) FROM livepages_store_records
        WHERE collection = :name AND typeof(key) = 'integer'), 0) + 1)
    ON CONFLICT (name) DO UPDATE SET last_key = max(last_key, COALESCE((SELECT max(key)
        FROM livepages_store_records WHERE collection = :name AND typeof(key) = 'integer'), 0)) + 1
    RETURNING last_key"""


class SQLiteBackend:
    """Keeps a store's records in the SQLite database at ``path`` (created if missing).

    ``":memory:"`` keeps them in this process only, until it closes. A writer
    waits up to ``busy_timeout`` seconds (default 5) for another process's lock,
    then the write fails with ``StoreUnavailable`` and nothing is written.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        self._worker = SQLiteWorker(self._connect, name="livepages-sqlite-store")

    def __repr__(self) -> str:
        return f"<SQLiteBackend {self.path!r}>"

    async def start(self) -> None:
        """Open the database (and set up its tables) now rather than on first use."""
        await self._run(lambda db: None)

    async def close(self) -> None:
        """Close the database and stop the worker thread; later calls raise."""
        await self._worker.close()

    async def read(self, collection: str, key: Key) -> Row | None:
        """The record under ``key``, or ``None``."""

        def read(db: sqlite3.Connection) -> Row | None:
            row = db.execute(_READ, (collection, key)).fetchone()
            return None if row is None else Row(*row)

        return await self._run(read)

    async def scan(self, collection: str, where: Mapping[str, Scalar]) -> Scan:
        """The matching records, by key, and the collection's version, from one snapshot."""
        statement = _SCAN + _FIELD * len(where) + _ORDER
        parameters: list[Scalar] = [collection]
        for name, value in where.items():
            parameters += [json_path(name), value]

        def scan(db: sqlite3.Connection) -> Scan:
            db.execute("BEGIN")  # one read snapshot for the rows and the version
            try:
                rows = [Row(*row) for row in db.execute(statement, parameters)]
                version = _collection_version(db, collection)
            finally:
                db.execute("COMMIT")
            return Scan(rows, version)

        return await self._run(scan)

    async def commit(self, checks: Sequence[Check], writes: Sequence[Write]) -> list[Write]:
        """Check, then write, in one ``BEGIN IMMEDIATE`` transaction."""

        def commit(db: sqlite3.Connection) -> list[Write]:
            with immediate(db):
                for check in checks:
                    _verify(db, check)
                versions = {
                    name: db.execute(_BUMP, (name,)).fetchone()[0]
                    for name in dict.fromkeys(write.collection for write in writes)
                }
                return [write for write in writes if _apply(db, write, versions)]

        return await self._run(commit)

    async def next_key(self, collection: str) -> int:
        """A new integer key, never handed out before in ``collection``."""

        def next_key(db: sqlite3.Connection) -> int:
            key: int = db.execute(_NEXT_KEY, {"name": collection}).fetchone()[0]
            return key

        return await self._run(next_key)

    async def _run(self, call: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._worker.closed:
            raise StoreUnavailable("the store is closed")
        try:
            return await self._worker.run(call)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"store {self.path!r}: {error}") from error

    def _connect(self) -> sqlite3.Connection:
        # Runs in the worker thread.
        db = open_database(self.path, self.busy_timeout)
        try:
            with immediate(db):  # two processes opening a new file: one after the other
                for statement in _SCHEMA:
                    db.execute(statement)
        except BaseException:
            db.close()
            raise
        return db


def json_path(name: str) -> str:
    """The JSON path of the top-level field ``name`` (quoted: any name is one field)."""
    if '"' in name:
        raise ValueError(f"a field name cannot contain a double quote: {name!r}")
    return f'$."{name}"'


def _collection_version(db: sqlite3.Connection, collection: str) -> int:
    row = db.execute(_COLLECTION_VERSION, (collection,)).fetchone()
    return 0 if row is None else int(row[0])


def _verify(db: sqlite3.Connection, check: Check) -> None:
    """Raise ``StoreConflict`` unless what ``check`` read is still at its version."""
    if check.key is None:
        if _collection_version(db, check.collection) != check.version:
            raise StoreConflict(
                check.collection,
                None,
                f"{check.collection} changed since this transaction read it; nothing was written",
            )
        return
    row = db.execute(_RECORD_VERSION, (check.collection, check.key)).fetchone()
    current = 0 if row is None else int(row[0])
    if current == check.version:
        return
    name = f"{check.collection} {check.key!r}"
    if check.version == 0:
        problem = "already exists"
    elif current == 0:
        problem = "was deleted since this transaction read it"
    else:
        problem = "was changed by another write since this transaction read it"
    raise StoreConflict(check.collection, check.key, f"{name} {problem}; nothing was written")


def _apply(db: sqlite3.Connection, write: Write, versions: Mapping[str, int]) -> bool:
    """Apply one write; whether it changed anything."""
    if write.data is None:
        return db.execute(_DELETE, (write.collection, write.key)).fetchone() is not None
    db.execute(_PUT, (write.collection, write.key, versions[write.collection], write.data))
    return True
