"""The broker contract: what every ``Broker`` implementation promises, as tests.

An implementation runs the suite by subclassing ``BrokerContract`` in a test module and
providing the ``harness`` fixture::

    class TestMyBroker(BrokerContract):
        @pytest.fixture
        def harness(self) -> BrokerHarness:
            return MyHarness()

The harness makes new (unstarted) brokers, makes one lose and regain its connection, and
waits until what was published has been delivered (at once in process; a round trip on a
network). Tests of what only one implementation does stay in that implementation's module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import pytest

from livepages import App, Event
from livepages.broker import (
    Broker,
    BrokerClosed,
    Message,
    QueueSubscription,
    SubscriptionClosed,
)
from tests.broker.wrappers import SlowStart


class BrokerHarness(Protocol):
    """How the contract drives one implementation."""

    def new(self) -> Broker:
        """A new broker, not started."""
        ...

    async def reconnect(self, broker: Broker) -> None:
        """Make ``broker`` lose its connection and get it back (its listeners then run)."""
        ...

    async def settle(self, broker: Broker) -> None:
        """Wait until every message published so far has reached local subscribers."""
        ...


@dataclass
class Pinged(Event, subject="ping.{n}"):
    n: int


async def collect(broker: Broker, pattern: str) -> list[Message]:
    """Subscribe (ready) with a callback that keeps what it receives."""
    received: list[Message] = []
    await broker.subscribe(pattern, received.append).ready()
    return received


@pytest.mark.anyio
class BrokerContract:
    """The tests every broker passes. Subclass it and override ``harness``."""

    @pytest.fixture
    def harness(self) -> BrokerHarness:
        raise NotImplementedError("a contract subclass provides the harness fixture")

    @pytest.fixture
    async def broker(self, harness: BrokerHarness) -> AsyncIterator[Broker]:
        broker = harness.new()
        await broker.start()
        yield broker
        await broker.close()

    # -- start and close --------------------------------------------------------------

    async def test_start_is_idempotent_and_safe_under_concurrency(
        self, harness: BrokerHarness
    ) -> None:
        broker = harness.new()
        with anyio.fail_after(10):
            await asyncio.gather(broker.start(), broker.start(), broker.start())
            await broker.start()
        received = await collect(broker, "a")
        await broker.publish("a", b"after")
        await harness.settle(broker)
        assert [m.data for m in received] == [b"after"]
        await broker.close()

    async def test_publishes_through_an_app_wait_for_its_one_start(
        self, harness: BrokerHarness
    ) -> None:
        slow = SlowStart(harness.new(), delay=0.05)
        app = App(broker=slow)
        try:
            with anyio.fail_after(10):
                outcomes = await asyncio.gather(
                    *(app.publish(Pinged(n)) for n in range(3)), return_exceptions=True
                )
            assert outcomes == [None, None, None]
            assert slow.starts == 1
            assert slow.published == 3
        finally:
            await app.shutdown()

    async def test_a_broker_works_only_between_start_and_close(
        self, harness: BrokerHarness
    ) -> None:
        broker = harness.new()
        with pytest.raises(BrokerClosed, match="not started"):
            await broker.publish("a", b"")
        with pytest.raises(BrokerClosed, match="not started"):
            broker.subscribe("a", print)
        with pytest.raises(BrokerClosed, match="not started"):
            broker.subscribe_queue("a")
        await broker.start()
        await broker.publish("a", b"")
        await broker.close()
        await broker.close()  # harmless
        with pytest.raises(BrokerClosed, match="closed"):
            await broker.publish("a", b"")
        with pytest.raises(BrokerClosed, match="closed"):
            broker.subscribe("a", print)
        with pytest.raises(BrokerClosed, match="cannot be started again"):
            await broker.start()

    async def test_close_ends_every_queue_iterator(self, harness: BrokerHarness) -> None:
        broker = harness.new()
        await broker.start()
        queues = [broker.subscribe_queue(p) for p in ["a", "a.*", "a.>", ">", "b.c.d"]]
        await collect(broker, "x.y")
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
        for queue in queues:
            with pytest.raises(SubscriptionClosed):
                await queue.next()

    # -- publish and subscribe --------------------------------------------------------

    async def test_messages_reach_every_matching_pattern(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        exact = await collect(broker, "chat.room.42")
        one = await collect(broker, "chat.*.42")
        rest = await collect(broker, "chat.>")
        everything = await collect(broker, ">")
        other = await collect(broker, "chat.room.43")
        too_deep = await collect(broker, "chat.room.42.*")
        too_short = await collect(broker, "chat.room")

        await broker.publish("chat.room.42", b"hello", {"Nats-Msg-Id": "1"})
        await harness.settle(broker)

        message = Message("chat.room.42", b"hello", {"Nats-Msg-Id": "1"})
        assert exact == one == rest == everything == [message]
        assert other == too_deep == too_short == []
        assert (broker.published, broker.delivered, broker.dropped) == (1, 4, 0)

    async def test_full_wildcard_sees_every_subject(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        everything = await collect(broker, ">")
        for subject in ["a", "a.b", "x.y.z.w"]:
            await broker.publish(subject, subject.encode())
        await harness.settle(broker)
        assert [m.subject for m in everything] == ["a", "a.b", "x.y.z.w"]

    async def test_publishing_to_nobody_counts_as_published(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        await broker.publish("nobody.listens", b"")
        await harness.settle(broker)
        assert (broker.published, broker.delivered) == (1, 0)

    async def test_headers_are_copied_at_publish(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        received = await collect(broker, "a")
        headers = {"k": "v"}
        await broker.publish("a", b"", headers)
        headers["k"] = "changed"
        await broker.publish("a", b"")
        await harness.settle(broker)
        assert received[0].headers == {"k": "v"}
        assert received[1].headers is None

    async def test_messages_of_one_publisher_keep_their_order(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        received = await collect(broker, "order.*")
        queue = broker.subscribe_queue("order.>", max_pending=1000)
        await queue.ready()
        sent = [(f"order.{n % 5}", str(n).encode()) for n in range(500)]
        for subject, data in sent:
            await broker.publish(subject, data)
        await harness.settle(broker)
        assert [(m.subject, m.data) for m in received] == sent
        assert [(m.subject, m.data) for m in [await queue.next() for _ in sent]] == sent

    @pytest.mark.parametrize("subject", ["", "a..b", "a b", ".a", "chat.*", "chat.>", "a*"])
    async def test_publish_refuses_invalid_subjects(self, broker: Broker, subject: str) -> None:
        with pytest.raises(ValueError, match=r"subject|wildcard"):
            await broker.publish(subject, b"")
        assert broker.published == 0

    @pytest.mark.parametrize("data", ["text", bytearray(b"x"), None, memoryview(b"x")])
    async def test_publish_wants_bytes(self, broker: Broker, data: Any) -> None:
        with pytest.raises(TypeError, match="data must be bytes"):
            await broker.publish("a", data)

    @pytest.mark.parametrize("pattern", ["", "a..b", "a.>.b", "a b", "a*", ">.a"])
    async def test_subscribe_refuses_invalid_patterns(
        self, broker: Broker, harness: BrokerHarness, pattern: str
    ) -> None:
        with pytest.raises(ValueError, match="pattern"):
            broker.subscribe(pattern, print)
        with pytest.raises(ValueError, match="pattern"):
            broker.subscribe_queue(pattern)
        await broker.publish("a", b"")
        await harness.settle(broker)
        assert broker.delivered == 0  # nothing was filed

    async def test_subscribe_wants_a_callable(self, broker: Broker) -> None:
        no_callback: Any = "print"
        with pytest.raises(TypeError, match="callable"):
            broker.subscribe("a", no_callback)

    @pytest.mark.parametrize("max_pending", [0, -1])
    async def test_a_queue_holds_at_least_one_message(
        self, broker: Broker, max_pending: int
    ) -> None:
        with pytest.raises(ValueError, match="max_pending"):
            broker.subscribe_queue("a", max_pending=max_pending)

    async def test_a_failing_callback_does_not_stop_the_others(
        self, broker: Broker, harness: BrokerHarness, caplog: pytest.LogCaptureFixture
    ) -> None:
        before = await collect(broker, "a.b")

        def explode(message: Message) -> None:
            raise RuntimeError("boom")

        await broker.subscribe("a.*", explode).ready()
        after = await collect(broker, "a.>")
        with caplog.at_level(logging.ERROR, logger="livepages.broker"):
            await broker.publish("a.b", b"1")
            await broker.publish("a.b", b"2")
            await harness.settle(broker)
        assert [m.data for m in before] == [m.data for m in after] == [b"1", b"2"]
        failures = [r for r in caplog.records if r.name == "livepages.broker"]
        assert len(failures) == 2
        assert "a.*" in failures[0].getMessage()  # the pattern (a prefix may lead it)
        assert failures[0].exc_info is not None
        assert str(failures[0].exc_info[1]) == "boom"

    # -- readiness and unsubscribing --------------------------------------------------

    async def test_once_ready_a_subscription_misses_nothing(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        received: list[Message] = []
        subscription = broker.subscribe("ready.*", received.append)
        queue = broker.subscribe_queue("ready.>")
        assert subscription.pattern == "ready.*"
        assert queue.pattern == "ready.>"
        with anyio.fail_after(10):
            # Any number of tasks may wait for the same subscription.
            await asyncio.gather(subscription.ready(), subscription.ready(), queue.ready())
            await subscription.ready()  # and again, once ready: at once
        await broker.publish("ready.1", b"first")
        await harness.settle(broker)
        assert [m.data for m in received] == [b"first"]
        assert (await queue.next()).data == b"first"

    async def test_ready_refuses_an_ended_subscription(self, harness: BrokerHarness) -> None:
        broker = harness.new()
        await broker.start()
        unsubscribed = broker.subscribe("a", print)
        unsubscribed.unsubscribe()
        with pytest.raises(SubscriptionClosed):
            await unsubscribed.ready()
        closed = broker.subscribe("a", print)
        queue = broker.subscribe_queue("a")
        await broker.close()
        with pytest.raises(SubscriptionClosed):
            await closed.ready()
        with pytest.raises(SubscriptionClosed):
            await queue.ready()

    async def test_unsubscribe_stops_delivery(self, broker: Broker, harness: BrokerHarness) -> None:
        received: list[Message] = []
        subscription = broker.subscribe("a", received.append)
        await subscription.ready()
        await broker.publish("a", b"1")
        await harness.settle(broker)
        subscription.unsubscribe()
        subscription.unsubscribe()  # harmless
        await broker.publish("a", b"2")
        await harness.settle(broker)
        assert [m.data for m in received] == [b"1"]

    # -- queue subscriptions ----------------------------------------------------------

    async def test_a_queue_subscription_yields_messages_in_order(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        queue = broker.subscribe_queue("room.*")
        await queue.ready()
        for number in range(5):
            await broker.publish(f"room.{number}", str(number).encode())
        await harness.settle(broker)
        assert queue.pending == 5
        messages = [await queue.next() for _ in range(5)]
        assert [m.data for m in messages] == [b"0", b"1", b"2", b"3", b"4"]
        assert [m.subject for m in messages] == [f"room.{n}" for n in range(5)]
        assert queue.pending == 0

    async def test_a_full_queue_drops_new_messages_and_counts_them(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        queue = broker.subscribe_queue("a", max_pending=100)
        await queue.ready()
        callback = await collect(broker, "a")
        for number in range(2_000):
            await broker.publish("a", str(number).encode())
        await harness.settle(broker)
        assert queue.pending == queue.max_pending == 100
        assert queue.dropped == broker.dropped == 1_900
        assert len(callback) == 2_000  # the other subscriber misses nothing
        assert broker.delivered == 2_000 + 100
        # The oldest messages are kept: the consumer sees a prefix, in order.
        kept = [(await queue.next()).data for _ in range(100)]
        assert kept == [str(n).encode() for n in range(100)]
        await broker.publish("a", b"again")
        await harness.settle(broker)
        assert (await queue.next()).data == b"again"

    async def test_a_publisher_faster_than_its_consumer(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        queue = broker.subscribe_queue("tick", max_pending=8)
        await queue.ready()
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
                await harness.settle(broker)  # on a network some are still on their way
                published_all = True
                if queue.pending:
                    await drained.wait()
                queue.unsubscribe()

        assert peak == 8  # the buffer filled up, and never went past its bound
        assert queue.dropped > 0
        assert len(received) + queue.dropped == total
        assert received == sorted(set(received))  # no reordering, no duplicates

    async def test_unsubscribe_ends_iteration_and_discards_the_buffer(
        self, broker: Broker, harness: BrokerHarness
    ) -> None:
        queue = broker.subscribe_queue("a")
        await queue.ready()
        received: list[bytes] = []
        busy = anyio.Event()
        unsubscribed = anyio.Event()

        async def consume() -> None:
            async for message in queue:
                received.append(message.data)
                busy.set()
                await unsubscribed.wait()  # busy with "1" while "2" waits in the buffer

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(consume)
                await broker.publish("a", b"1")
                await busy.wait()
                await broker.publish("a", b"2")  # still buffered when unsubscribing
                await harness.settle(broker)
                assert queue.pending == 1
                queue.unsubscribe()
                unsubscribed.set()
        assert received == [b"1"]
        assert queue.pending == 0
        with pytest.raises(SubscriptionClosed):
            await queue.next()
        await broker.publish("a", b"3")
        await harness.settle(broker)
        assert queue.pending == 0
        queue.unsubscribe()  # harmless

    async def test_only_one_task_may_wait_on_a_queue(self, broker: Broker) -> None:
        queue = broker.subscribe_queue("a")
        await queue.ready()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(queue.next)
                await anyio.sleep(0.01)
                with pytest.raises(RuntimeError, match="another task"):
                    await queue.next()
                await broker.publish("a", b"")

    async def test_a_cancelled_wait_leaves_the_queue_usable(self, broker: Broker) -> None:
        queue = broker.subscribe_queue("a")
        await queue.ready()
        with anyio.move_on_after(0.01):
            await queue.next()
        await broker.publish("a", b"after")
        with anyio.fail_after(10):
            assert (await queue.next()).data == b"after"

    # -- reconnects -------------------------------------------------------------------

    async def test_reconnect_listeners_run_after_a_reconnect(
        self, harness: BrokerHarness, caplog: pytest.LogCaptureFixture
    ) -> None:
        broker = harness.new()
        calls: list[str] = []

        def explode() -> None:
            raise RuntimeError("listener failed")

        def removed() -> None:
            calls.append("removed")

        # Listeners may be added before the broker starts.
        broker.add_reconnect_listener(lambda: calls.append("first"))
        broker.add_reconnect_listener(explode)
        broker.add_reconnect_listener(removed)
        broker.add_reconnect_listener(lambda: calls.append("last"))
        broker.remove_reconnect_listener(removed)
        broker.remove_reconnect_listener(removed)  # harmless
        await broker.start()
        try:
            received = await collect(broker, "after.reconnect")
            assert calls == []  # starting is not reconnecting
            with caplog.at_level(logging.ERROR, logger="livepages.broker"):
                await harness.reconnect(broker)
            assert calls == ["first", "last"]
            assert any(
                r.exc_info and str(r.exc_info[1]) == "listener failed" for r in caplog.records
            )
            # Subscriptions outlive a reconnect.
            await broker.publish("after.reconnect", b"x")
            await harness.settle(broker)
            assert [m.data for m in received] == [b"x"]
        finally:
            await broker.close()
