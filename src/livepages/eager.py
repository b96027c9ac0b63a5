"""Run an awaitable eagerly: as far as it goes now, the rest in a task only if needed.

The live engine writes one event to thousands of streams per change. Awaiting
each write in its own task would cost a task per viewer; almost every write
finishes without waiting (the socket takes the bytes), so the engine starts
each write here and only a write that really waits gets a task.

The awaitable is driven the way the language defines: a native coroutine with
its own ``send`` and ``throw``; anything else (a server's own ``send``, written
in Rust or C, whose ``__await__`` iterator may have no ``send`` at all) inside a
one-line coroutine that ``await``s it, so the interpreter drives it as any
``await`` would. What the first step yields (the future the write waits on) is
handed unchanged to the task that finishes it. Nothing here depends on how a
server or an event loop implements its futures.

Python 3.12's eager tasks do the same for a whole task; livepages supports 3.11.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

__all__ = ["run_eagerly"]

_COROUTINE = types.CoroutineType


def run_eagerly(awaitable: Awaitable[Any]) -> Awaitable[Any] | None:
    """Run ``awaitable`` until it first waits.

    Returns None when it finished; otherwise an awaitable of the rest, which the
    caller awaits (in a task) exactly once, or drops. An exception raised before
    the first wait propagates from here.
    """
    coroutine = awaitable if isinstance(awaitable, _COROUTINE) else _await(awaitable)
    try:
        yielded = coroutine.send(None)
    except StopIteration:
        return None
    return _Rest(coroutine, yielded)


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class _Rest:
    """The rest of a coroutine that was started by hand and is waiting on ``yielded``.

    Awaiting it hands ``yielded`` to the awaiting task (which waits on it as if the
    coroutine had yielded it to the task directly), then relays every value and
    exception between the task and the coroutine until the coroutine returns.
    """

    __slots__ = ("coroutine", "yielded")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coroutine = coroutine
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, yielded = self.coroutine, self.yielded
        while True:
            try:
                value = yield yielded
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:
                try:
                    yielded = coroutine.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = coroutine.send(value)
            except StopIteration as stop:
                return stop.value
