"""The session store contract: what every ``SessionStore`` must do, as tests.

A store's test module runs the whole suite by subclassing :class:`StoreContract`::

    class TestMyStore(StoreContract):
        def make_store(self, clock: Clock, tmp_path: Path) -> SessionStore:
            return MyStore(..., clock=clock)

The store must read the time from ``clock`` (a :class:`Clock` the tests move by
hand), so that expiry needs no sleeping. A store that needs more set-up (a server)
overrides the ``store`` fixture instead; it yields a started store and closes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from msgspec.structs import replace

from livepages.sessions import (
    SessionConflict,
    SessionEntry,
    SessionRecord,
    SessionStore,
    SessionStoreError,
    generate_token,
    session_id,
)

__all__ = ["HOUR", "START", "Clock", "StoreContract", "record"]

START = 1_700_000_000.25
HOUR = 3600.0


class Clock:
    """A clock the test moves by hand."""

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
    """A new session record with a random id."""
    return SessionRecord(
        id=session_id(generate_token()),
        user_id=user_id,
        data=data,
        issued_at=issued_at,
        expires_at=issued_at + ttl,
        last_seen=issued_at + 0.125,
    )


async def stored(store: SessionStore, r: SessionRecord) -> int:
    """Create ``r``; its revision."""
    revision = await store.create(r)
    assert isinstance(revision, int)
    return revision


async def record_of(store: SessionStore, id: str) -> SessionRecord | None:
    """The live record under ``id``, or None (absent, expired or deleted)."""
    entry = await store.get(id)
    return None if entry is None else entry.record


@pytest.mark.anyio
class StoreContract:
    """The tests every session store passes. Subclass it and define ``make_store``."""

    def make_store(self, clock: Clock, tmp_path: Path) -> SessionStore:
        """A new, empty store that reads the time from ``clock``."""
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    async def store(self, clock: Clock, tmp_path: Path) -> AsyncIterator[SessionStore]:
        made = self.make_store(clock, tmp_path)
        await made.start()
        try:
            yield made
        finally:
            await made.close()

    # -- create and get ------------------------------------------------------------

    async def test_a_missing_id_gives_none(self, store: SessionStore) -> None:
        assert await store.get(session_id(b"nothing")) is None

    @pytest.mark.parametrize("data", [b"", b"{}", bytes(range(256)), b"\x00" * 10_000])
    @pytest.mark.parametrize("user_id", ["alice", None])
    async def test_create_then_get_round_trips(
        self, store: SessionStore, data: bytes, user_id: str | None
    ) -> None:
        r = record(user_id, data=data)
        revision = await stored(store, r)
        assert await store.get(r.id) == SessionEntry(r, revision)

    async def test_create_refuses_an_id_that_is_taken(self, store: SessionStore) -> None:
        first = record()
        revision = await stored(store, first)
        with pytest.raises(SessionConflict):
            await store.create(replace(first, user_id="mallory", data=b"theirs"))
        assert await store.get(first.id) == SessionEntry(first, revision)
        assert await store.list_user("mallory") == []

    async def test_start_is_idempotent(self, store: SessionStore) -> None:
        await store.start()
        r = record()
        await stored(store, r)
        await store.start()
        assert await record_of(store, r.id) == r

    # -- update at a revision ------------------------------------------------------

    async def test_update_at_the_revision_read_writes_a_new_revision(
        self, store: SessionStore
    ) -> None:
        r = record()
        first = await stored(store, r)
        changed = replace(r, data=b'{"n": 2}', last_seen=r.last_seen + 1)
        second = await store.update(changed, first)
        assert second != first
        assert await store.get(r.id) == SessionEntry(changed, second)
        third = await store.update(r, second)
        assert third not in (first, second)
        assert await store.get(r.id) == SessionEntry(r, third)

    async def test_update_at_a_stale_revision_is_refused(self, store: SessionStore) -> None:
        r = record()
        stale = await stored(store, r)
        current = await store.update(replace(r, data=b"first"), stale)
        with pytest.raises(SessionConflict):
            await store.update(replace(r, data=b"second"), stale)
        assert await store.get(r.id) == SessionEntry(replace(r, data=b"first"), current)

    async def test_update_of_a_record_never_created_is_refused(self, store: SessionStore) -> None:
        r = record()
        with pytest.raises(SessionConflict):
            await store.update(r, 1)
        assert await store.get(r.id) is None

    async def test_update_moves_a_session_between_users(self, store: SessionStore) -> None:
        anonymous = record(None)
        revision = await stored(store, anonymous)
        signed_in = replace(
            anonymous,
            user_id="bob",
            data=b'{"n": 2}',
            expires_at=anonymous.expires_at + HOUR,
            last_seen=anonymous.last_seen + 1,
        )
        revision = await store.update(signed_in, revision)
        assert await record_of(store, anonymous.id) == signed_in
        assert await store.list_user("bob") == [signed_in]

        moved = replace(signed_in, user_id="carol")
        await store.update(moved, revision)
        assert await store.list_user("bob") == []
        assert await store.list_user("carol") == [moved]
        assert await store.delete_user("bob") == []
        assert await record_of(store, moved.id) == moved

    async def test_concurrent_updates_at_one_revision_only_one_wins(
        self, store: SessionStore
    ) -> None:
        r = record()
        revision = await stored(store, r)
        versions = [replace(r, data=f'{{"n": {n}}}'.encode()) for n in range(8)]
        outcomes = await asyncio.gather(
            *(store.update(version, revision) for version in versions), return_exceptions=True
        )
        [(winner, new_revision)] = [
            (version, outcome)
            for version, outcome in zip(versions, outcomes, strict=True)
            if isinstance(outcome, int)
        ]
        lost = [outcome for outcome in outcomes if not isinstance(outcome, int)]
        assert len(lost) == 7
        assert all(isinstance(outcome, SessionConflict) for outcome in lost)
        assert await store.get(r.id) == SessionEntry(winner, new_revision)

    async def test_concurrent_creates_of_one_id_only_one_wins(self, store: SessionStore) -> None:
        r = record()
        versions = [replace(r, data=f'{{"n": {n}}}'.encode()) for n in range(8)]
        outcomes = await asyncio.gather(
            *(store.create(version) for version in versions), return_exceptions=True
        )
        won = [n for n, outcome in enumerate(outcomes) if isinstance(outcome, int)]
        assert len(won) == 1
        assert await record_of(store, r.id) == versions[won[0]]

    async def test_concurrent_creates_all_land(self, store: SessionStore) -> None:
        records = [record(issued_at=START + i) for i in range(40)]
        await asyncio.gather(*(store.create(r) for r in records))
        assert await store.list_user("alice") == records

    # -- delete is final -----------------------------------------------------------

    async def test_delete(self, store: SessionStore) -> None:
        kept, gone = record(), record()
        await stored(store, kept)
        await stored(store, gone)
        await store.delete(gone.id)
        await store.delete(gone.id)  # deleting what is not there is fine
        await store.delete(session_id(b"never stored"))
        assert await record_of(store, gone.id) is None
        assert await record_of(store, kept.id) == kept
        assert await store.list_user("alice") == [kept]

    async def test_a_deleted_session_is_a_tombstone_until_it_would_have_expired(
        self, store: SessionStore, clock: Clock
    ) -> None:
        r = record(ttl=10)
        revision = await stored(store, r)
        await store.delete(r.id)
        tombstone = await store.get(r.id)
        assert tombstone is not None
        assert tombstone.record is None
        assert tombstone.revision != revision
        clock.now = START + 10
        assert await store.get(r.id) is None

    async def test_update_after_delete_is_refused(self, store: SessionStore) -> None:
        r = record()
        revision = await stored(store, r)
        await store.delete(r.id)
        with pytest.raises(SessionConflict):
            await store.update(replace(r, data=b"brought back"), revision)
        assert await record_of(store, r.id) is None
        assert await store.list_user("alice") == []

    async def test_create_after_delete_is_refused_until_the_record_would_have_expired(
        self, store: SessionStore, clock: Clock
    ) -> None:
        r = record(ttl=10)
        await stored(store, r)
        await store.delete(r.id)
        clock.now = START + 9.5
        with pytest.raises(SessionConflict):
            await store.create(r)
        assert await record_of(store, r.id) is None
        clock.now = START + 10  # the session is over anyway: its id may be used again
        again = replace(r, expires_at=START + 20)
        await stored(store, again)
        assert await record_of(store, r.id) == again

    async def test_delete_user_deletes_all_their_sessions_for_good(
        self, store: SessionStore
    ) -> None:
        alice = [record(), record(), record(issued_at=START - HOUR, ttl=HOUR)]  # last expired
        bob, anonymous = record("bob"), record(None)
        revisions = [await stored(store, r) for r in (*alice, bob, anonymous)]
        closed = await store.delete_user("alice")
        assert closed == sorted(r.id for r in alice)  # expired ones too: their streams may live
        assert await store.list_user("alice") == []
        for r in alice:
            assert await record_of(store, r.id) is None
        with pytest.raises(SessionConflict):
            await store.create(alice[0])
        with pytest.raises(SessionConflict):
            await store.update(alice[1], revisions[1])
        assert await record_of(store, bob.id) == bob
        assert await record_of(store, anonymous.id) == anonymous
        assert await store.delete_user("alice") == []
        assert await store.delete_user("nobody") == []

    # -- listing and expiry ----------------------------------------------------------

    async def test_list_user_lists_that_users_live_sessions_oldest_first(
        self, store: SessionStore
    ) -> None:
        newest = record(issued_at=START + 30)
        oldest = record(issued_at=START - 20)
        middle = record(issued_at=START + 10)
        expired = record(issued_at=START - HOUR, ttl=HOUR)
        deleted = record()
        for r in (newest, oldest, record("bob"), record(None), middle, expired, deleted):
            await stored(store, r)
        await store.delete(deleted.id)
        assert await store.list_user("alice") == [oldest, middle, newest]
        assert await store.list_user("nobody") == []

    async def test_list_user_breaks_ties_by_id(self, store: SessionStore) -> None:
        records = [record() for _ in range(5)]
        for r in records:
            await stored(store, r)
        assert await store.list_user("alice") == sorted(records, key=lambda r: r.id)

    async def test_expired_records_are_not_returned(
        self, store: SessionStore, clock: Clock
    ) -> None:
        r = record(ttl=10)
        revision = await stored(store, r)
        clock.now = START + 9.5
        assert await store.get(r.id) == SessionEntry(r, revision)
        assert await store.list_user("alice") == [r]
        clock.now = START + 10
        assert await store.get(r.id) is None
        assert await store.list_user("alice") == []

    async def test_an_expired_record_cannot_be_updated_but_its_id_can_be_created(
        self, store: SessionStore, clock: Clock
    ) -> None:
        r = record(ttl=10)
        revision = await stored(store, r)
        clock.now = START + 10
        with pytest.raises(SessionConflict):
            await store.update(replace(r, expires_at=START + HOUR), revision)
        assert await store.get(r.id) is None
        again = replace(r, expires_at=START + HOUR)
        new_revision = await stored(store, again)
        assert await store.get(r.id) == SessionEntry(again, new_revision)

    # -- close -----------------------------------------------------------------------

    async def test_a_closed_store_raises(self, store: SessionStore) -> None:
        r = record()
        revision = await stored(store, r)
        await store.close()
        await store.close()  # closing twice is fine
        calls: list[Callable[[], Awaitable[object]]] = [
            store.start,
            lambda: store.get(r.id),
            lambda: store.create(record()),
            lambda: store.update(r, revision),
            lambda: store.delete(r.id),
            lambda: store.list_user("alice"),
            lambda: store.delete_user("alice"),
        ]
        for call in calls:
            with pytest.raises(SessionStoreError, match="closed"):
                await call()
