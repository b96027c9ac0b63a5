"""The in-process broker: zero set-up, for one process.

Publishing walks the subject index and hands the one ``Message`` to each matching
subscription before ``publish`` returns: callbacks run inline, queue subscriptions append
to their bounded buffer and wake their consumer. Nothing is awaited, so a slow subscriber
can never hold up the publisher. A subscription is filed by ``subscribe`` itself, so its
``ready()`` returns at once. The broker never loses its connection; ``simulate_reconnect``
calls the reconnect listeners as a networked broker would, for tests.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from types import TracebackType

from livepages.broker.base import (
    BrokerClosed,
    Callback,
    Message,
    QueueSubscription,
    ReconnectListener,
    Subscription,
    SubscriptionClosed,
)
from livepages.broker.queue import MessageQueue, QueueReader
from livepages.broker.subjects import SubjectIndex, validate_pattern, validate_subject

__all__ = ["MemoryBroker"]

logger = logging.getLogger("livepages.broker")


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class _CallbackSubscription:
    __slots__ = ("_broker", "callback", "pattern")

    def __init__(self, broker: MemoryBroker, pattern: str, callback: Callback) -> None:
        self._broker: MemoryBroker | None = broker  # None once unsubscribed
        self.pattern = pattern
        self.callback = callback

    def __repr__(self) -> str:
        return f"<Subscription {self.pattern!r}>"

    async def ready(self) -> None:
        """Filed at subscribe already: ready at once, unless unsubscribed since."""
        _check_open(self._broker, self.pattern)

    def deliver(self, message: Message) -> int:
        """Run the callback; return how many messages were handed over (0 or 1)."""
        if self._broker is None:  # unsubscribed by an earlier subscriber of this message
            return 0
        self.callback(message)
        return 1

    def unsubscribe(self) -> None:
        if self._broker is not None:
            self._broker._remove(self)
            self._broker = None


class _QueueSubscription(QueueReader):
    __slots__ = ("_broker", "pattern", "queue")

    def __init__(self, broker: MemoryBroker, pattern: str, max_pending: int) -> None:
        self._broker: MemoryBroker | None = broker  # None once unsubscribed
        self.pattern = pattern
        self.queue = MessageQueue(max_pending)

    async def ready(self) -> None:
        """Filed at subscribe already: ready at once, unless unsubscribed since."""
        self._check_open()

    def _check_open(self) -> None:
        _check_open(self._broker, self.pattern)

    def deliver(self, message: Message) -> int:
        """Buffer the message, or drop and count it when the buffer is full."""
        if self._broker is None:
            return 0
        if self.queue.put(message):
            return 1
        self._broker._dropped += 1
        return 0

    def unsubscribe(self) -> None:
        if self._broker is not None:
            self._broker._remove(self)
            self._broker = None
            self.queue.close()


_Subscriber = _CallbackSubscription | _QueueSubscription


def _check_open(broker: MemoryBroker | None, pattern: str) -> None:
    """``SubscriptionClosed`` for a subscription whose broker link is gone."""
    if broker is None:
        raise SubscriptionClosed(f"the subscription to {pattern!r} is closed")


class MemoryBroker:
    """A ``Broker`` within one process (see ``livepages.broker.base`` for the contract).

    Also an async context manager that starts and closes it.
    """

    def __init__(self) -> None:
        self._index: SubjectIndex[_Subscriber] = SubjectIndex()
        self._state = _State.NEW
        self._listeners: list[ReconnectListener] = []
        self._published = 0
        self._delivered = 0
        self._dropped = 0

    def __repr__(self) -> str:
        return f"<MemoryBroker {self._state.value} subscriptions={len(self._index)}>"

    @property
    def published(self) -> int:
        return self._published

    @property
    def delivered(self) -> int:
        return self._delivered

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def subscriptions(self) -> int:
        """How many subscriptions are active."""
        return len(self._index)

    async def start(self) -> None:
        """Start the broker; starting it again is harmless, restarting a closed one is not.

        Nothing is awaited, so concurrent starts cannot interleave.
        """
        if self._state is _State.CLOSED:
            raise BrokerClosed("a closed broker cannot be started again")
        self._state = _State.RUNNING

    async def close(self) -> None:
        """Unsubscribe everything: queue iterators end. Idempotent."""
        self._state = _State.CLOSED
        for subscription in list(self._index):
            subscription.unsubscribe()

    def add_reconnect_listener(self, listener: ReconnectListener) -> None:
        """Call ``listener()`` after a reconnect: here only from ``simulate_reconnect``."""
        self._listeners.append(listener)

    def remove_reconnect_listener(self, listener: ReconnectListener) -> None:
        """Stop calling ``listener``; harmless if it is not registered."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def simulate_reconnect(self) -> None:
        """A test hook: call every reconnect listener, as a networked broker does after it
        lost its connection and got it back. The memory broker itself never disconnects."""
        self._check_running()
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                logger.exception("reconnect listener %r failed", listener)

    async def __aenter__(self) -> MemoryBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_running(self) -> None:
        if self._state is not _State.RUNNING:
            closed = self._state is _State.CLOSED
            state = "closed" if closed else "not started (call start() first)"
            raise BrokerClosed(f"the broker is {state}")

    async def publish(
        self, subject: str, data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Deliver ``data`` to every matching subscription before returning."""
        validate_subject(subject)
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        self._check_running()
        self._published += 1
        # Copied, as NATS would serialize them: later changes by the caller are not seen.
        self.deliver(Message(subject, data, dict(headers) if headers is not None else None))

    def deliver(self, message: Message) -> int:
        """Hand ``message`` to the local subscriptions it matches; return how many took it.

        ``publish`` uses it; a networked broker can use it for the messages it receives.
        """
        delivered = 0
        for subscription in self._index.match(message.subject):
            try:
                delivered += subscription.deliver(message)
            except Exception:
                delivered += 1
                logger.exception(
                    "a subscriber to %r failed on a message to %r",
                    subscription.pattern,
                    message.subject,
                )
        self._delivered += delivered
        return delivered

    def subscribe(self, pattern: str, callback: Callback) -> Subscription:
        """Call ``callback(message)`` inline for each message matching ``pattern``."""
        validate_pattern(pattern)
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        self._check_running()
        subscription = _CallbackSubscription(self, pattern, callback)
        self._index.add(pattern, subscription)
        return subscription

    def subscribe_queue(self, pattern: str, *, max_pending: int = 1024) -> QueueSubscription:
        """Buffer up to ``max_pending`` messages matching ``pattern`` for ``async for``."""
        validate_pattern(pattern)
        subscription = _QueueSubscription(self, pattern, max_pending)  # checks max_pending
        self._check_running()
        self._index.add(pattern, subscription)
        return subscription

    def _remove(self, subscription: _Subscriber) -> None:
        self._index.remove(subscription.pattern, subscription)
