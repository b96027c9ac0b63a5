"""A session store in a SQLite file: sessions survive restarts, no server needed.

Its SQLite calls run off the event loop, in one worker thread that owns the
connection (``livepages.sqlite``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

import msgspec

from livepages.sessions.store import (
    SessionConflict,
    SessionEntry,
    SessionRecord,
    SessionStoreError,
)
from livepages.sqlite import SQLiteWorker, immediate, open_database

__all__ = ["SQLiteSessionStore"]

_T = TypeVar("_T")

_SCHEMA_VERSION = 2
_TABLE = """CREATE TABLE IF NOT EXISTS livepages_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT,
    data BLOB NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    deleted INTEGER NOT NULL DEFAULT 0
)"""
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS livepages_sessions_user ON livepages_sessions (user_id)",
    "CREATE INDEX IF NOT EXISTS livepages_sessions_expiry ON livepages_sessions (expires_at)",
)
# Version 1 had neither revisions nor tombstones.
_UPGRADE_FROM_1 = (
    "ALTER TABLE livepages_sessions ADD COLUMN revision INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE livepages_sessions ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0",
)
# What to run on a database at each known version to bring it to this one.
_UPGRADES: dict[int, tuple[str, ...]] = {0: (_TABLE,), 1: _UPGRADE_FROM_1, _SCHEMA_VERSION: ()}
_SELECT = (
    "SELECT id, user_id, data, issued_at, expires_at, last_seen, revision, deleted"
    " FROM livepages_sessions"
)
_GET = _SELECT + " WHERE id = ? AND expires_at > ?"
_LIST_USER = (
    _SELECT + " WHERE user_id = ? AND expires_at > ? AND NOT deleted ORDER BY issued_at, id"
)
# One statement each, so the check and the write are one step for every process
# sharing the file. An expired row (record or tombstone) counts as absent.
_CREATE = """INSERT INTO livepages_sessions
        (id, user_id, data, issued_at, expires_at, last_seen)
    VALUES (:id, :user_id, :data, :issued_at, :expires_at, :last_seen)
    ON CONFLICT (id) DO UPDATE SET
        user_id = excluded.user_id, data = excluded.data, issued_at = excluded.issued_at,
        expires_at = excluded.expires_at, last_seen = excluded.last_seen,
        revision = revision + 1, deleted = 0
    WHERE livepages_sessions.expires_at <= :now
    RETURNING revision"""
_UPDATE = """UPDATE livepages_sessions SET
        user_id = :user_id, data = :data, issued_at = :issued_at,
        expires_at = :expires_at, last_seen = :last_seen, revision = revision + 1
    WHERE id = :id AND revision = :revision AND NOT deleted AND expires_at > :now
    RETURNING revision"""
# A tombstone keeps the id, its expiry and a revision: not the user nor the data.
_BURY = (
    "UPDATE livepages_sessions SET deleted = 1, user_id = NULL, data = x'', revision = revision + 1"
)
_DELETE = _BURY + " WHERE id = ? AND NOT deleted"
_DELETE_USER = _BURY + " WHERE user_id = ? AND NOT deleted RETURNING id"
_Row = tuple[str, str | None, bytes, float, float, float, int, int]


class SQLiteSessionStore:
    """Keeps sessions in the SQLite database at ``path`` (created if missing).

    The database is opened in WAL mode by :meth:`start` (or the first call), and
    errors in ``path`` (unwritable, not a database) surface as
    :class:`SessionStoreError`; a later call tries again. Several processes may
    share the file; a writer waits up to ``busy_timeout`` seconds for another's
    lock. Each revision check and its write are one SQL statement, so they hold
    across processes. Expired rows and tombstones are deleted at most once every
    ``sweep_interval`` seconds (on a write). ``clock`` returns the current Unix time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        sweep_interval: float = 60.0,
        busy_timeout: float = 5.0,
    ) -> None:
        self._path = os.fspath(path)
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval
        self._busy_timeout = busy_timeout
        self._worker = SQLiteWorker(self._connect, name="livepages-sqlite-sessions")

    async def start(self) -> None:
        """Open the database (and set up its schema) now rather than on first use."""
        await self._run(lambda db: None)

    async def get(self, id: str) -> SessionEntry | None:
        """The entry under ``id`` (a tombstone if deleted), or ``None`` if absent or expired."""
        now = self._clock()

        def get(db: sqlite3.Connection) -> _Row | None:
            row: _Row | None = db.execute(_GET, (id, now)).fetchone()
            return row

        row = await self._run(get)
        if row is None:
            return None
        revision, deleted = row[6], row[7]
        return SessionEntry(None if deleted else _record(row), revision)

    async def create(self, record: SessionRecord) -> int:
        """Store a new record; :class:`SessionConflict` if its id is live or deleted."""
        return await self._write(_CREATE, record, "exists or was deleted")

    async def update(self, record: SessionRecord, revision: int) -> int:
        """Replace the record at ``revision``; :class:`SessionConflict` if it is not there."""
        return await self._write(_UPDATE, record, "is gone or at another revision", revision)

    async def delete(self, id: str) -> None:
        """Delete the record under ``id`` for good, leaving a tombstone. Idempotent."""

        def delete(db: sqlite3.Connection) -> None:
            db.execute(_DELETE, (id,))

        await self._run(delete)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """Return the user's unexpired sessions, oldest first."""
        now = self._clock()

        def list_user(db: sqlite3.Connection) -> list[_Row]:
            rows: list[_Row] = db.execute(_LIST_USER, (user_id, now)).fetchall()
            return rows

        return [_record(row) for row in await self._run(list_user)]

    async def delete_user(self, user_id: str) -> list[str]:
        """Delete all of the user's sessions (expired ones too); return their ids."""

        def delete_user(db: sqlite3.Connection) -> list[str]:
            # One statement, so every row deleted is reported, even one that another
            # process adds meanwhile.
            rows = db.execute(_DELETE_USER, (user_id,)).fetchall()
            return sorted(id for (id,) in rows)

        return await self._run(delete_user)

    async def purge_expired(self) -> int:
        """Remove every expired record (and tombstone) now; how many records were removed."""
        now = self._clock()
        return await self._run(lambda db: _delete_expired(db, now))

    async def _write(
        self, statement: str, record: SessionRecord, conflict: str, revision: int | None = None
    ) -> int:
        now = self._clock()
        sweep = now >= self._next_sweep
        if sweep:
            self._next_sweep = now + self._sweep_interval
        values = {**msgspec.structs.asdict(record), "now": now, "revision": revision}

        def write(db: sqlite3.Connection) -> int | None:
            if sweep:
                _delete_expired(db, now)
            row: tuple[int] | None = db.execute(statement, values).fetchone()
            return None if row is None else row[0]

        written = await self._run(write)
        if written is None:
            raise SessionConflict(f"session {record.id} {conflict}")
        return written

    async def close(self) -> None:
        """Close the database and stop the worker thread; later calls raise."""
        await self._worker.close()

    async def _run(self, call: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._worker.closed:
            raise SessionStoreError("the session store is closed")
        try:
            return await self._worker.run(call)
        except sqlite3.Error as error:
            raise SessionStoreError(f"session store {self._path!r}: {error}") from error

    def _connect(self) -> sqlite3.Connection:
        # Runs in the worker thread.
        return _connect(self._path, self._busy_timeout)


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    db = open_database(path, busy_timeout)
    try:
        # Two processes opening a new file set up the schema one after the other,
        # each seeing the other's version.
        with immediate(db):
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version not in _UPGRADES:
                raise sqlite3.DatabaseError(
                    f"unknown schema version {version} (this livepages knows {_SCHEMA_VERSION})"
                )
            for statement in (*_UPGRADES[version], *_INDEXES):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
    except BaseException:
        db.close()
        raise
    return db


def _delete_expired(db: sqlite3.Connection, now: float) -> int:
    """Delete expired rows, tombstones included; how many of them were records."""
    rows = db.execute(
        "DELETE FROM livepages_sessions WHERE expires_at <= ? RETURNING deleted", (now,)
    ).fetchall()
    return sum(not deleted for (deleted,) in rows)


def _record(row: _Row) -> SessionRecord:
    id, user_id, data, issued_at, expires_at, last_seen, _, _ = row
    return SessionRecord(
        id=id,
        user_id=user_id,
        data=data,
        issued_at=issued_at,
        expires_at=expires_at,
        last_seen=last_seen,
    )
