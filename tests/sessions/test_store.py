"""Session stores: the contract suite for each store, then what is each store's own."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from subprocess import PIPE

import pytest
from msgspec.structs import replace

from livepages.sessions import (
    MemorySessionStore,
    SessionConflict,
    SessionEntry,
    SessionRecord,
    SessionStore,
    SessionStoreError,
    SQLiteSessionStore,
    generate_token,
    session_id,
)
from tests.sessions.contract import HOUR, START, Clock, StoreContract, record, record_of

pytestmark = pytest.mark.anyio

Store = MemorySessionStore | SQLiteSessionStore


def as_protocol(store: Store) -> SessionStore:
    return store  # mypy checks that both stores implement the protocol


class TestMemoryStore(StoreContract):
    def make_store(self, clock: Clock, tmp_path: Path) -> SessionStore:
        return MemorySessionStore(clock=clock, sweep_interval=60)


class TestSQLiteStore(StoreContract):
    def make_store(self, clock: Clock, tmp_path: Path) -> SessionStore:
        return SQLiteSessionStore(tmp_path / "sessions.db", clock=clock, sweep_interval=60)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
async def store(
    request: pytest.FixtureRequest, clock: Clock, tmp_path: Path
) -> AsyncIterator[Store]:
    made: Store
    if request.param == "memory":
        made = MemorySessionStore(clock=clock, sweep_interval=60)
    else:
        made = SQLiteSessionStore(tmp_path / "sessions.db", clock=clock, sweep_interval=60)
    await as_protocol(made).start()
    yield made
    await made.close()


# session_id and records


def test_session_id_is_the_sha256_hex_of_the_token() -> None:
    token = bytes(range(32))
    assert session_id(token) == hashlib.sha256(token).hexdigest()
    assert len(session_id(token)) == 64
    assert session_id(token) != session_id(bytes(32))


def test_record_expires_at_its_expiry_time() -> None:
    r = record(ttl=10)
    assert not r.expired(START + 9.999)
    assert r.expired(START + 10)


# Beyond the contract: both stores purge and sweep


async def test_purge_expired_counts_what_it_removed(store: Store, clock: Clock) -> None:
    short, long, deleted = record(ttl=10), record(ttl=HOUR), record(ttl=10)
    for r in (short, long, deleted):
        await store.create(r)
    await store.delete(deleted.id)
    assert await store.purge_expired() == 0
    clock.now = START + 10
    assert await store.purge_expired() == 1  # the tombstone goes too, but is no record
    assert await store.list_user("alice") == [long]
    assert await store.get(deleted.id) is None


async def test_expired_records_are_swept_on_a_write_once_the_interval_passed(
    store: Store, clock: Clock
) -> None:
    await store.create(record(ttl=1))
    clock.now = START + 30  # expired, but the sweep interval (60 s) has not passed
    await store.create(record())
    clock.now = START + 60
    await store.create(record())  # this write sweeps
    assert await store.purge_expired() == 0


async def test_a_closed_store_cannot_purge(store: Store) -> None:
    await store.close()
    with pytest.raises(SessionStoreError, match="closed"):
        await store.purge_expired()


# SQLite only


async def test_sqlite_survives_reopening(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "sessions.db"
    first = SQLiteSessionStore(path, clock=clock)
    records = [record(), record(), record("bob")]
    revisions = [await first.create(r) for r in records]
    await first.close()

    second = SQLiteSessionStore(path, clock=clock)
    try:
        assert await second.get(records[0].id) == SessionEntry(records[0], revisions[0])
        assert await second.list_user("alice") == sorted(records[:2], key=lambda r: r.id)
        assert await second.delete_user("bob") == [records[2].id]
    finally:
        await second.close()


_WRITER = """
import asyncio, os, sys
from livepages.sessions import SQLiteSessionStore, SessionRecord

async def main() -> None:
    store = SQLiteSessionStore(sys.argv[1])
    await store.create(SessionRecord(
        id=sys.argv[2], user_id="alice", data=b"from another process",
        issued_at=1.5, expires_at=4e9, last_seen=2.5,
    ))
    print("written", flush=True)
    os._exit(0)  # no close(), no clean shutdown: the write must already be durable

asyncio.run(main())
"""


async def test_sqlite_survives_a_process_that_exits_without_closing(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    id = session_id(generate_token())
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER, str(path), id, stdout=PIPE, stderr=PIPE
    )
    stdout, stderr = await asyncio.wait_for(writer.communicate(), timeout=60)
    assert writer.returncode == 0, stderr.decode()
    assert stdout == b"written\n"
    store = SQLiteSessionStore(path)
    try:
        assert await record_of(store, id) == SessionRecord(
            id=id,
            user_id="alice",
            data=b"from another process",
            issued_at=1.5,
            expires_at=4e9,
            last_seen=2.5,
        )
    finally:
        await store.close()


async def test_sqlite_uses_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteSessionStore(path)
    await store.start()
    await store.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_does_not_block_the_event_loop(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteSessionStore(path, clock=clock, busy_timeout=60)
    await store.create(record())
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # hold the write lock
        r = record()
        create = asyncio.create_task(store.create(r))
        # Had create() run on the event loop, it would hold the loop inside SQLite's
        # busy wait until the lock was released; instead the loop keeps turning.
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert not create.done()
        workers = [t for t in threading.enumerate() if t.name.startswith("livepages-sqlite")]
        assert workers
        blocker.execute("COMMIT")
        await create
        assert await record_of(store, r.id) == r
    finally:
        blocker.close()
        await store.close()


async def test_sqlite_close_stops_its_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    store = SQLiteSessionStore(tmp_path / "sessions.db")
    await store.start()
    (worker,) = (t for t in set(threading.enumerate()) - before if "sqlite" in t.name)
    await store.close()
    worker.join(timeout=30)
    assert not worker.is_alive()


async def _expect_store_error(store: SQLiteSessionStore, match: str) -> None:
    try:
        with pytest.raises(SessionStoreError, match=match) as caught:
            await store.start()
        assert isinstance(caught.value.__cause__, sqlite3.Error)
        with pytest.raises(SessionStoreError, match=match):
            await store.create(record())
        with pytest.raises(SessionStoreError, match=match):
            await store.get(session_id(b"x"))
    finally:
        await store.close()


async def test_sqlite_unopenable_path_raises_store_error(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "missing" / "sessions.db")
    await _expect_store_error(store, "unable to open database file")


async def test_sqlite_directory_path_raises_store_error(tmp_path: Path) -> None:
    await _expect_store_error(SQLiteSessionStore(tmp_path), "unable to open database file")


async def test_sqlite_corrupt_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is not a database, just some bytes\n" * 200)
    await _expect_store_error(SQLiteSessionStore(path), "not a database")


async def test_sqlite_truncated_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteSessionStore(path)
    for _ in range(50):
        await store.create(record(data=bytes(500)))
    await store.close()
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * (len(data) - 100))  # header kept, pages wrecked
    await _expect_store_error(SQLiteSessionStore(path), "malformed|not a database")


async def test_sqlite_unknown_schema_version_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version = 7")
    await _expect_store_error(SQLiteSessionStore(path), "unknown schema version 7")


async def test_sqlite_recovers_once_the_path_becomes_usable(tmp_path: Path, clock: Clock) -> None:
    folder = tmp_path / "later"
    store = SQLiteSessionStore(folder / "sessions.db", clock=clock)
    try:
        with pytest.raises(SessionStoreError):
            await store.start()
        folder.mkdir()
        r = record()
        await store.create(r)
        assert await record_of(store, r.id) == r
    finally:
        await store.close()


_VERSION_1 = (
    """CREATE TABLE livepages_sessions (
        id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT,
        data BLOB NOT NULL,
        issued_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        last_seen REAL NOT NULL
    )""",
    "CREATE INDEX livepages_sessions_user ON livepages_sessions (user_id)",
    "CREATE INDEX livepages_sessions_expiry ON livepages_sessions (expires_at)",
    "PRAGMA user_version = 1",
)


async def test_sqlite_upgrades_a_version_1_database(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "sessions.db"
    old = record()
    with closing(sqlite3.connect(path)) as db:
        for statement in _VERSION_1:
            db.execute(statement)
        db.execute(
            "INSERT INTO livepages_sessions VALUES (?, ?, ?, ?, ?, ?)",
            (old.id, old.user_id, old.data, old.issued_at, old.expires_at, old.last_seen),
        )
        db.commit()
    store = SQLiteSessionStore(path, clock=clock)
    try:
        entry = await store.get(old.id)
        assert entry is not None
        assert entry.record == old
        changed = replace(old, data=b"changed")
        await store.update(changed, entry.revision)
        assert await record_of(store, old.id) == changed
        await store.delete(old.id)
        with pytest.raises(SessionConflict):
            await store.create(old)
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)


async def test_sqlite_revision_checks_hold_between_processes(tmp_path: Path, clock: Clock) -> None:
    # Two stores on one file: two connections, as two processes would have.
    path = tmp_path / "sessions.db"
    one, two = SQLiteSessionStore(path, clock=clock), SQLiteSessionStore(path, clock=clock)
    try:
        r = record()
        revision = await one.create(r)
        with pytest.raises(SessionConflict):
            await two.create(r)
        outcomes = await asyncio.gather(
            one.update(replace(r, data=b"one"), revision),
            two.update(replace(r, data=b"two"), revision),
            return_exceptions=True,
        )
        assert sorted(type(outcome).__name__ for outcome in outcomes) == ["SessionConflict", "int"]
        entry = await one.get(r.id)
        assert entry is not None
        await two.delete(r.id)
        with pytest.raises(SessionConflict):
            await one.update(replace(r, data=b"back"), entry.revision)
        assert await record_of(one, r.id) is None
    finally:
        await one.close()
        await two.close()
