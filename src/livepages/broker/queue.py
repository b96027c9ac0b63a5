"""The bounded buffer behind every broker's queue subscriptions.

A queue subscription holds messages for one consumer task that reads them with
``async for``. When the buffer is full the *newest* message is refused and
counted (not the oldest evicted, as ``deque(maxlen=...)`` would), so what the
consumer reads is a prefix of what was published, never reordered, and a slow
consumer neither blocks the publisher nor grows memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from livepages.broker.base import Message, SubscriptionClosed

__all__ = ["MessageQueue", "QueueReader"]


class MessageQueue:
    """At most ``max_pending`` messages, read by one task at a time."""

    __slots__ = ("_buffer", "_waiter", "dropped", "max_pending")

    def __init__(self, max_pending: int) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        self.max_pending = max_pending
        #: Messages refused because the buffer was full.
        self.dropped = 0
        self._buffer: deque[Message] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._buffer)

    def put(self, message: Message) -> bool:
        """Buffer ``message``; False (and counted) when the buffer is full."""
        if len(self._buffer) >= self.max_pending:
            self.dropped += 1
            return False
        self._buffer.append(message)
        self.wake()
        return True

    def wake(self) -> None:
        """Let the waiting reader look again (a message came, or the queue closed)."""
        # A waiter whose task was cancelled is already done: nothing to wake.
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self, check_open: Callable[[], None]) -> Message:
        """The next message; ``check_open`` raises once the subscription is closed."""
        while not self._buffer:
            check_open()
            if self._waiter is not None:
                raise RuntimeError("another task is already waiting on this subscription")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._buffer.popleft()

    def close(self) -> None:
        """Discard what is buffered and wake the reader, which then finds it closed."""
        self._buffer.clear()
        self.wake()


class QueueReader:
    """What every broker's queue subscription shares: its counters and reading its
    :class:`MessageQueue` with ``async for`` (a closed subscription ends the loop).

    A subclass sets ``pattern`` and ``queue`` and says when it is closed (``_check_open``).
    """

    __slots__ = ()

    pattern: str
    queue: MessageQueue

    def __repr__(self) -> str:
        return f"<QueueSubscription {self.pattern!r} pending={self.pending}>"

    @property
    def max_pending(self) -> int:
        return self.queue.max_pending

    @property
    def pending(self) -> int:
        return len(self.queue)

    @property
    def dropped(self) -> int:
        return self.queue.dropped

    def _check_open(self) -> None:
        raise NotImplementedError

    async def next(self) -> Message:
        return await self.queue.get(self._check_open)

    def __aiter__(self) -> QueueReader:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.next()
        except SubscriptionClosed:
            raise StopAsyncIteration from None
