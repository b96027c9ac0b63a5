"""``Store``: typed records that re-render the live pages that read them.

::

    store = Store("app.db")
    todos = store.collection("todos", Todo)     # Todo: a dataclass with an ``id``
    app = App(store=store)

A page's ``render`` reads (``await todos.all()``); an action writes
(``await todos.put(todo)``). After a commit, every open view whose last render
read what changed renders again: on this process at once, on the others through
the app's broker (a ``StoreChanges`` message on ``STORE_CHANGED``). No ``@on`` is
needed, and views that read something else do not render.

The records live in a ``StoreBackend``: SQLite by default (one machine, any
number of processes sharing the file).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from livepages.broker.base import Broker, BrokerError, Message, Subscription
from livepages.protocol import STORE_CHANGED
from livepages.reads import ReadIndex, enable
from livepages.store.backend import Check, StoreBackend, Write
from livepages.store.changes import StoreChanges
from livepages.store.collection import Collection
from livepages.store.sqlite import SQLiteBackend
from livepages.store.transaction import Transaction

__all__ = ["Store"]

log = logging.getLogger("livepages.store")

T = TypeVar("T")


class Store:
    """Collections of typed records in ``database``: a SQLite file's path (``":memory:"``
    for this process only), or any ``StoreBackend``.

    ``busy_timeout`` (SQLite, default 5 s): how long a write waits for another
    process's lock before failing with ``StoreUnavailable``. Give the store to an
    ``App`` (``App(store=store)``) for its changes to update pages; the app starts
    and closes it.
    """

    def __init__(
        self, database: str | os.PathLike[str] | StoreBackend, *, busy_timeout: float = 5.0
    ) -> None:
        if isinstance(database, str | os.PathLike):
            database = SQLiteBackend(database, busy_timeout=busy_timeout)
        self.backend: StoreBackend = database
        enable()  # live renders record what they read from now on (``livepages.reads``)
        #: Names this store in its change messages: its own come back (on NATS), already done.
        self.origin = secrets.token_hex(8)
        self._collections: dict[str, Collection[Any]] = {}
        self._broker: Broker | None = None
        self._reads: ReadIndex | None = None
        self._startup: Callable[[], Awaitable[None]] | None = None
        self._subscription: Subscription | None = None

    def __repr__(self) -> str:
        return f"<Store {self.backend!r}>"

    def collection(self, name: str, record_type: type[T], *, key: str = "id") -> Collection[T]:
        """The collection ``name`` of ``record_type`` records, keyed by their field ``key``.

        The name is what is stored: renaming the type keeps the data, renaming the
        collection does not. ``ValueError`` if the store has a collection of that name.
        """
        if name in self._collections:
            raise ValueError(f"the store has a collection named {name!r} already")
        made = Collection(name, record_type, key, self.backend, self._commit, self._is_bound)
        self._collections[name] = made
        return made

    def transaction(self) -> Transaction:
        """A transaction: ``async with store.transaction() as tx: ...`` (``Transaction``)."""
        return Transaction(self._commit)

    # -- the app ----------------------------------------------------------------------

    def bind(
        self, broker: Broker, reads: ReadIndex, startup: Callable[[], Awaitable[None]]
    ) -> None:
        """Serve one app: tell its views (``reads``) and, through its ``broker``, the other
        processes' about every commit. ``App(store=...)`` calls it; ``startup`` starts
        the app (and its broker) when a commit comes before anything else did."""
        if self._broker is not None:
            raise RuntimeError(f"{self!r} serves an app already: give each app its own Store")
        self._broker, self._reads, self._startup = broker, reads, startup

    async def start(self) -> None:
        """Open the database, and listen to the other processes' commits. Idempotent."""
        await self.backend.start()
        if self._broker is None or self._subscription is not None:
            return
        subscription = self._broker.subscribe(STORE_CHANGED, self._on_changes)
        try:
            await subscription.ready()
        except BaseException:
            subscription.unsubscribe()
            raise
        self._subscription = subscription

    async def close(self) -> None:
        """Stop listening and close the database. Idempotent."""
        if self._subscription is not None:
            self._subscription.unsubscribe()
            self._subscription = None
        await self.backend.close()

    def _is_bound(self) -> bool:
        return self._reads is not None

    # -- changes ----------------------------------------------------------------------

    async def _commit(self, checks: Sequence[Check], writes: Sequence[Write]) -> list[Write]:
        changed = await self.backend.commit(checks, writes)
        if changed:
            await self._announce(StoreChanges.of(self.origin, changed))
        return changed

    async def _announce(self, changes: StoreChanges) -> None:
        """This process's views now (they need no broker), then the other processes'."""
        if self._reads is not None:
            self._reads.changed(changes.dependencies())
        if self._broker is None or self._startup is None:
            return
        try:
            await self._startup()
            await self._broker.publish(STORE_CHANGED, changes.encode())
        except BrokerError as exc:
            # The write is done and must not look failed. The other processes'
            # views catch up when their broker reconnects (every view re-renders).
            log.warning("a store commit was not announced to other processes: %s", exc)

    def _on_changes(self, message: Message) -> None:
        try:
            changes = StoreChanges.decode(message.data)
        except ValueError:
            log.warning("ignoring a malformed message on %s", message.subject)
            return
        if changes.origin != self.origin and self._reads is not None:
            self._reads.changed(changes.dependencies())
