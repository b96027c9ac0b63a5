"""The embedded session store: a dict in this process, lost when it exits."""

from __future__ import annotations

import time
from collections.abc import Callable

from livepages.sessions.store import (
    SessionConflict,
    SessionEntry,
    SessionRecord,
    SessionStoreError,
)

__all__ = ["MemorySessionStore"]


class MemorySessionStore:
    """Keeps sessions in a dict, with an index of each user's session ids.

    No method awaits anything, so each one is atomic on the event loop: that is
    all the revision checks need. Revisions come from one counter for the whole
    store, so a revision is never reused, even for an id created again.

    Expired records and tombstones are dropped when read, and all of them at most
    once every ``sweep_interval`` seconds (on a write), so memory does not grow
    with sessions that are never read again. ``clock`` returns the current Unix time.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, sweep_interval: float = 60.0
    ) -> None:
        self._records: dict[str, tuple[SessionRecord, int]] = {}  # id -> (record, revision)
        # id -> (when the deleted record would have expired, the tombstone's revision)
        self._tombstones: dict[str, tuple[float, int]] = {}
        self._by_user: dict[str, set[str]] = {}
        self._revision = 0
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval
        self._closed = False

    async def start(self) -> None:
        """Nothing to prepare; raises :class:`SessionStoreError` once closed."""
        self._check_open()

    async def get(self, id: str) -> SessionEntry | None:
        """The entry under ``id`` (a tombstone if deleted), or ``None`` if absent or expired."""
        self._check_open()
        return self._find(id, self._clock())

    async def create(self, record: SessionRecord) -> int:
        """Store a new record; :class:`SessionConflict` if its id is live or deleted."""
        self._check_open()
        now = self._clock()
        self._sweep(now)
        if self._find(record.id, now) is not None:
            raise SessionConflict(f"session {record.id} exists or was deleted")
        self._tombstones.pop(record.id, None)  # an expired one
        return self._write(record)

    async def update(self, record: SessionRecord, revision: int) -> int:
        """Replace the record at ``revision``; :class:`SessionConflict` if it is not there."""
        self._check_open()
        now = self._clock()
        self._sweep(now)
        found = self._live(record.id, now)
        if found is None or found[1] != revision:
            raise SessionConflict(f"session {record.id} is gone or at another revision")
        self._remove(record.id)  # its user may change
        return self._write(record)

    async def delete(self, id: str) -> None:
        """Delete the record under ``id`` for good, leaving a tombstone. Idempotent."""
        self._check_open()
        self._bury(id)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """Return the user's unexpired sessions, oldest first."""
        self._check_open()
        now = self._clock()
        records = [self._records[id][0] for id in self._by_user.get(user_id, ())]
        live = [record for record in records if not record.expired(now)]
        return sorted(live, key=lambda record: (record.issued_at, record.id))

    async def delete_user(self, user_id: str) -> list[str]:
        """Delete all of the user's sessions (expired ones too); return their ids."""
        self._check_open()
        ids = sorted(self._by_user.get(user_id, ()))
        for id in ids:
            self._bury(id)
        return ids

    async def purge_expired(self) -> int:
        """Remove every expired record (and tombstone) now; how many records were removed."""
        self._check_open()
        return self._purge(self._clock())

    async def close(self) -> None:
        """Drop all sessions; later calls raise :class:`SessionStoreError`."""
        self._closed = True
        self._records.clear()
        self._tombstones.clear()
        self._by_user.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise SessionStoreError("the session store is closed")

    def _find(self, id: str, now: float) -> SessionEntry | None:
        found = self._live(id, now)
        if found is not None:
            return SessionEntry(*found)
        tombstone = self._tombstones.get(id)
        if tombstone is not None and now < tombstone[0]:
            return SessionEntry(None, tombstone[1])
        return None

    def _live(self, id: str, now: float) -> tuple[SessionRecord, int] | None:
        found = self._records.get(id)
        if found is not None and found[0].expired(now):
            self._remove(id)
            return None
        return found

    def _write(self, record: SessionRecord) -> int:
        self._revision += 1
        self._records[record.id] = (record, self._revision)
        if record.user_id is not None:
            self._by_user.setdefault(record.user_id, set()).add(record.id)
        return self._revision

    def _bury(self, id: str) -> None:
        removed = self._remove(id)
        if removed is not None:
            self._revision += 1
            self._tombstones[id] = (removed.expires_at, self._revision)

    def _sweep(self, now: float) -> None:
        if now >= self._next_sweep:
            self._purge(now)

    def _purge(self, now: float) -> int:
        self._next_sweep = now + self._sweep_interval
        expired = [id for id, (record, _) in self._records.items() if record.expired(now)]
        for id in expired:
            self._remove(id)
        buried = [id for id, (expires_at, _) in self._tombstones.items() if now >= expires_at]
        for id in buried:
            del self._tombstones[id]
        return len(expired)

    def _remove(self, id: str) -> SessionRecord | None:
        found = self._records.pop(id, None)
        if found is None:
            return None
        record = found[0]
        if record.user_id is not None:
            ids = self._by_user[record.user_id]
            ids.discard(id)
            if not ids:
                del self._by_user[record.user_id]
        return record
