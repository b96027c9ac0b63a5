"""Reads: what each live view's last render read, so that a change re-renders only those.

While a view renders, the live engine keeps a :class:`Recording` in a context
variable; a data source (the store) calls :func:`record` with a hashable
*dependency* for each read, e.g. ``("todos", 3)`` for one record or
``("todos", None)`` for a whole collection. The engine's :class:`ReadIndex` maps
each dependency to the views whose last render read it, and
``changed(dependencies)`` invalidates exactly those views.

Why a dependency is indexed as soon as it is read, not when the render ends: a
change that commits while the render is still running (after the read) must
still reach the view; it marks the view dirty, and the view renders again.

What it costs: nothing until a data source exists in the process (``enable``:
a ``Store`` calls it when it is made), so an app without a store does not pay
for it. Then a render sets and resets one context variable and allocates one
small object; a render that reads nothing allocates nothing more. A read outside
any render (an action, a script) costs one context variable lookup. Each view
keeps the tuple of what its last render read; the index keeps one set of views
per dependency. ``python -m benchmarks.tracking`` measures all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable, Iterable
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Protocol

__all__ = ["ReadIndex", "Recording", "Watcher", "enable", "record", "recording_active"]


class Watcher(Protocol):
    """What the index tracks: a live view."""

    #: The dependencies its last render read (kept by the index).
    reads: tuple[Hashable, ...]

    def invalidate(self) -> None:
        """Something it read changed: render again."""
        ...


_current: ContextVar[Recording | None] = ContextVar("livepages.reads", default=None)
#: What ``ReadIndex.recording`` gives while nothing can be read: no recording at all.
_IDLE: AbstractContextManager[None] = contextlib.nullcontext()
_enabled = False


def enable() -> None:
    """Record renders' reads from now on, in this process (a data source exists)."""
    global _enabled
    _enabled = True


def record(dependency: Hashable) -> None:
    """Note that the render under way (if any) read ``dependency``."""
    recording = _current.get()
    if recording is not None:
        recording.add(dependency)


def recording_active() -> bool:
    """Whether a live render is under way in this context (its reads are recorded)."""
    return _current.get() is not None


class Recording:
    """The reads of one render: ``with index.recording(view): ...``.

    On a clean exit the view's dependencies become what this render read; after a
    failed render they are kept as well (the page may depend on what it did not
    reach); a cancelled render (its view disposed of) leaves nothing indexed.
    Reads after the exit (from a task the render started) are ignored.
    """

    __slots__ = ("adding", "index", "read", "token", "watcher")

    def __init__(self, index: ReadIndex, watcher: Watcher, adding: bool = False) -> None:
        self.index: ReadIndex | None = index
        self.watcher = watcher
        #: A render of a part of the watcher only: what it read adds to what it had.
        self.adding = adding
        self.read: set[Hashable] | None = None  # made on the first read
        self.token: Token[Recording | None] | None = None

    def add(self, dependency: Hashable) -> None:
        """Index ``dependency`` for the watcher now, once."""
        index = self.index
        if index is None:
            return  # the render is over
        read = self.read
        if read is None:
            read = self.read = set()
        elif dependency in read:
            return
        read.add(dependency)
        index.watch(dependency, self.watcher)

    def __enter__(self) -> Recording:
        self.token = _current.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.token is not None:
            _current.reset(self.token)
        index, self.index = self.index, None
        watcher, read = self.watcher, self.read
        if index is None or (read is None and not watcher.reads):
            return  # the common case of a render that read nothing, kept short
        read = read or set()
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            index.forget(watcher)
            for dependency in read:
                index.unwatch(dependency, watcher)
            return
        old = watcher.reads
        if exc_type is None and not self.adding:
            for dependency in old:
                if dependency not in read:
                    index.unwatch(dependency, watcher)
            watcher.reads = tuple(read)
        elif read:
            watcher.reads = tuple(set(old).union(read))


class ReadIndex:
    """Which watchers (live views) read each dependency in their last render."""

    __slots__ = ("_watchers",)

    def __init__(self) -> None:
        self._watchers: dict[Hashable, set[Watcher]] = {}

    def __len__(self) -> int:
        """How many dependencies some watcher reads."""
        return len(self._watchers)

    def recording(
        self, watcher: Watcher, *, adding: bool = False
    ) -> AbstractContextManager[Recording | None]:
        """Record the reads of ``watcher``'s render: ``with index.recording(view): ...``
        (a context that does nothing until ``enable()`` was called). ``adding``: the
        render is of a part of the watcher (one group of a personal view), so what it
        read is added to what the watcher read before, not put in its place."""
        return Recording(self, watcher, adding) if _enabled else _IDLE

    def watch(self, dependency: Hashable, watcher: Watcher) -> None:
        """Index ``watcher`` under ``dependency``."""
        watchers = self._watchers.get(dependency)
        if watchers is None:
            watchers = self._watchers[dependency] = set()
        watchers.add(watcher)

    def unwatch(self, dependency: Hashable, watcher: Watcher) -> None:
        """Stop indexing ``watcher`` under ``dependency``."""
        watchers = self._watchers.get(dependency)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[dependency]

    def forget(self, watcher: Watcher) -> None:
        """Drop every dependency of ``watcher`` (a view nobody watches any more)."""
        for dependency in watcher.reads:
            self.unwatch(dependency, watcher)
        watcher.reads = ()

    def watchers(self, dependency: Hashable) -> frozenset[Watcher]:
        """The watchers that read ``dependency``."""
        return frozenset(self._watchers.get(dependency, ()))

    def changed(self, dependencies: Iterable[Hashable]) -> int:
        """Invalidate every watcher that read one of ``dependencies``; how many."""
        index = self._watchers
        hit: set[Watcher] = set()
        for dependency in dependencies:
            watchers = index.get(dependency)
            if watchers is not None:
                hit.update(watchers)
        for watcher in hit:
            watcher.invalidate()
        return len(hit)
