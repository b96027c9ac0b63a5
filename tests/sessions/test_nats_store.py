"""The NATS JetStream KV session store: the contract, then what is its own.

Every test gets a bucket of its own on the shared ``nats_server``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.js.errors
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace
from nats.aio.msg import Msg

from livepages.protocol import ClosedReason, SessionNotice
from livepages.sessions import (
    SessionConflict,
    SessionEntry,
    SessionRecord,
    SessionStore,
    SessionStoreError,
)
from livepages.sessions.nats import NATSSessionStore, _deletion
from livepages.sessions.store import SharedSessionStore
from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server
from tests.sessions.contract import Clock, StoreContract, record, record_of

pytestmark = pytest.mark.anyio

DAY = 24 * 3600.0


def bucket() -> str:
    """A bucket name no other test uses."""
    return f"test_sessions_{uuid.uuid4().hex}"


def as_protocol(store: NATSSessionStore) -> SessionStore:
    return store  # mypy checks that the store implements the protocol


class TestNATSStore(StoreContract):
    @pytest.fixture
    async def store(
        self, clock: Clock, tmp_path: Path, nats_server: str
    ) -> AsyncIterator[SessionStore]:
        made = NATSSessionStore(nats_server, bucket=bucket(), max_age=DAY, clock=clock)
        await made.start()
        try:
            yield made
        finally:
            await made.close()


@pytest.fixture
async def pair(nats_server: str) -> AsyncIterator[tuple[NATSSessionStore, NATSSessionStore]]:
    """Two stores on one bucket, each with its own connection: two processes."""
    name = bucket()
    one = NATSSessionStore(nats_server, bucket=name, max_age=DAY)
    two = NATSSessionStore(nats_server, bucket=name, max_age=DAY)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


def now_record(user_id: str | None = "alice", *, ttl: float = 3600.0) -> SessionRecord:
    """A record that starts now by the wall clock (the NATS server's time)."""
    return record(user_id, issued_at=time.time(), ttl=ttl)


async def test_two_stores_on_one_bucket_see_each_others_writes_and_conflicts(
    pair: tuple[NATSSessionStore, NATSSessionStore],
) -> None:
    one, two = pair
    r = now_record()
    revision = await one.create(r)
    assert await two.get(r.id) == SessionEntry(r, revision)
    with pytest.raises(SessionConflict):
        await two.create(r)
    outcomes = await asyncio.gather(
        one.update(replace(r, data=b"one"), revision),
        two.update(replace(r, data=b"two"), revision),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["SessionConflict", "int"]
    assert await one.list_user("alice") == await two.list_user("alice")
    entry = await one.get(r.id)
    assert entry is not None
    await two.delete(r.id)
    with pytest.raises(SessionConflict):
        await one.update(replace(r, data=b"back"), entry.revision)
    with pytest.raises(SessionConflict):
        await one.create(r)
    assert await record_of(one, r.id) is None


async def test_a_deletion_through_one_store_reaches_anothers_watch(
    pair: tuple[NATSSessionStore, NATSSessionStore],
) -> None:
    one, two = pair
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def on_deleted(id: str, notice: SessionNotice | None) -> None:
        await seen.put(id)

    watch = await two.watch_deleted(on_deleted)
    kept, gone = now_record(), now_record("bob")
    revision = await one.create(kept)
    await one.create(gone)
    await one.update(replace(kept, data=b"changed"), revision)  # not a deletion
    await one.delete(gone.id)
    assert await asyncio.wait_for(seen.get(), timeout=1) == gone.id
    ids = await one.delete_user("alice")
    assert ids == [kept.id]
    assert await asyncio.wait_for(seen.get(), timeout=1) == kept.id
    await watch.stop()
    await watch.stop()  # idempotent
    await one.delete(now_record().id)
    other = now_record()
    await one.create(other)
    await one.delete(other.id)
    await asyncio.sleep(0.2)
    assert seen.empty()


async def test_the_watch_hands_over_the_reason_kept_with_the_tombstone(
    pair: tuple[NATSSessionStore, NATSSessionStore],
) -> None:
    one, two = pair
    assert isinstance(one, SharedSessionStore)
    seen: asyncio.Queue[tuple[str, SessionNotice | None]] = asyncio.Queue()

    async def on_deleted(id: str, notice: SessionNotice | None) -> None:
        await seen.put((id, notice))

    await two.watch_deleted(on_deleted)
    replaced = SessionNotice(ClosedReason.REPLACED)
    by_tab = SessionNotice(ClosedReason.CLOSED, caller_tab="tab-1")
    first, second, third = now_record(), now_record("bob"), now_record()
    for r in (first, second, third):
        await one.create(r)
    await one.delete(first.id, replaced)
    await one.delete(first.id, by_tab)  # deleted already: no second tombstone, no event
    await one.delete_user("bob", by_tab)
    await one.delete(third.id)  # nothing said
    got = [await asyncio.wait_for(seen.get(), timeout=1) for _ in range(3)]
    assert got == [(first.id, replaced), (second.id, by_tab), (third.id, None)]
    entry = await one.get(first.id)
    assert entry is not None
    assert entry.record is None  # a tombstone, whatever it keeps


async def test_a_failing_watcher_is_logged_and_the_watch_goes_on(
    pair: tuple[NATSSessionStore, NATSSessionStore], caplog: pytest.LogCaptureFixture
) -> None:
    one, two = pair
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def on_deleted(id: str, notice: SessionNotice | None) -> None:
        await seen.put(id)
        raise RuntimeError("watcher bug")

    await two.watch_deleted(on_deleted)
    first, second = now_record(), now_record()
    for r in (first, second):
        await one.create(r)
        await one.delete(r.id)
    assert await asyncio.wait_for(seen.get(), timeout=1) == first.id
    assert await asyncio.wait_for(seen.get(), timeout=1) == second.id
    assert "watcher failed" in caplog.text


async def test_close_stops_the_watches(nats_server: str) -> None:
    store = NATSSessionStore(nats_server, bucket=bucket(), max_age=DAY)
    seen: list[str] = []

    async def on_deleted(id: str, notice: SessionNotice | None) -> None:
        seen.append(id)

    await store.watch_deleted(on_deleted)
    await store.close()
    with pytest.raises(SessionStoreError, match="closed"):
        await store.watch_deleted(on_deleted)


async def test_the_bucket_ttl_removes_keys(nats_server: str) -> None:
    # JetStream accepts a max_age down to 100 ms; one second keeps the test short.
    name = bucket()
    store = NATSSessionStore(nats_server, bucket=name, max_age=1.0)
    client = await nats.connect(nats_server)
    try:
        r = now_record(ttl=0.5)
        await store.create(r)
        kv = await client.jetstream().key_value(name)
        assert (await kv.get(r.id)).value
        deadline = time.monotonic() + 5
        while True:
            try:
                await kv.get(r.id)
            except nats.js.errors.KeyNotFoundError:
                break
            assert time.monotonic() < deadline, "the key outlived the bucket's TTL"
            await asyncio.sleep(0.1)
        assert await store.get(r.id) is None
        assert await store.list_user("alice") == []
        again = replace(r, expires_at=time.time() + 0.5)
        await store.create(again)  # the id is free again
        assert await record_of(store, r.id) == again
    finally:
        await client.close()
        await store.close()


async def test_a_record_outliving_the_bucket_ttl_is_refused(nats_server: str) -> None:
    store = NATSSessionStore(nats_server, bucket=bucket(), max_age=60)
    try:
        with pytest.raises(SessionStoreError, match="raise its max_age"):
            await store.create(now_record(ttl=3600))
        r = now_record(ttl=30)
        revision = await store.create(r)
        with pytest.raises(SessionStoreError, match="raise its max_age"):
            await store.update(replace(r, expires_at=time.time() + 3600), revision)
    finally:
        await store.close()


async def test_an_existing_bucket_is_bound_with_its_own_ttl(nats_server: str) -> None:
    name = bucket()
    first = NATSSessionStore(nats_server, bucket=name, max_age=60)
    second = NATSSessionStore(nats_server, bucket=name, max_age=DAY)
    try:
        r = now_record(ttl=30)
        await first.create(r)
        assert await record_of(second, r.id) == r
        with pytest.raises(SessionStoreError, match="60 s"):
            await second.create(now_record(ttl=3600))  # the bucket keeps keys 60 s
    finally:
        await first.close()
        await second.close()


async def test_a_shared_client_is_left_open(nats_server: str) -> None:
    client = await nats.connect(nats_server)
    try:
        name = bucket()
        store = NATSSessionStore(client, bucket=name, max_age=DAY)
        r = now_record()
        await store.create(r)
        await store.close()
        assert client.is_connected
        again = NATSSessionStore(client, bucket=name, max_age=DAY)
        assert await record_of(again, r.id) == r
        await again.close()
    finally:
        await client.close()


async def test_a_kv_delete_marker_counts_as_a_tombstone(nats_server: str) -> None:
    name = bucket()
    store = NATSSessionStore(nats_server, bucket=name, max_age=DAY)
    client = await nats.connect(nats_server)
    try:
        r = now_record()
        revision = await store.create(r)
        kv = await client.jetstream().key_value(name)
        await kv.delete(r.id)  # as `nats kv del` would
        entry = await store.get(r.id)
        assert entry is not None
        assert entry.record is None
        with pytest.raises(SessionConflict):
            await store.create(r)
        with pytest.raises(SessionConflict):
            await store.update(r, revision)
        assert await store.list_user("alice") == []
    finally:
        await client.close()
        await store.close()


async def test_a_corrupt_value_raises_store_error(nats_server: str) -> None:
    name = bucket()
    store = NATSSessionStore(nats_server, bucket=name, max_age=DAY)
    client = await nats.connect(nats_server)
    try:
        r = now_record()
        await store.create(r)
        kv = await client.jetstream().key_value(name)
        await kv.put(r.id, b"not msgpack \xc1")
        with pytest.raises(SessionStoreError, match="unreadable"):
            await store.get(r.id)
    finally:
        await client.close()
        await store.close()


async def test_an_unreachable_server_raises_store_error_in_time() -> None:
    store = NATSSessionStore("nats://127.0.0.1:1", bucket=bucket(), connect_timeout=0.5)
    try:
        with pytest.raises(SessionStoreError, match="NATS"):
            await store.start()
        started = time.monotonic()
        with pytest.raises(SessionStoreError, match="NATS"):
            await store.get(now_record().id)  # tries again
        assert time.monotonic() - started < 5
    finally:
        await store.close()


def test_without_nats_py_the_import_error_says_how_to_get_it() -> None:
    code = (
        "import sys; sys.modules['nats'] = None\n"
        "try:\n    import livepages.sessions.nats\n"
        "except ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "pip install 'livepages[nats]'" in result.stdout, result.stderr


async def test_nats_going_away_raises_store_error_not_a_hang(tmp_path: Path) -> None:
    # A server of its own, to stop it under the store.
    process, url = start_nats_server(nats_server_path(), tmp_path)
    store = NATSSessionStore(url, bucket=bucket(), max_age=DAY)
    try:
        r = now_record()
        await store.create(r)
        stop_nats_server(process)
        started = time.monotonic()
        for call in (lambda: store.get(r.id), lambda: store.list_user("alice")):
            with pytest.raises(SessionStoreError, match="NATS"):
                await call()
        assert time.monotonic() - started < 20  # 5 s (the JetStream timeout) per call
    finally:
        stop_nats_server(process)
        await store.close()


@given(st.binary(max_size=256), st.sampled_from([None, {}, {"KV-Operation": "DEL"}]))
def test_a_message_on_a_session_key_is_a_deletion_or_not(
    data: bytes, headers: dict[str, str] | None
) -> None:
    # The watch reads whatever is written to the bucket: never an exception.
    msg = Msg(_client=None, subject="$KV.b.x", data=data, headers=headers)  # type: ignore[arg-type]
    found = _deletion(msg)
    assert found is None or found.record is None
