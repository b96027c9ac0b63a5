"""The broker interface: publish bytes to a subject, subscribe to subjects by pattern.

It is shaped like core NATS so that the in-memory broker and the NATS broker are
interchangeable. Subjects and patterns follow NATS's rules (see ``subjects``). Payloads are
bytes, encoded once by the publisher however many subscribers receive them.

Two ways to subscribe:

- ``subscribe(pattern, callback)`` runs a plain function inline on delivery. It is the hot
  path for live pages, which only mark a view dirty: no task, no queue per subscriber.
  The callback must be quick and must not block.
- ``subscribe_queue(pattern, max_pending=...)`` buffers messages for a consumer task that
  iterates with ``async for``. The buffer is bounded: when it is full, new messages are
  dropped and counted, so a slow consumer never blocks the publisher nor grows memory.

Subscribing is synchronous and readiness is awaited apart: ``subscribe`` files the
subscription at once and returns it; ``await subscription.ready()`` returns once the broker
routes every message published from then on to it (on NATS: the SUB has reached the server,
proved by a flush). Why not ``async def subscribe``: a subscriber that must not miss a change
(a live view before its first render) awaits ``ready()``, while registration stays one
synchronous step, so the live engine can create a view and file its subscriptions with no
await in between (two streams opening the same view at once cannot both subscribe it, nor
join it half-subscribed), and every viewer of the view awaits the same subscriptions.

Delivery is at most once: a networked broker may lose messages while it is disconnected.
After it reconnects it calls its reconnect listeners (``add_reconnect_listener``), and the
live engine then re-renders every view, which is safe because a render carries the whole
state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol

import msgspec

__all__ = [
    "Broker",
    "BrokerClosed",
    "BrokerError",
    "BrokerUnavailable",
    "Callback",
    "Message",
    "QueueSubscription",
    "ReconnectListener",
    "Subscription",
    "SubscriptionClosed",
]


class Message(msgspec.Struct, frozen=True, gc=False):
    """One published message; every subscriber receives the same instance.

    ``gc=False``: strings, bytes and a str-to-str mapping cannot form reference cycles, and
    untracked objects keep the garbage collector's work down when thousands are in flight.
    """

    subject: str
    data: bytes
    headers: Mapping[str, str] | None = None


#: A subscriber's function, called inline with each message it receives.
Callback = Callable[[Message], None]
#: Called with no arguments after a broker reconnected; it must be quick and not block.
ReconnectListener = Callable[[], None]


class BrokerError(Exception):
    """Base class of the broker's errors."""


class BrokerClosed(BrokerError):
    """The broker is not running: not started yet, or closed."""


class BrokerUnavailable(BrokerError):
    """The broker is running but cannot reach its server now (a networked broker whose
    server is away): nothing was sent; trying again later may succeed."""


class SubscriptionClosed(BrokerError):
    """The queue subscription was unsubscribed or its broker closed."""


class Subscription(Protocol):
    """A callback subscription."""

    @property
    def pattern(self) -> str:
        """The pattern subscribed to."""
        ...

    async def ready(self) -> None:
        """Return once every message published from now on reaches this subscription.

        Returns at once when subscribing takes effect immediately (in process); waits for
        the server's acknowledgement on a networked broker. ``SubscriptionClosed`` if the
        subscription was unsubscribed or its broker closed; ``BrokerError`` if it could not
        be made. Any number of tasks may await it.
        """
        ...

    def unsubscribe(self) -> None:
        """Stop delivery; the callback is not called again. Calling it twice is harmless."""
        ...


class QueueSubscription(Protocol):
    """A subscription whose messages wait in a bounded buffer for ``async for``."""

    @property
    def pattern(self) -> str:
        """The pattern subscribed to."""
        ...

    @property
    def max_pending(self) -> int:
        """How many messages the buffer holds before new ones are dropped."""
        ...

    @property
    def pending(self) -> int:
        """How many messages are waiting in the buffer."""
        ...

    @property
    def dropped(self) -> int:
        """How many messages were dropped because the buffer was full."""
        ...

    async def ready(self) -> None:
        """As ``Subscription.ready``: once it returns, no message published later is missed."""
        ...

    async def next(self) -> Message:
        """Wait for the next message; ``SubscriptionClosed`` once unsubscribed or closed."""
        ...

    def __aiter__(self) -> AsyncIterator[Message]: ...

    async def __anext__(self) -> Message: ...

    def unsubscribe(self) -> None:
        """Stop delivery, discard the buffer and end iteration. Calling it twice is harmless."""
        ...


class Broker(Protocol):
    """Publish/subscribe by subject, in one process or across many."""

    @property
    def published(self) -> int:
        """Messages published through this broker."""
        ...

    @property
    def delivered(self) -> int:
        """Messages handed to a subscriber (one per subscriber reached)."""
        ...

    @property
    def dropped(self) -> int:
        """Messages a queue subscription dropped because its buffer was full."""
        ...

    async def start(self) -> None:
        """Connect; publishing and subscribing need a started broker.

        Idempotent and safe under concurrency: callers that overlap all wait for the one
        start, and starting a running broker returns at once. ``BrokerClosed`` once closed.
        """
        ...

    async def close(self) -> None:
        """End every subscription (queue iterators stop) and disconnect. Idempotent."""
        ...

    def add_reconnect_listener(self, listener: ReconnectListener) -> None:
        """Call ``listener()`` each time the broker reconnected after losing its connection.

        Messages published meanwhile may be lost, so a listener re-reads the state (the live
        engine re-renders every view). May be called before ``start``. A listener that raises
        is logged and does not stop the others.
        """
        ...

    def remove_reconnect_listener(self, listener: ReconnectListener) -> None:
        """Stop calling ``listener``; removing one that is not there is harmless."""
        ...

    async def publish(
        self, subject: str, data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send ``data`` to every subscription whose pattern matches ``subject``.

        ``ValueError`` if the subject is invalid or has wildcards; ``BrokerClosed`` if the
        broker is not running. Never waits for subscribers.
        """
        ...

    def subscribe(self, pattern: str, callback: Callback) -> Subscription:
        """Call ``callback(message)`` inline for each message matching ``pattern``.

        Returns at once; ``await subscription.ready()`` before relying on every later
        message arriving. A callback that raises is logged and does not stop delivery to
        the others. ``ValueError`` if the pattern is invalid; ``BrokerClosed`` if the
        broker is not running.
        """
        ...

    def subscribe_queue(self, pattern: str, *, max_pending: int = 1024) -> QueueSubscription:
        """Buffer messages matching ``pattern`` (at most ``max_pending``) for ``async for``.

        As ``subscribe``: returns at once, ``ready()`` tells when it receives everything.
        """
        ...
