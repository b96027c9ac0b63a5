"""Tests for livepages.broker.memory: the in-process broker."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from livepages.broker import (
    Broker,
    BrokerClosed,
    MemoryBroker,
    Message,
    QueueSubscription,
    SubscriptionClosed,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    async with MemoryBroker() as broker:
        yield broker


def collect(broker: Broker, pattern: str) -> list[Message]:
    """Subscribe with a callback that keeps what it receives."""
    received: list[Message] = []
    broker.subscribe(pattern, received.append)
    return received


async def test_messages_reach_every_matching_pattern(broker: MemoryBroker) -> None:
    exact = collect(broker, "chat.room.42")
    one = collect(broker, "chat.*.42")
    rest = collect(broker, "chat.>")
    everything = collect(broker, ">")
    other = collect(broker, "chat.room.43")
    too_deep = collect(broker, "chat.room.42.*")

    await broker.publish("chat.room.42", b"hello", {"Nats-Msg-Id": "1"})

    message = Message("chat.room.42", b"hello", {"Nats-Msg-Id": "1"})
    assert exact == one == rest == everything == [message]
    assert other == too_deep == []
    # Encoded once: every subscriber gets the very same object.
    assert exact[0] is one[0] is rest[0] is everything[0]
    assert (broker.published, broker.delivered, broker.dropped) == (1, 4, 0)


async def test_full_wildcard_sees_every_subject(broker: MemoryBroker) -> None:
    everything = collect(broker, ">")
    for subject in ["a", "a.b", "x.y.z.w"]:
        await broker.publish(subject, subject.encode())
    assert [m.subject for m in everything] == ["a", "a.b", "x.y.z.w"]


async def test_publishing_to_nobody_counts_as_published(broker: MemoryBroker) -> None:
    await broker.publish("nobody.listens", b"")
    assert (broker.published, broker.delivered) == (1, 0)


async def test_headers_are_copied_at_publish(broker: MemoryBroker) -> None:
    received = collect(broker, "a")
    headers = {"k": "v"}
    await broker.publish("a", b"", headers)
    headers["k"] = "changed"
    await broker.publish("a", b"")
    assert received[0].headers == {"k": "v"}
    assert received[1].headers is None


async def test_messages_are_not_tracked_by_the_garbage_collector(broker: MemoryBroker) -> None:
    received = collect(broker, "a")
    await broker.publish("a", b"x", {"k": "v"})
    assert not gc.is_tracked(received[0])


@pytest.mark.parametrize("subject", ["", "a..b", "a b", "chat.*", "chat.>", "a*"])
async def test_publish_refuses_invalid_subjects(broker: MemoryBroker, subject: str) -> None:
    with pytest.raises(ValueError, match=r"subject|wildcard"):
        await broker.publish(subject, b"")
    assert broker.published == 0


@pytest.mark.parametrize("data", ["text", bytearray(b"x"), None, memoryview(b"x")])
async def test_publish_wants_bytes(broker: MemoryBroker, data: Any) -> None:
    with pytest.raises(TypeError, match="data must be bytes"):
        await broker.publish("a", data)


@pytest.mark.parametrize("pattern", ["", "a..b", "a.>.b", "a b", "a*"])
async def test_subscribe_refuses_invalid_patterns(broker: MemoryBroker, pattern: str) -> None:
    with pytest.raises(ValueError, match="pattern"):
        broker.subscribe(pattern, print)
    with pytest.raises(ValueError, match="pattern"):
        broker.subscribe_queue(pattern)
    assert broker.subscriptions == 0


async def test_subscribe_wants_a_callable(broker: MemoryBroker) -> None:
    no_callback: Any = "print"
    with pytest.raises(TypeError, match="callable"):
        broker.subscribe("a", no_callback)


@pytest.mark.parametrize("max_pending", [0, -1])
async def test_a_queue_holds_at_least_one_message(broker: MemoryBroker, max_pending: int) -> None:
    with pytest.raises(ValueError, match="max_pending"):
        broker.subscribe_queue("a", max_pending=max_pending)


async def test_a_broker_works_only_between_start_and_close() -> None:
    broker = MemoryBroker()
    with pytest.raises(BrokerClosed, match="not started"):
        await broker.publish("a", b"")
    with pytest.raises(BrokerClosed, match="not started"):
        broker.subscribe("a", print)
    with pytest.raises(BrokerClosed, match="not started"):
        broker.subscribe_queue("a")
    await broker.start()
    await broker.start()  # harmless
    await broker.publish("a", b"")
    await broker.close()
    await broker.close()  # harmless
    with pytest.raises(BrokerClosed, match="closed"):
        await broker.publish("a", b"")
    with pytest.raises(BrokerClosed, match="closed"):
        broker.subscribe("a", print)
    with pytest.raises(BrokerClosed, match="cannot be started again"):
        await broker.start()


async def test_a_failing_callback_does_not_stop_the_others(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    before = collect(broker, "a.b")

    def explode(message: Message) -> None:
        raise RuntimeError("boom")

    broker.subscribe("a.*", explode)
    after = collect(broker, "a.>")
    with caplog.at_level(logging.ERROR, logger="livepages.broker"):
        await broker.publish("a.b", b"1")
        await broker.publish("a.b", b"2")
    assert [m.data for m in before] == [m.data for m in after] == [b"1", b"2"]
    failures = [r for r in caplog.records if r.name == "livepages.broker"]
    assert len(failures) == 2
    assert "'a.*'" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert str(failures[0].exc_info[1]) == "boom"
    assert broker.delivered == 6


async def test_unsubscribe_stops_delivery(broker: MemoryBroker) -> None:
    received: list[Message] = []
    subscription = broker.subscribe("a", received.append)
    assert subscription.pattern == "a"
    await broker.publish("a", b"1")
    subscription.unsubscribe()
    subscription.unsubscribe()  # harmless
    await broker.publish("a", b"2")
    assert [m.data for m in received] == [b"1"]
    assert broker.subscriptions == 0


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


async def test_a_queue_subscription_yields_messages_in_order(broker: MemoryBroker) -> None:
    queue = broker.subscribe_queue("room.*")
    for number in range(5):
        await broker.publish(f"room.{number}", str(number).encode())
    assert queue.pending == 5
    assert [(await queue.next()).data for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]
    assert queue.pending == 0


async def test_a_full_queue_drops_new_messages_and_counts_them(broker: MemoryBroker) -> None:
    queue = broker.subscribe_queue("a", max_pending=100)
    callback = collect(broker, "a")
    for number in range(10_000):
        await broker.publish("a", str(number).encode())
        assert queue.pending <= 100
    assert queue.pending == queue.max_pending == 100
    assert queue.dropped == broker.dropped == 9_900
    assert len(callback) == 10_000  # the other subscriber misses nothing
    assert broker.delivered == 10_000 + 100
    # The oldest messages are kept: the consumer sees a prefix, in order.
    assert [(await queue.next()).data for _ in range(100)] == [str(n).encode() for n in range(100)]
    await broker.publish("a", b"again")
    assert (await queue.next()).data == b"again"


async def test_a_publisher_faster_than_its_consumer(broker: MemoryBroker) -> None:
    queue = broker.subscribe_queue("tick", max_pending=8)
    total = 2_000
    received: list[int] = []
    peak = 0
    published_all = False
    drained = anyio.Event()

    async def consume() -> None:
        async for message in queue:
            received.append(int(message.data))
            for _ in range(3):  # three times slower than the publisher
                await anyio.lowlevel.checkpoint()
            if published_all and not queue.pending:
                drained.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            for number in range(total):
                await broker.publish("tick", str(number).encode())
                peak = max(peak, queue.pending)
                await anyio.lowlevel.checkpoint()
            published_all = True
            if queue.pending:
                await drained.wait()
            queue.unsubscribe()

    assert peak == 8  # the buffer filled up, and never went past its bound
    assert queue.dropped > 0
    assert len(received) + queue.dropped == total
    assert received == sorted(set(received))  # no reordering, no duplicates


async def test_unsubscribe_ends_iteration_and_discards_the_buffer(broker: MemoryBroker) -> None:
    queue = broker.subscribe_queue("a")
    received: list[bytes] = []

    async def consume() -> None:
        async for message in queue:
            received.append(message.data)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            await broker.publish("a", b"1")
            await anyio.sleep(0.01)
            await broker.publish("a", b"2")  # still buffered when unsubscribing
            queue.unsubscribe()
    assert received == [b"1"]
    assert queue.pending == 0
    with pytest.raises(SubscriptionClosed):
        await queue.next()
    await broker.publish("a", b"3")
    assert queue.pending == 0
    queue.unsubscribe()  # harmless


async def test_close_ends_every_queue_iterator() -> None:
    broker = MemoryBroker()
    await broker.start()
    queues = [broker.subscribe_queue(p) for p in ["a", "a.*", "a.>", ">", "b.c.d"]]
    collect(broker, "x.y")
    finished: list[QueueSubscription] = []

    async def consume(queue: QueueSubscription) -> None:
        async for _ in queue:
            pass
        finished.append(queue)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            for queue in queues:
                tasks.start_soon(consume, queue)
            await anyio.sleep(0.01)
            await broker.close()
    assert len(finished) == len(queues)
    assert broker.subscriptions == 0


async def test_only_one_task_may_wait_on_a_queue(broker: MemoryBroker) -> None:
    queue = broker.subscribe_queue("a")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(queue.next)
            await anyio.sleep(0.01)
            with pytest.raises(RuntimeError, match="another task"):
                await queue.next()
            await broker.publish("a", b"")


async def test_a_cancelled_wait_leaves_the_queue_usable(broker: MemoryBroker) -> None:
    queue = broker.subscribe_queue("a")
    with anyio.move_on_after(0.01):
        await queue.next()
    await broker.publish("a", b"after")
    with anyio.fail_after(10):
        assert (await queue.next()).data == b"after"


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
