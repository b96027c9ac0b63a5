"""A session store on NATS JetStream KV: one set of sessions for every process that reaches NATS.

Everything lives in one KV bucket (``livepages_sessions`` by default):

- ``<id>``, the session id (64 hex digits, one key token), holds a :class:`_Stored`
  encoded with msgpack: the record, or ``None`` for a tombstone, and when it
  expires; a tombstone also keeps why the session was deleted (a
  ``SessionNotice``: closed or replaced, and the tab that did it), which
  :meth:`NATSSessionStore.watch_deleted` hands to every process. The key's KV
  revision is the session's revision.
- ``<user-key>.<id>`` (two tokens) is an empty entry in a user's index, where
  ``<user-key>`` is the SHA-256 hex of the user id (any user id, a KV-safe key).

Tombstones are values, not KV delete markers, because a tombstone must last exactly
until the deleted record's ``expires_at`` and a delete marker cannot carry it.
A KV delete marker written by someone else (``nats kv del``) still counts as a
tombstone, with no end but the bucket's TTL.

The index is written before the record and trusted only as a hint: listing reads
each record and keeps those that are the user's, so an entry left behind by a
failed write or a session that moved to another user is harmless. Entries are
removed once their record is a tombstone (no write brings it back); the rest go
with the bucket's TTL.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable
from contextlib import suppress
from typing import NamedTuple

import msgspec

try:
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js.api import DeliverPolicy
    from nats.js.kv import KeyValue
except ImportError as error:  # pragma: no cover - the nats extra is installed in tests
    raise ImportError("NATSSessionStore needs nats-py: pip install 'livepages[nats]'") from error

from livepages.buckets import Bucket, Server
from livepages.decoding import DECODE_ERRORS
from livepages.protocol import SessionNotice
from livepages.sessions.store import (
    Deleted,
    SessionConflict,
    SessionEntry,
    SessionRecord,
    SessionStoreError,
)

__all__ = ["NATSSessionStore", "SessionWatch"]

logger = logging.getLogger("livepages.sessions")

#: Two weeks (``SessionManager``'s default ``max_age``) and a day for clock skew.
DEFAULT_MAX_AGE = 15 * 24 * 3600.0

# Headers that mark a KV delete or purge (nats-server 2.11 also marks age-outs).
_KV_OPERATION = "KV-Operation"
_MARKER_REASON = "Nats-Marker-Reason"


class _Stored(msgspec.Struct, frozen=True, array_like=True):
    """The value under a session's key: the record (``None``: deleted) and its end, and
    for a tombstone why it was deleted, if the deleter said."""

    expires_at: float
    record: SessionRecord | None
    notice: SessionNotice | None = None  # last: values written without it still decode


class _Found(NamedTuple):
    """What :meth:`NATSSessionStore._read` finds under a session's key."""

    record: SessionRecord | None  # None: a tombstone
    expires_at: float
    revision: int


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Stored).decode


class SessionWatch:
    """A running :meth:`NATSSessionStore.watch_deleted`; :meth:`stop` ends it."""

    def __init__(self, subscription: Subscription, forget: Callable[[SessionWatch], None]) -> None:
        self._subscription = subscription
        self._forget = forget
        self._stopped = False

    async def stop(self) -> None:
        """Stop watching. Idempotent; a lost connection is not an error here."""
        if self._stopped:
            return
        self._stopped = True
        self._forget(self)
        # A lost connection took the subscription with it: nothing to undo then.
        with suppress(nats.errors.Error, OSError):
            await self._subscription.unsubscribe()


class NATSSessionStore:
    """Keeps sessions in a NATS JetStream KV bucket, shared by every process.

    ``server`` is a NATS URL, or a cluster's URLs separated by commas, or the
    ``NATSOptions`` of a connection (credentials, TLS) (the store connects, and
    closes the connection in :meth:`close`); a connected
    ``nats.aio.client.Client`` to share one connection per process; or a function
    that returns such a client when the store first needs it (so a store can be
    made before the connection it shares, e.g. ``lambda: broker.client``; it raises
    :class:`SessionStoreError` if it has none). The store leaves a client it did
    not make open. :meth:`start` creates the bucket, or binds to it if it exists
    (its settings are then kept as they are).

    ``max_age`` is the bucket's TTL in seconds: each write keeps a key that long,
    so it must be at least the session lifetime (``SessionManager.max_age``); a
    write of a record that would outlive it raises :class:`SessionStoreError`.
    ``expires_at`` is checked on every read, so expiry is exact whatever the TTL.
    ``replicas`` is the bucket's replica count in a NATS cluster. A connection the
    store makes gives up its first attempt after ``connect_timeout`` seconds (the
    next call tries again) and, once made, reconnects for as long as it takes.
    ``clock`` returns the current Unix time.
    """

    def __init__(
        self,
        server: Server = "nats://127.0.0.1:4222",
        *,
        bucket: str = "livepages_sessions",
        max_age: float = DEFAULT_MAX_AGE,
        replicas: int = 1,
        connect_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = Bucket(
            server,
            name=bucket,
            ttl=max_age,
            replicas=replicas,
            description="livepages sessions",
            error=SessionStoreError,
            connect_timeout=connect_timeout,
            connection_name="livepages-sessions",
        )
        self._bucket_name = bucket
        self._clock = clock
        self._watches: set[SessionWatch] = set()
        self._closed = False

    @property
    def client(self) -> Client:
        """The store's NATS connection, once :meth:`start` has made or taken it."""
        return self._store.client

    @property
    def replicas(self) -> int:
        """The replicas of the bucket, when this store makes it."""
        return self._store.replicas

    # -- the protocol ----------------------------------------------------------------

    async def start(self) -> None:
        """Connect and create or bind the bucket. Idempotent; retried by later calls on failure."""
        await self._bucket()

    async def get(self, id: str) -> SessionEntry | None:
        """The entry under ``id`` (a tombstone if deleted), or ``None`` if absent or expired."""
        found = await self._read(id)
        if found is None or self._clock() >= found.expires_at:
            return None
        return SessionEntry(found.record, found.revision)

    async def create(self, record: SessionRecord) -> int:
        """Store a new record; :class:`SessionConflict` if its id is live or deleted."""
        value = self._value(record)
        await self._index(record)
        try:
            return await self._write(record.id, value, 0)
        except SessionConflict:
            pass  # the key exists: take it over only if what it holds has expired
        found = await self._read(record.id)
        if found is not None and self._clock() < found.expires_at:
            raise SessionConflict(f"session {record.id} exists or was deleted")
        return await self._write(record.id, value, 0 if found is None else found.revision)

    async def update(self, record: SessionRecord, revision: int) -> int:
        """Replace the record at ``revision``; :class:`SessionConflict` if it is not there."""
        value = self._value(record)
        # Read first: the revision check alone would let an expired record (or a
        # tombstone, given its revision) be written over.
        found = await self._read(record.id)
        if (
            found is None
            or found.record is None
            or found.revision != revision
            or self._clock() >= found.expires_at
        ):
            raise SessionConflict(f"session {record.id} is gone or at another revision")
        await self._index(record)
        return await self._write(record.id, value, revision)

    async def delete(self, id: str, notice: SessionNotice | None = None) -> None:
        """Delete the record under ``id`` for good, leaving a tombstone that keeps
        ``notice`` for the watchers. Idempotent."""
        await self._bury(id, None, notice)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """Return the user's unexpired sessions, oldest first."""
        ids = await self._indexed(user_id)
        found = await asyncio.gather(*(self._read(id) for id in ids))
        now = self._clock()
        records = [
            f.record
            for f in found
            if f is not None
            and f.record is not None
            and f.record.user_id == user_id
            and now < f.expires_at
        ]
        return sorted(records, key=lambda record: (record.issued_at, record.id))

    async def delete_user(self, user_id: str, notice: SessionNotice | None = None) -> list[str]:
        """Delete all of the user's sessions (expired ones too); return their ids."""
        ids = await self._indexed(user_id)
        buried = await asyncio.gather(*(self._bury(id, user_id, notice) for id in ids))
        return sorted(id for id, done in zip(ids, buried, strict=True) if done)

    async def close(self) -> None:
        """Stop the watches and close the connection if the store made it; later calls raise."""
        if self._closed:
            return
        self._closed = True
        for watch in list(self._watches):
            await watch.stop()
        await self._store.close()

    # -- the watch -------------------------------------------------------------------

    async def watch_deleted(self, callback: Deleted) -> SessionWatch:
        """Call ``callback(id, notice)`` for each session deleted from now on, by any process.

        ``notice`` is what the deleter gave :meth:`delete` (``None`` if nothing, or if
        the key was deleted by other means, ``nats kv del``). Deletions made through
        this store count too. The watch is in place when
        this returns. Calls come one at a time, in the order of the deletions; an
        exception from ``callback`` is logged and the watch goes on. A JetStream
        ordered consumer delivers them, so after a reconnection it resumes where
        it stopped. :meth:`close` stops every watch; :meth:`SessionWatch.stop` one.
        """
        await self._bucket()
        prefix = f"$KV.{self._bucket_name}."

        async def on_message(msg: Msg) -> None:
            deletion = _deletion(msg)
            if deletion is None:
                return
            try:
                await callback(msg.subject.removeprefix(prefix), deletion.notice)
            except Exception:
                logger.exception("a session deletion watcher failed")

        with self._store.backend():
            # ``*`` matches the one-token session keys, not the two-token index.
            subscription = await self._store.client.jetstream().subscribe(
                prefix + "*",
                stream=f"KV_{self._bucket_name}",
                cb=on_message,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
        watch = SessionWatch(subscription, self._watches.discard)
        self._watches.add(watch)
        return watch

    # -- reading and writing ---------------------------------------------------------

    async def _bucket(self) -> KeyValue:
        """The bound bucket, connecting and creating it on first use."""
        self._check_open()
        return await self._store.kv()

    async def _read(self, id: str) -> _Found | None:
        """What the key ``id`` holds now, expired or not; ``None`` if nothing."""
        kv = await self._bucket()
        with self._store.backend():
            try:
                entry = await kv.get(id)
            except nats.js.errors.KeyNotFoundError as missing:
                if missing.entry is None:
                    return None
                # A KV delete marker: a tombstone until the bucket drops it.
                return _Found(None, math.inf, _revision(missing.entry))
        try:
            stored = _decode(entry.value or b"")
        except DECODE_ERRORS as error:
            raise SessionStoreError(f"session {id}: unreadable value: {error}") from error
        return _Found(stored.record, stored.expires_at, _revision(entry))

    async def _write(self, key: str, value: bytes, last: int) -> int:
        """Write ``value`` under ``key`` if its revision is ``last`` (0: if absent)."""
        kv = await self._bucket()
        with self._store.backend():
            try:
                return await kv.update(key, value, last=last)
            except nats.js.errors.KeyWrongLastSequenceError as error:
                raise SessionConflict(f"session {key} is at another revision") from error

    async def _bury(self, id: str, user_id: str | None, notice: SessionNotice | None) -> bool:
        """Leave a tombstone over the record ``id`` (if it is ``user_id``'s, when given).

        Whether a record was buried. A write that lands in between is read again,
        so the tombstone always goes over the latest record.
        """
        while True:
            found = await self._read(id)
            if found is None:
                # Left alone: a create may be on its way (the index goes first).
                return False
            if found.record is None:
                if user_id is not None:
                    await self._unindex(user_id, id)  # deleted for good: a dead entry
                return False
            if user_id is not None and found.record.user_id != user_id:
                return False  # moved to another user; the stale entry goes with the TTL
            tombstone = _encode(_Stored(found.record.expires_at, None, notice))
            try:
                await self._write(id, tombstone, found.revision)
            except SessionConflict:
                continue
            if found.record.user_id is not None:
                await self._unindex(found.record.user_id, id)
            return True

    async def _index(self, record: SessionRecord) -> None:
        """Put ``record`` in its user's index (before the record: see the module's doc)."""
        if record.user_id is not None:
            kv = await self._bucket()
            with self._store.backend():
                await kv.put(f"{_user_key(record.user_id)}.{record.id}", b"")

    async def _unindex(self, user_id: str, id: str) -> None:
        kv = await self._bucket()
        with self._store.backend():
            await kv.delete(f"{_user_key(user_id)}.{id}")

    async def _indexed(self, user_id: str) -> list[str]:
        """The ids in ``user_id``'s index."""
        self._check_open()
        prefix = _user_key(user_id)
        keys = await self._store.live_keys(f"{prefix}.*")
        return [key.removeprefix(prefix + ".") for key in keys]

    def _value(self, record: SessionRecord) -> bytes:
        """``record`` encoded, once checked that the bucket keeps it long enough."""
        if record.expires_at - self._clock() > self._store.ttl:
            raise SessionStoreError(
                f"session {record.id} lives longer than the bucket "
                f"{self._bucket_name!r} keeps keys ({self._store.ttl:g} s): raise its max_age"
            )
        return _encode(_Stored(record.expires_at, record))

    def _check_open(self) -> None:
        if self._closed:
            raise SessionStoreError("the session store is closed")


def _user_key(user_id: str) -> str:
    """A KV-safe key token for any user id."""
    return hashlib.sha256(user_id.encode()).hexdigest()


def _revision(entry: KeyValue.Entry) -> int:
    assert entry.revision is not None  # set on every entry read from the stream
    return entry.revision


def _deletion(msg: Msg) -> _Stored | None:
    """The tombstone ``msg`` writes on a session key (a KV marker: one that says
    nothing), or ``None`` if it writes a record or something unreadable."""
    headers = msg.headers or {}
    if _KV_OPERATION in headers or _MARKER_REASON in headers:
        return _Stored(math.inf, None)
    try:
        stored = _decode(msg.data)
    except DECODE_ERRORS:
        return None
    return stored if stored.record is None else None
