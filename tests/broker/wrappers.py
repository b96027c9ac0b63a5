"""Brokers that wrap another one to play what a networked broker does: a start that takes
time or fails, subscriptions that take effect late or never."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from livepages.broker import (
    Broker,
    BrokerError,
    Callback,
    QueueSubscription,
    ReconnectListener,
    Subscription,
    SubscriptionClosed,
)


class DelegatingBroker:
    """Passes everything to ``inner``; subclasses change one thing."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner

    @property
    def published(self) -> int:
        return self.inner.published

    @property
    def delivered(self) -> int:
        return self.inner.delivered

    @property
    def dropped(self) -> int:
        return self.inner.dropped

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    def add_reconnect_listener(self, listener: ReconnectListener) -> None:
        self.inner.add_reconnect_listener(listener)

    def remove_reconnect_listener(self, listener: ReconnectListener) -> None:
        self.inner.remove_reconnect_listener(listener)

    async def publish(
        self, subject: str, data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        await self.inner.publish(subject, data, headers)

    def subscribe(self, pattern: str, callback: Callback) -> Subscription:
        return self.inner.subscribe(pattern, callback)

    def subscribe_queue(self, pattern: str, *, max_pending: int = 1024) -> QueueSubscription:
        return self.inner.subscribe_queue(pattern, max_pending=max_pending)


class SlowStart(DelegatingBroker):
    """A start that waits, as a connection to a server does; fails while ``failures`` > 0."""

    def __init__(self, inner: Broker, delay: float = 0.05, failures: int = 0) -> None:
        super().__init__(inner)
        self.delay = delay
        self.failures = failures
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise BrokerError("no server")
        await self.inner.start()


class LateSubscription:
    """A subscription that reaches the inner broker only after ``delay`` seconds, as a SUB
    reaches a server: what is published before then is not delivered."""

    def __init__(self, inner: Broker, pattern: str, callback: Callback, delay: float) -> None:
        self.pattern = pattern
        self._inner_broker = inner
        self._callback = callback
        self._subscription: Subscription | None = None
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._subscribe(delay))

    async def _subscribe(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self._closed:
            self._subscription = self._inner_broker.subscribe(self.pattern, self._callback)

    async def ready(self) -> None:
        await asyncio.shield(self._task)
        if self._closed:
            raise SubscriptionClosed(f"the subscription to {self.pattern!r} is closed")

    def unsubscribe(self) -> None:
        self._closed = True
        if self._subscription is not None:
            self._subscription.unsubscribe()


class LateSubscriptions(DelegatingBroker):
    """Callback subscriptions on patterns under ``late`` take effect ``delay`` seconds late."""

    def __init__(self, inner: Broker, delay: float = 0.2, late: str = "") -> None:
        super().__init__(inner)
        self.delay = delay
        self.late = late

    def subscribe(self, pattern: str, callback: Callback) -> Subscription:
        if not pattern.startswith(self.late):
            return self.inner.subscribe(pattern, callback)
        return LateSubscription(self.inner, pattern, callback, self.delay)


class BrokenSubscription:
    """A subscription that was filed but never became ready (the server refused it)."""

    def __init__(self, inner: Subscription) -> None:
        self.pattern = inner.pattern
        self._inner = inner

    async def ready(self) -> None:
        raise BrokerError(f"the server refused {self.pattern!r}")

    def unsubscribe(self) -> None:
        self._inner.unsubscribe()


class BrokenSubscriptions(DelegatingBroker):
    """While ``broken`` is set, callback subscriptions under ``prefix`` never get ready."""

    def __init__(self, inner: Broker, prefix: str) -> None:
        super().__init__(inner)
        self.prefix = prefix
        self.broken = True

    def subscribe(self, pattern: str, callback: Callback) -> Subscription:
        subscription = self.inner.subscribe(pattern, callback)
        if self.broken and pattern.startswith(self.prefix):
            return BrokenSubscription(subscription)
        return subscription
