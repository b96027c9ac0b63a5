"""The store's errors. A conflict is a 409 and an unreachable database a 503, so one
that an action does not catch reaches its page as a clear message, not a 500."""

from __future__ import annotations

from livepages.errors import Conflict, ServiceUnavailable

__all__ = ["CorruptRecord", "StoreConflict", "StoreError", "StoreUnavailable"]


class StoreError(Exception):
    """Base class of the store's errors."""


class StoreUnavailable(StoreError, ServiceUnavailable):
    """503: the database cannot be used now (unwritable, locked past ``busy_timeout``,
    closed); nothing was written."""


class StoreConflict(StoreError, Conflict):
    """409: a write conflicts with another one; nothing of the transaction was written.

    ``collection`` and ``key`` name the record (``key`` is ``None`` when the
    transaction read the whole collection and something in it changed).
    """

    def __init__(self, collection: str, key: int | str | None, message: str) -> None:
        super().__init__(message)
        self.collection = collection
        self.key = key


class CorruptRecord(StoreError):
    """Stored data that does not decode as its collection's type (the type changed
    incompatibly, or something else wrote the row)."""
