"""The embedded session store: a dict in this process, lost when it exits."""

from __future__ import annotations

import time
from collections.abc import Callable

from livepages.sessions.store import SessionRecord, SessionStoreError

__all__ = ["MemorySessionStore"]


class MemorySessionStore:
    """Keeps sessions in a dict, with an index of each user's session ids.

    Expired records are dropped when read, and all of them at most once every
    ``sweep_interval`` seconds (on a ``put``), so memory does not grow with sessions
    that are never read again. ``clock`` returns the current Unix time.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, sweep_interval: float = 60.0
    ) -> None:
        self._records: dict[str, SessionRecord] = {}
        self._by_user: dict[str, set[str]] = {}
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval
        self._closed = False

    async def get(self, id: str) -> SessionRecord | None:
        """Return the record stored under ``id``, or ``None`` if absent or expired."""
        self._check_open()
        record = self._records.get(id)
        if record is not None and record.expired(self._clock()):
            self._remove(id)
            return None
        return record

    async def put(self, record: SessionRecord) -> None:
        """Store ``record`` under ``record.id``, replacing any earlier version."""
        self._check_open()
        now = self._clock()
        if now >= self._next_sweep:
            self._purge(now)
        self._remove(record.id)  # its user may have changed
        self._records[record.id] = record
        if record.user_id is not None:
            self._by_user.setdefault(record.user_id, set()).add(record.id)

    async def delete(self, id: str) -> None:
        """Remove the record stored under ``id``, if any."""
        self._check_open()
        self._remove(id)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """Return the user's unexpired sessions, oldest first."""
        self._check_open()
        now = self._clock()
        records = [self._records[id] for id in self._by_user.get(user_id, ())]
        live = [record for record in records if not record.expired(now)]
        return sorted(live, key=lambda record: (record.issued_at, record.id))

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove all of the user's sessions (expired ones too); return their ids."""
        self._check_open()
        ids = sorted(self._by_user.pop(user_id, ()))
        for id in ids:
            del self._records[id]
        return ids

    async def purge_expired(self) -> int:
        """Remove every expired record now; return how many were removed."""
        self._check_open()
        return self._purge(self._clock())

    async def close(self) -> None:
        """Drop all sessions; later calls raise :class:`SessionStoreError`."""
        self._closed = True
        self._records.clear()
        self._by_user.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise SessionStoreError("the session store is closed")

    def _purge(self, now: float) -> int:
        self._next_sweep = now + self._sweep_interval
        expired = [id for id, record in self._records.items() if record.expired(now)]
        for id in expired:
            self._remove(id)
        return len(expired)

    def _remove(self, id: str) -> None:
        record = self._records.pop(id, None)
        if record is None or record.user_id is None:
            return
        ids = self._by_user[record.user_id]
        ids.discard(id)
        if not ids:
            del self._by_user[record.user_id]
