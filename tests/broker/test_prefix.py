"""Tests for livepages.broker.prefix: one subject namespace per app on a shared broker."""

from __future__ import annotations

from typing import Any

import pytest

from livepages.broker import Broker, MemoryBroker, Message, PrefixedBroker, with_prefix
from tests.broker.contract import BrokerContract, BrokerHarness

pytestmark = pytest.mark.anyio


class PrefixedHarness:
    """A memory broker seen through a two-token prefix."""

    def new(self) -> Broker:
        return with_prefix(MemoryBroker(), "acme.shop")

    async def reconnect(self, broker: Broker) -> None:
        assert isinstance(broker, PrefixedBroker)
        assert isinstance(broker.broker, MemoryBroker)
        broker.broker.simulate_reconnect()

    async def settle(self, broker: Broker) -> None:
        """Delivered in ``publish`` already."""


class TestPrefixedBroker(BrokerContract):
    """A prefixed broker keeps the whole contract, inside its namespace."""

    @pytest.fixture
    def harness(self) -> BrokerHarness:
        return PrefixedHarness()


def test_no_prefix_is_the_broker_itself() -> None:
    broker = MemoryBroker()
    assert with_prefix(broker, "") is broker


@pytest.mark.parametrize("prefix", ["a.*", ">", "a.>", "a..b", ".a", "a b", "a*", "a."])
def test_a_prefix_is_made_of_plain_tokens(prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid subject prefix"):
        with_prefix(MemoryBroker(), prefix)


def test_a_prefix_is_text() -> None:
    prefix: Any = 7
    with pytest.raises(TypeError, match="must be a str"):
        with_prefix(MemoryBroker(), prefix)


async def test_the_wire_carries_the_prefix_and_subscribers_do_not_see_it() -> None:
    async with MemoryBroker() as shared:
        wire: list[Message] = []
        shared.subscribe(">", wire.append)
        shop = with_prefix(shared, "shop")
        received: list[Message] = []
        subscription = shop.subscribe("chat.*", received.append)
        queue = shop.subscribe_queue("chat.>")
        assert (subscription.pattern, queue.pattern) == ("chat.*", "chat.>")
        assert "'shop.chat.*'" in repr(subscription)

        await shop.publish("chat.42", b"hi", {"k": "v"})

        assert [(m.subject, m.data, m.headers) for m in wire] == [
            ("shop.chat.42", b"hi", {"k": "v"})
        ]
        assert received == [Message("chat.42", b"hi", {"k": "v"})]
        assert await queue.next() == Message("chat.42", b"hi", {"k": "v"})
        assert shop.published == shared.published == 1
        assert shop.delivered == shared.delivered == 3


async def test_two_prefixes_on_one_broker_never_meet() -> None:
    async with MemoryBroker() as shared:
        one, two = with_prefix(shared, "one"), with_prefix(shared, "two")
        one_hears, two_hears = _collect(one, ">"), _collect(two, ">")
        await one.publish("chat.42", b"")
        await two.publish("chat.42", b"")
        await one.publish("two.chat.42", b"")  # looks like the other app's subject; is not
        assert [m.subject for m in one_hears] == ["chat.42", "two.chat.42"]
        assert [m.subject for m in two_hears] == ["chat.42"]


def _collect(broker: Broker, pattern: str) -> list[Message]:
    received: list[Message] = []
    broker.subscribe(pattern, received.append)
    return received
