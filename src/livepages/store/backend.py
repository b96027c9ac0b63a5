"""The storage behind a ``Store``: what a backend does, on encoded records.

A backend keeps, per collection, records under their keys, each with a
*version*: a number that changes at every write of the record (0 means absent).
The collection has a version too, which changes at every write in it. A commit
checks the versions a transaction read, then applies its writes, all in one
atomic step for every process that shares the storage; if a check fails it
raises ``StoreConflict`` and writes nothing.

``SQLiteBackend`` (``livepages.store.sqlite``) is the one livepages ships: one
machine, any number of processes on it. A backend for many machines (a shared
database server) implements this protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Check", "Key", "Row", "Scalar", "Scan", "StoreBackend", "Write"]

#: A record's key: the value of its key field.
Key = int | str
#: A value a query compares a field with.
Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Row:
    """A stored record: its key, its JSON text and its version."""

    key: Key
    data: str
    version: int


@dataclass(frozen=True, slots=True)
class Scan:
    """The records of a collection that a query matched, ordered by key, and the version
    of the collection they were read at."""

    rows: list[Row]
    version: int


@dataclass(frozen=True, slots=True)
class Check:
    """What a transaction read: the record ``key`` (the whole collection when ``None``)
    was at ``version`` (0: absent). The commit fails unless it still is."""

    collection: str
    key: Key | None
    version: int


@dataclass(frozen=True, slots=True)
class Write:
    """A write of a transaction: the record's JSON text, or ``None`` to delete it."""

    collection: str
    key: Key
    data: str | None


class StoreBackend(Protocol):
    """Keeps encoded records; ``Store`` does the typing, tracking and publishing."""

    async def start(self) -> None:
        """Open the storage (set up its schema) now rather than on first use."""
        ...

    async def close(self) -> None:
        """Release the storage; later calls raise ``StoreUnavailable``. Idempotent."""
        ...

    async def read(self, collection: str, key: Key) -> Row | None:
        """The record under ``key``, or ``None``."""
        ...

    async def scan(self, collection: str, where: Mapping[str, Scalar]) -> Scan:
        """The records whose JSON fields equal ``where``'s values (all when empty)."""
        ...

    async def commit(self, checks: Sequence[Check], writes: Sequence[Write]) -> list[Write]:
        """Check, then write, atomically; the writes that changed something (a delete of
        an absent record changes nothing). ``StoreConflict`` if a check fails."""
        ...

    async def next_key(self, collection: str) -> int:
        """A new integer key: above every integer key in the collection and every key
        handed out before, so never one that was used, even by a deleted record."""
        ...
