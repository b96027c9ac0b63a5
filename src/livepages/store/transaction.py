"""``Transaction``: reads and writes that commit together, or not at all.

::

    async with store.transaction() as tx:
        todo = await tx.get(todos, 3)
        if todo is None:
            raise NotFound("no todo 3")
        todo.done = not todo.done
        tx.put(todos, todo)
    # committed here: StoreConflict if todo 3 changed since tx.get read it

Concurrency is optimistic: reads go to the storage at once and note the version
they saw; writes wait in the transaction (so ``put`` and ``delete`` need no
``await``) and reads in it see them. The commit, at the end of the block,
checks that every record read is still at the version seen (a whole collection,
for ``all``), then writes everything, atomically. If another write got there
first it raises ``StoreConflict`` and writes nothing: run the transaction again,
or tell the user. A block that raises writes nothing.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

from livepages.store.backend import Check, Key, Write
from livepages.store.collection import Collection, Commit

__all__ = ["Transaction"]

T = TypeVar("T")


class Transaction:
    """One transaction of a store: ``async with store.transaction() as tx: ...``."""

    def __init__(self, commit: Commit) -> None:
        self._commit = commit
        self._checks: list[Check] = []
        self._seen: set[tuple[str, Key | None]] = set()
        self._writes: dict[tuple[str, Key], Write] = {}
        self._done = False

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.commit()
        else:
            self._done = True  # nothing is written

    # -- reading --------------------------------------------------------------------

    async def get(self, collection: Collection[T], key: Key) -> T | None:
        """The record under ``key``: as this transaction left it, or as stored."""
        self._open()
        collection.check_key(key)
        pending = self._writes.get((collection.name, key))
        if pending is not None:
            return None if pending.data is None else collection.decode(pending.data)
        row = await collection.read(key)
        self._saw(Check(collection.name, key, 0 if row is None else row.version))
        return None if row is None else collection.decode(row.data)

    async def all(self, collection: Collection[T]) -> list[T]:
        """Every record, by key, this transaction's writes included. The commit then
        fails if anything in the collection changed meanwhile."""
        self._open()
        scan = await collection.scan({})
        self._saw(Check(collection.name, None, scan.version))
        data: dict[Any, str | None] = {row.key: row.data for row in scan.rows}
        for (name, key), write in self._writes.items():
            if name == collection.name:
                data[key] = write.data
        found = (data[key] for key in sorted(data))
        return [collection.decode(text) for text in found if text is not None]

    # -- writing --------------------------------------------------------------------

    def put(self, collection: Collection[T], record: T, *, version: int | None = None) -> None:
        """Store ``record`` at the commit; with ``version``, only if the stored record is
        still at that version then (0: absent)."""
        self._open()
        key = collection.key_of(record)
        if version is not None:
            self._checks.append(Check(collection.name, key, version))
        self._writes[collection.name, key] = Write(collection.name, key, collection.encode(record))

    def insert(self, collection: Collection[T], record: T) -> None:
        """Store a new record at the commit; ``StoreConflict`` then if its key is taken."""
        self.put(collection, record, version=0)

    def delete(self, collection: Collection[Any], key: Key, *, version: int | None = None) -> None:
        """Delete the record under ``key`` at the commit (with ``version``: as ``put``)."""
        self._open()
        collection.check_key(key)
        if version is not None:
            self._checks.append(Check(collection.name, key, version))
        self._writes[collection.name, key] = Write(collection.name, key, None)

    async def commit(self) -> None:
        """Check and write everything now (the end of the ``async with`` block does it)."""
        self._open()
        self._done = True
        if self._writes:
            await self._commit(self._checks, list(self._writes.values()))

    def _open(self) -> None:
        if self._done:
            raise RuntimeError("this transaction is over: start another one")

    def _saw(self, check: Check) -> None:
        # The first read of a record counts: a later one that sees another version
        # means a write came in between, and the commit must fail.
        if (check.collection, check.key) not in self._seen:
            self._seen.add((check.collection, check.key))
            self._checks.append(check)
