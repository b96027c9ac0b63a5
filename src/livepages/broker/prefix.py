"""A subject prefix per app: many apps share one broker (one NATS) without hearing each other.

``with_prefix(broker, "shop")`` returns a ``Broker`` in which every subject and pattern is
relative to ``shop``: publishing to ``chat.42`` sends ``shop.chat.42``, subscribing to
``chat.>`` listens to ``shop.chat.>``, and the messages handed to subscribers carry their
subject without the prefix again. The app wraps its broker once, at construction, so nothing
that publishes or subscribes through ``app.broker`` can forget the prefix.

Without a prefix it returns the broker itself: no wrapper, nothing added on the hot path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from livepages.broker.base import (
    Broker,
    Callback,
    Message,
    QueueSubscription,
    ReconnectListener,
    Subscription,
)
from livepages.broker.subjects import validate_pattern, validate_subject

__all__ = ["PrefixedBroker", "with_prefix"]


def with_prefix(broker: Broker, prefix: str) -> Broker:
    """``broker`` with every subject under ``prefix``; ``broker`` itself if ``prefix`` is ""."""
    return PrefixedBroker(broker, prefix) if prefix else broker


class PrefixedBroker:
    """A ``Broker`` whose subjects live under ``prefix`` on the broker it wraps.

    Starting and closing pass through, and so do the counters, which count the wrapped
    broker's traffic, every prefix included.
    """

    def __init__(self, broker: Broker, prefix: str) -> None:
        try:
            # Plain tokens only: a wildcard would widen every pattern beyond the app.
            validate_subject(prefix)
        except ValueError as exc:
            raise ValueError(f"invalid subject prefix: {exc}") from None
        self.broker = broker
        self.prefix = prefix
        self._head = prefix + "."

    def __repr__(self) -> str:
        return f"<PrefixedBroker {self.prefix!r} on {self.broker!r}>"

    @property
    def published(self) -> int:
        return self.broker.published

    @property
    def delivered(self) -> int:
        return self.broker.delivered

    @property
    def dropped(self) -> int:
        return self.broker.dropped

    async def start(self) -> None:
        """Start the wrapped broker."""
        await self.broker.start()

    async def close(self) -> None:
        """Close the wrapped broker."""
        await self.broker.close()

    def add_reconnect_listener(self, listener: ReconnectListener) -> None:
        """Listen to the wrapped broker's reconnects."""
        self.broker.add_reconnect_listener(listener)

    def remove_reconnect_listener(self, listener: ReconnectListener) -> None:
        """Stop listening to the wrapped broker's reconnects."""
        self.broker.remove_reconnect_listener(listener)

    async def publish(
        self, subject: str, data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Publish to ``<prefix>.<subject>``."""
        validate_subject(subject)  # first, so that an error names the caller's subject
        await self.broker.publish(self._head + subject, data, headers)

    def subscribe(self, pattern: str, callback: Callback) -> Subscription:
        """Subscribe to ``<prefix>.<pattern>``; messages arrive without the prefix."""
        validate_pattern(pattern)
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        cut = len(self._head)

        def relative(message: Message) -> None:
            callback(Message(message.subject[cut:], message.data, message.headers))

        return _Subscription(pattern, self.broker.subscribe(self._head + pattern, relative))

    def subscribe_queue(self, pattern: str, *, max_pending: int = 1024) -> QueueSubscription:
        """Buffer messages of ``<prefix>.<pattern>``; they are read without the prefix."""
        validate_pattern(pattern)
        inner = self.broker.subscribe_queue(self._head + pattern, max_pending=max_pending)
        return _QueueSubscription(pattern, len(self._head), inner)


class _Subscription:
    """A callback subscription seen from inside the prefix."""

    __slots__ = ("_inner", "pattern")

    def __init__(self, pattern: str, inner: Subscription) -> None:
        self.pattern = pattern
        self._inner = inner

    def __repr__(self) -> str:
        return f"<Subscription {self.pattern!r} as {self._inner.pattern!r}>"

    async def ready(self) -> None:
        await self._inner.ready()

    def unsubscribe(self) -> None:
        self._inner.unsubscribe()


class _QueueSubscription:
    """A queue subscription seen from inside the prefix: subjects are read without it."""

    __slots__ = ("_cut", "_inner", "pattern")

    def __init__(self, pattern: str, cut: int, inner: QueueSubscription) -> None:
        self.pattern = pattern
        self._cut = cut
        self._inner = inner

    def __repr__(self) -> str:
        return f"<QueueSubscription {self.pattern!r} as {self._inner.pattern!r}>"

    @property
    def max_pending(self) -> int:
        return self._inner.max_pending

    @property
    def pending(self) -> int:
        return self._inner.pending

    @property
    def dropped(self) -> int:
        return self._inner.dropped

    async def ready(self) -> None:
        await self._inner.ready()

    async def next(self) -> Message:
        message = await self._inner.next()
        return Message(message.subject[self._cut :], message.data, message.headers)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        message = await self._inner.__anext__()
        return Message(message.subject[self._cut :], message.data, message.headers)

    def unsubscribe(self) -> None:
        self._inner.unsubscribe()
