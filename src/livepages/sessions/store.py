"""Server-side session records and the protocol every session store implements.

A store never sees a session's secret token, only :func:`session_id` of it (the
SHA-256 hex digest), so a copy of the store does not yield usable cookies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import msgspec

from livepages.protocol import SessionNotice

__all__ = [
    "Deleted",
    "DeletionWatch",
    "SessionConflict",
    "SessionEntry",
    "SessionRecord",
    "SessionStore",
    "SessionStoreError",
    "SharedSessionStore",
    "session_id",
]


def session_id(token: bytes) -> str:
    """Return the store key of a session token: its SHA-256 digest in hex."""
    return hashlib.sha256(token).hexdigest()


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One session as the store keeps it. Times are Unix timestamps (``time.time()``).

    Wall-clock time rather than a monotonic clock, because records outlive the
    process. ``data`` is opaque to the store (the app encodes it, as JSON).
    """

    id: str
    user_id: str | None
    data: bytes
    issued_at: float
    expires_at: float
    last_seen: float

    def expired(self, now: float) -> bool:
        """Whether the session is over at time ``now``."""
        return now >= self.expires_at


class SessionEntry(msgspec.Struct, frozen=True):
    """What :meth:`SessionStore.get` finds under an id: a record and its revision.

    ``record`` is ``None`` for a deleted session (a tombstone): the id stays taken
    until the deleted record would have expired, so nothing can create it again.
    """

    record: SessionRecord | None
    revision: int


class SessionStoreError(Exception):
    """The store's backend failed (I/O error, corrupt database, lost connection).

    The message may name files or hosts, so it is for logs, not for users: the app
    answers such requests with a plain 503.
    """


class SessionConflict(Exception):
    """A revision-checked write was refused; the store itself is fine.

    ``create`` raises it when the id is taken (by a live record or a tombstone),
    ``update`` when the record is gone (deleted, expired, never created) or at
    another revision than the one given. The caller reads the entry again and
    decides; it must never fall back to an unconditional write.
    """


class SessionStore(Protocol):
    """Where sessions live. Every method may raise :class:`SessionStoreError`.

    The contract (``tests/sessions/contract.py`` checks it for every store):

    - **Revisions.** Every write gives the record a new revision, an ``int`` that
      callers only compare for equality. ``update`` writes only over the revision
      the caller read, so of two requests that read the same revision, one wins
      and the other gets :class:`SessionConflict`, on one process or many.
    - **Deletion is final.** ``delete`` and ``delete_user`` leave a tombstone
      (``get`` returns ``SessionEntry(None, revision)``) until the deleted record's
      ``expires_at``; ``create`` refuses the id and ``update`` refuses the record
      meanwhile. No write brings a deleted session back.
    - **Expiry.** A record (or tombstone) past its ``expires_at`` is absent: ``get``
      returns ``None``, ``update`` refuses it, ``create`` may take its id again.
    - **Lifecycle.** ``start()`` prepares the store and is idempotent; if it fails,
      later calls try again (and raise :class:`SessionStoreError` while the backend
      is down). ``close()`` is final and idempotent: every later call raises
      :class:`SessionStoreError`.

    The operations are NATS JetStream KV's, so a KV store implements them
    directly (:class:`livepages.sessions.nats.NATSSessionStore` does): one bucket
    keyed by ``id`` (hex, a valid KV key) holding the record encoded with
    ``msgspec.msgpack``; ``get`` is ``kv.get``, ``create`` is
    ``kv.update(id, value, last=0)`` (unlike ``kv.create``, it refuses a key whose
    last operation was a delete), ``update`` is ``kv.update(id, value,
    last=revision)``; ``delete`` writes a tombstone value carrying the deleted
    record's ``expires_at`` (a KV delete marker could not say when it ends). The
    bucket's TTL, at least the session lifetime, clears records and tombstones,
    while ``expires_at`` on read keeps expiry exact. The user index is a key prefix
    ``<user-key>.<id>``, where ``<user-key>`` is the SHA-256 hex of ``user_id``;
    ``list_user`` and ``delete_user`` walk the keys matching ``<user-key>.*``.
    """

    async def start(self) -> None:
        """Get ready (connect, set up the schema). Idempotent; the app calls it at start-up."""
        ...

    async def get(self, id: str) -> SessionEntry | None:
        """The entry under ``id`` (a tombstone if deleted), or ``None`` if absent or expired."""
        ...

    async def create(self, record: SessionRecord) -> int:
        """Store a new record under ``record.id``; its revision.

        Raises :class:`SessionConflict` if the id holds a live record or a tombstone.
        """
        ...

    async def update(self, record: SessionRecord, revision: int) -> int:
        """Replace the record stored under ``record.id`` at ``revision``; the new revision.

        Raises :class:`SessionConflict` if that record is deleted, expired, absent
        or at another revision. The user may change (the index follows).
        """
        ...

    async def delete(self, id: str) -> None:
        """Delete the record under ``id`` for good, leaving a tombstone. Idempotent.

        An id without a record is left alone (there is nothing to bring back).
        """
        ...

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """Return the user's unexpired sessions, oldest first (by ``issued_at``, then ``id``)."""
        ...

    async def delete_user(self, user_id: str) -> list[str]:
        """Delete all of the user's sessions as :meth:`delete` does; the ids deleted (sorted).

        Expired records are deleted and returned too: a stream opened before its
        session expired may still be running and should be closed as well.
        """
        ...

    async def close(self) -> None:
        """Release the store's resources; later calls raise :class:`SessionStoreError`."""
        ...


#: ``callback(id, notice)``: a session was deleted, and why (``None``: nobody said).
Deleted = Callable[[str, SessionNotice | None], Awaitable[None]]


class DeletionWatch(Protocol):
    """A running :meth:`SharedSessionStore.watch_deleted`."""

    async def stop(self) -> None:
        """Stop watching. Idempotent."""
        ...


@runtime_checkable
class SharedSessionStore(SessionStore, Protocol):
    """A store that many processes share and that tells every one of them about each
    deletion, with the reason it was deleted for (``NATSSessionStore`` is one).

    A ``SessionManager`` on such a store hands the reason to ``delete`` and
    ``delete_user``, which keep it with the tombstone, and watches the deletions: so a
    closed session ends its live streams on every process even when the broker's
    at-most-once notice was lost.
    """

    async def delete(self, id: str, notice: SessionNotice | None = None) -> None:
        """Delete as :meth:`SessionStore.delete` does, keeping ``notice`` for the watchers."""
        ...

    async def delete_user(self, user_id: str, notice: SessionNotice | None = None) -> list[str]:
        """Delete as :meth:`SessionStore.delete_user` does, keeping ``notice`` for each."""
        ...

    async def watch_deleted(self, callback: Deleted) -> DeletionWatch:
        """Call ``callback(id, notice)`` for each session deleted from now on, by any process."""
        ...
