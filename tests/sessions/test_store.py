"""Session stores: one suite run against every store, then what is SQLite's own."""

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
    SessionRecord,
    SessionStore,
    SessionStoreError,
    SQLiteSessionStore,
    generate_token,
    session_id,
)

pytestmark = pytest.mark.anyio

START = 1_700_000_000.25
HOUR = 3600.0
Store = MemorySessionStore | SQLiteSessionStore


class Clock:
    """A clock the test moves by hand, so expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def record(
    user_id: str | None = "alice",
    *,
    issued_at: float = START,
    ttl: float = HOUR,
    data: bytes = b'{"theme": "dark"}',
) -> SessionRecord:
    return SessionRecord(
        id=session_id(generate_token()),
        user_id=user_id,
        data=data,
        issued_at=issued_at,
        expires_at=issued_at + ttl,
        last_seen=issued_at + 0.125,
    )


def as_protocol(store: Store) -> SessionStore:
    return store  # mypy checks that both stores implement the protocol


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
    yield made
    await made.close()


# session_id


def test_session_id_is_the_sha256_hex_of_the_token() -> None:
    token = bytes(range(32))
    assert session_id(token) == hashlib.sha256(token).hexdigest()
    assert len(session_id(token)) == 64
    assert session_id(token) != session_id(bytes(32))


def test_record_expires_at_its_expiry_time() -> None:
    r = record(ttl=10)
    assert not r.expired(START + 9.999)
    assert r.expired(START + 10)


# Every store


async def test_missing_id_gives_none(store: Store) -> None:
    assert await as_protocol(store).get(session_id(b"nothing")) is None


@pytest.mark.parametrize("data", [b"", b"{}", bytes(range(256)), b"\x00" * 10_000])
@pytest.mark.parametrize("user_id", ["alice", None])
async def test_put_then_get_round_trips(store: Store, data: bytes, user_id: str | None) -> None:
    r = record(user_id, data=data)
    await store.put(r)
    assert await store.get(r.id) == r


async def test_put_replaces_and_moves_between_users(store: Store) -> None:
    anonymous = record(None)
    await store.put(anonymous)
    signed_in = replace(
        anonymous,
        user_id="bob",
        data=b'{"n": 2}',
        expires_at=anonymous.expires_at + HOUR,
        last_seen=anonymous.last_seen + 1,
    )
    await store.put(signed_in)
    assert await store.get(anonymous.id) == signed_in
    assert await store.list_user("bob") == [signed_in]

    moved = replace(signed_in, user_id="carol")
    await store.put(moved)
    assert await store.list_user("bob") == []
    assert await store.list_user("carol") == [moved]
    assert await store.delete_user("bob") == []
    assert await store.get(moved.id) == moved


async def test_expired_records_are_not_returned(store: Store, clock: Clock) -> None:
    r = record(ttl=10)
    await store.put(r)
    clock.now = START + 9.5
    assert await store.get(r.id) == r
    assert await store.list_user("alice") == [r]
    clock.now = START + 10
    assert await store.get(r.id) is None
    assert await store.list_user("alice") == []


async def test_delete(store: Store) -> None:
    kept, gone = record(), record()
    await store.put(kept)
    await store.put(gone)
    await store.delete(gone.id)
    await store.delete(gone.id)  # deleting what is not there is fine
    await store.delete(session_id(b"never stored"))
    assert await store.get(gone.id) is None
    assert await store.get(kept.id) == kept
    assert await store.list_user("alice") == [kept]


async def test_list_user_lists_that_users_live_sessions_oldest_first(
    store: Store, clock: Clock
) -> None:
    newest = record(issued_at=START + 30)
    oldest = record(issued_at=START - 20)
    middle = record(issued_at=START + 10)
    expired = record(issued_at=START - HOUR, ttl=HOUR)
    for r in (newest, oldest, record("bob"), record(None), middle, expired):
        await store.put(r)
    assert await store.list_user("alice") == [oldest, middle, newest]
    assert await store.list_user("nobody") == []


async def test_delete_user_closes_all_their_sessions(store: Store) -> None:
    alice = [record(), record(), record(issued_at=START - HOUR, ttl=HOUR)]  # last one expired
    bob, anonymous = record("bob"), record(None)
    for r in (*alice, bob, anonymous):
        await store.put(r)
    closed = await store.delete_user("alice")
    assert closed == sorted(r.id for r in alice)  # expired ones too: their streams may live
    assert await store.list_user("alice") == []
    for r in alice:
        assert await store.get(r.id) is None
    assert await store.get(bob.id) == bob
    assert await store.get(anonymous.id) == anonymous
    assert await store.delete_user("alice") == []
    assert await store.delete_user("nobody") == []


async def test_purge_expired_counts_what_it_removed(store: Store, clock: Clock) -> None:
    short, long = record(ttl=10), record(ttl=HOUR)
    await store.put(short)
    await store.put(long)
    assert await store.purge_expired() == 0
    clock.now = START + 10
    assert await store.purge_expired() == 1
    assert await store.list_user("alice") == [long]


async def test_expired_records_are_swept_on_put_once_the_interval_passed(
    store: Store, clock: Clock
) -> None:
    await store.put(record(ttl=1))
    clock.now = START + 30  # expired, but the sweep interval (60 s) has not passed
    await store.put(record())
    clock.now = START + 60
    await store.put(record())  # this put sweeps
    assert await store.purge_expired() == 0


async def test_concurrent_puts_all_land(store: Store) -> None:
    records = [record(issued_at=START + i) for i in range(40)]
    await asyncio.gather(*(store.put(r) for r in records))
    assert await store.list_user("alice") == records


async def test_a_closed_store_raises(store: Store) -> None:
    r = record()
    await store.put(r)
    await store.close()
    await store.close()  # closing twice is fine
    with pytest.raises(SessionStoreError, match="closed"):
        await store.get(r.id)
    with pytest.raises(SessionStoreError, match="closed"):
        await store.put(r)
    with pytest.raises(SessionStoreError, match="closed"):
        await store.delete(r.id)
    with pytest.raises(SessionStoreError, match="closed"):
        await store.list_user("alice")
    with pytest.raises(SessionStoreError, match="closed"):
        await store.delete_user("alice")
    with pytest.raises(SessionStoreError, match="closed"):
        await store.purge_expired()


# SQLite only


async def test_sqlite_survives_reopening(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "sessions.db"
    first = SQLiteSessionStore(path, clock=clock)
    records = [record(), record(), record("bob")]
    for r in records:
        await first.put(r)
    await first.close()

    second = SQLiteSessionStore(path, clock=clock)
    try:
        assert await second.get(records[0].id) == records[0]
        assert await second.list_user("alice") == sorted(records[:2], key=lambda r: r.id)
        assert await second.delete_user("bob") == [records[2].id]
    finally:
        await second.close()


_WRITER = """
import asyncio, os, sys
from livepages.sessions import SQLiteSessionStore, SessionRecord

async def main() -> None:
    store = SQLiteSessionStore(sys.argv[1])
    await store.put(SessionRecord(
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
        assert await store.get(id) == SessionRecord(
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
    await store.put(record())
    await store.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_does_not_block_the_event_loop(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteSessionStore(path, clock=clock, busy_timeout=60)
    await store.put(record())
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # hold the write lock
        r = record()
        put = asyncio.create_task(store.put(r))
        # Had put() run on the event loop, it would hold the loop inside SQLite's
        # busy wait until the lock was released; instead the loop keeps turning.
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert not put.done()
        workers = [t for t in threading.enumerate() if t.name.startswith("livepages-sqlite")]
        assert workers
        blocker.execute("COMMIT")
        await put
        assert await store.get(r.id) == r
    finally:
        blocker.close()
        await store.close()


async def test_sqlite_close_stops_its_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    store = SQLiteSessionStore(tmp_path / "sessions.db")
    await store.put(record())
    (worker,) = (t for t in set(threading.enumerate()) - before if "sqlite" in t.name)
    await store.close()
    worker.join(timeout=30)
    assert not worker.is_alive()


async def _expect_store_error(store: SQLiteSessionStore, match: str) -> None:
    try:
        with pytest.raises(SessionStoreError, match=match) as caught:
            await store.put(record())
        assert isinstance(caught.value.__cause__, sqlite3.Error)
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
        await store.put(record(data=bytes(500)))
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
            await store.get(session_id(b"x"))
        folder.mkdir()
        r = record()
        await store.put(r)
        assert await store.get(r.id) == r
    finally:
        await store.close()
