"""Tests for livepages.broker.memory: the in-process broker.

It runs the broker contract (``contract.py``); the tests below are what only the in-process
broker does: inline delivery in the publisher's call, one message object for every
subscriber, the ``deliver`` and ``simulate_reconnect`` hooks.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from livepages.broker import Broker, BrokerClosed, MemoryBroker, Message
from tests.broker.contract import BrokerContract, BrokerHarness

pytestmark = pytest.mark.anyio


class MemoryHarness:
    """The contract's view of the memory broker."""

    def new(self) -> Broker:
        return MemoryBroker()

    async def reconnect(self, broker: Broker) -> None:
        assert isinstance(broker, MemoryBroker)
        broker.simulate_reconnect()

    async def settle(self, broker: Broker) -> None:
        """Nothing to wait for: ``publish`` delivers before it returns."""


class TestMemoryBroker(BrokerContract):
    @pytest.fixture
    def harness(self) -> BrokerHarness:
        return MemoryHarness()


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    async with MemoryBroker() as broker:
        yield broker


def collect(broker: Broker, pattern: str) -> list[Message]:
    """Subscribe with a callback that keeps what it receives."""
    received: list[Message] = []
    broker.subscribe(pattern, received.append)
    return received


async def test_every_subscriber_gets_the_same_message_object(broker: MemoryBroker) -> None:
    exact = collect(broker, "chat.room.42")
    one = collect(broker, "chat.*.42")
    rest = collect(broker, "chat.>")
    await broker.publish("chat.room.42", b"hello")
    # Encoded once: every subscriber gets the very same object.
    assert exact[0] is one[0] is rest[0]


async def test_messages_are_not_tracked_by_the_garbage_collector(broker: MemoryBroker) -> None:
    received = collect(broker, "a")
    await broker.publish("a", b"x", {"k": "v"})
    assert not gc.is_tracked(received[0])


async def test_subscriptions_count_what_is_filed(broker: MemoryBroker) -> None:
    with pytest.raises(ValueError, match="pattern"):
        broker.subscribe("a..b", print)
    assert broker.subscriptions == 0
    subscription = broker.subscribe("a", print)
    queue = broker.subscribe_queue("a.>")
    assert broker.subscriptions == 2
    subscription.unsubscribe()
    queue.unsubscribe()
    assert broker.subscriptions == 0
    broker.subscribe("b", print)
    await broker.close()
    assert broker.subscriptions == 0


async def test_subscribing_takes_effect_at_once(broker: MemoryBroker) -> None:
    received = collect(broker, "a")  # no ready() awaited
    await broker.publish("a", b"")
    assert len(received) == 1


async def test_unsubscribing_another_subscriber_during_delivery(broker: MemoryBroker) -> None:
    calls: list[str] = []

    def first(message: Message) -> None:
        calls.append("first")
        second.unsubscribe()
        own.unsubscribe()

    own = broker.subscribe("a", first)
    second = broker.subscribe("a", lambda message: calls.append("second"))
    third = broker.subscribe("a", lambda message: calls.append("third"))
    await broker.publish("a", b"")
    await broker.publish("a", b"")
    # "second" was unsubscribed before its turn: it is not called, even for this message.
    assert calls == ["first", "third", "third"]
    assert broker.delivered == 3
    third.unsubscribe()
    assert broker.subscriptions == 0


async def test_subscribing_during_delivery_starts_with_the_next_message(
    broker: MemoryBroker,
) -> None:
    late: list[Message] = []

    def subscribe_late(message: Message) -> None:
        if not late and message.data == b"1":
            broker.subscribe("a", late.append)

    broker.subscribe("a", subscribe_late)
    await broker.publish("a", b"1")
    await broker.publish("a", b"2")
    assert [m.data for m in late] == [b"2"]


async def test_deliver_hands_a_received_message_to_local_subscribers(
    broker: MemoryBroker,
) -> None:
    received = collect(broker, "a.*")
    queue = broker.subscribe_queue("a.b", max_pending=1)
    message = Message("a.b", b"from elsewhere")
    assert broker.deliver(message) == 2
    assert broker.deliver(message) == 1  # the queue is full
    assert received == [message, message]
    assert broker.published == 0
    assert (broker.delivered, broker.dropped, queue.dropped) == (3, 1, 1)


async def test_a_reconnect_is_only_simulated_on_a_running_broker() -> None:
    broker = MemoryBroker()
    calls: list[int] = []
    broker.add_reconnect_listener(lambda: calls.append(1))
    with pytest.raises(BrokerClosed, match="not started"):
        broker.simulate_reconnect()
    async with broker:
        broker.simulate_reconnect()
    with pytest.raises(BrokerClosed, match="closed"):
        broker.simulate_reconnect()
    assert calls == [1]


async def test_ten_thousand_subscribers_on_one_subject(broker: MemoryBroker) -> None:
    counts = [0] * 10_000

    def make(n: int) -> Any:
        def bump(message: Message) -> None:
            counts[n] += 1

        return bump

    subscriptions = [broker.subscribe("page.home", make(n)) for n in range(10_000)]
    await broker.publish("page.home", b"changed")
    assert counts == [1] * 10_000
    for subscription in subscriptions:
        subscription.unsubscribe()
    assert broker.subscriptions == 0


def test_the_memory_broker_is_a_broker() -> None:
    broker: Broker = MemoryBroker()  # checked by mypy
    assert "new" in repr(broker)
