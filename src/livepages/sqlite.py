"""SQLite off the event loop: one connection, owned by one worker thread.

SQLite calls block, so each SQLite-backed part of livepages (the session store,
the reactive store) runs them all in a dedicated worker thread that owns its
connection; the event loop only awaits their results. One thread also serialises
the calls, which is what a single SQLite connection needs anyway.

The connection is opened in the thread on the first call, in WAL mode (readers
do not block the writer, and several processes may share the file), and a
writer waits up to ``busy_timeout`` seconds for another's lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["SQLiteWorker", "immediate", "open_database"]

_T = TypeVar("_T")


class SQLiteWorker:
    """Runs calls on one SQLite connection in one thread, made by ``connect`` on first use."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, name: str) -> None:
        self._connect = connect
        # The thread starts on the first call; the connection is made inside it.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._connection: sqlite3.Connection | None = None
        self.closed = False

    async def run(self, call: Callable[[sqlite3.Connection], _T]) -> _T:
        """``call(connection)`` in the worker thread; its errors reach the caller as raised.

        ``RuntimeError`` once closed (callers check ``closed`` first to say it their way).
        """
        if self.closed:
            raise RuntimeError("the SQLite worker is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, call)

    async def close(self) -> None:
        """Close the connection after every call already submitted, and stop the thread."""
        if self.closed:
            return
        self.closed = True
        loop = asyncio.get_running_loop()
        try:
            # Queued behind every call already submitted, so those finish first.
            await loop.run_in_executor(self._executor, self._disconnect)
        finally:
            self._executor.shutdown(wait=False)

    def _call(self, call: Callable[[sqlite3.Connection], _T]) -> _T:
        # Runs in the worker thread.
        if self._connection is None:
            self._connection = self._connect()
        return call(self._connection)

    def _disconnect(self) -> None:
        # Runs in the worker thread.
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def open_database(path: str, busy_timeout: float) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode and autocommit (transactions are explicit)."""
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL loses no data when the process crashes, only possibly
        # the last transactions on power loss.
        db.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, its lock taken up front (``BEGIN IMMEDIATE``): its reads and
    writes are one step for every process sharing the file. Rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
