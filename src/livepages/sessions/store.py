"""Server-side session records and the protocol every session store implements.

A store never sees a session's secret token, only :func:`session_id` of it (the
SHA-256 hex digest), so a copy of the store does not yield usable cookies.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import msgspec

__all__ = ["SessionRecord", "SessionStore", "SessionStoreError", "session_id"]


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


class SessionStoreError(Exception):
    """The store's backend failed (I/O error, corrupt database, lost connection).

    The message may name files or hosts, so it is for logs, not for users: the app
    answers such requests with a plain 503.
    """


class SessionStore(Protocol):
    """Where sessions live. Every method may raise :class:`SessionStoreError`.

    The operations are plain key-value ones plus a per-user index, so a NATS
    JetStream KV store fits without changes: one bucket keyed by ``id`` (hex, a valid
    KV key) holding the record encoded with ``msgspec.msgpack``, and the user index
    as a second bucket (or key prefix) ``<user-key>.<id>``, where ``<user-key>`` is a
    KV-safe encoding of ``user_id`` (e.g. its SHA-256 hex). ``list_user`` and
    ``delete_user`` then walk the keys matching ``<user-key>.*``; expiry uses the
    bucket's TTL for clean-up and ``expires_at`` on read for exactness.
    """

    async def get(self, id: str) -> SessionRecord | None:
        """Return the record stored under ``id``, or ``None`` if absent or expired."""
        ...

    async def put(self, record: SessionRecord) -> None:
        """Store ``record`` under ``record.id``, replacing any earlier version."""
        ...

    async def delete(self, id: str) -> None:
        """Remove the record stored under ``id``, if any."""
        ...

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """Return the user's unexpired sessions, oldest first (by ``issued_at``)."""
        ...

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove all of the user's sessions; return the removed ids (sorted).

        Expired records are removed and returned too: a stream opened before its
        session expired may still be running and should be closed as well.
        """
        ...

    async def close(self) -> None:
        """Release the store's resources; later calls raise :class:`SessionStoreError`."""
        ...
