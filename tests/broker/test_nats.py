"""Tests for livepages.broker.nats: the broker contract on a real nats-server, and what only
NATS does: losing the server, getting it back, failing fast meanwhile.

The contract's ``reconnect()`` makes the client drop its connection and connect again
(``force_reconnect``): quick enough for every test. One test below stops nats-server for
real and starts it again on the same port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from livepages import App, Page, Settings, action
from livepages.broker import Broker, Message
from livepages.broker.nats import BrokerUnavailable, NATSBroker
from livepages.events import Event, on
from livepages.testing import Client
from tests.broker.contract import BrokerContract, BrokerHarness
from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server

pytestmark = pytest.mark.anyio

#: Seconds between reconnect attempts in tests: short, so a restarted server is found soon.
RECONNECT_WAIT = 0.05


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server for this module alone: ``>`` subscribers hear only these tests."""
    directory = tmp_path_factory.mktemp("nats-broker")
    process, url = start_nats_server(nats_server_path(), directory)
    try:
        yield url
    finally:
        stop_nats_server(process)


class NATSHarness:
    """The contract's view of the NATS broker."""

    def __init__(self, url: str) -> None:
        self.url = url

    def new(self) -> Broker:
        return NATSBroker(self.url, name="livepages-contract", reconnect_wait=RECONNECT_WAIT)

    async def reconnect(self, broker: Broker) -> None:
        assert isinstance(broker, NATSBroker)
        await reconnected(broker, broker.force_reconnect)

    async def settle(self, broker: Broker) -> None:
        assert isinstance(broker, NATSBroker)
        await broker.flush()


async def reconnected(broker: NATSBroker, trigger: object) -> None:
    """Run ``trigger()`` and wait until ``broker``'s reconnect listeners have run."""
    done = asyncio.Event()
    broker.add_reconnect_listener(done.set)  # added last: runs after the others
    try:
        assert callable(trigger)
        outcome = trigger()
        if asyncio.iscoroutine(outcome):
            await outcome
        with anyio.fail_after(10):
            await done.wait()
    finally:
        broker.remove_reconnect_listener(done.set)


class TestNATSBroker(BrokerContract):
    @pytest.fixture
    def harness(self, own_nats: str) -> BrokerHarness:
        return NATSHarness(own_nats)


# -- NATS going away and coming back ---------------------------------------------------


class Server:
    """A nats-server a test may stop and start again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process, self.url = start_nats_server(nats_server_path(), directory)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        stop_nats_server(self.process)

    def start(self) -> None:
        self.process, _ = start_nats_server(nats_server_path(), self.directory, self.port)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def broker(server: Server) -> AsyncIterator[NATSBroker]:
    async with NATSBroker(server.url, reconnect_wait=RECONNECT_WAIT) as broker:
        yield broker


async def wait_until_disconnected(broker: NATSBroker) -> None:
    with anyio.fail_after(10):
        while broker.connected:  # noqa: ASYNC110 - the broker has no event for it
            await asyncio.sleep(0.01)


async def test_a_publish_while_nats_is_away_fails_fast_and_all_recovers_after(
    server: Server, broker: NATSBroker
) -> None:
    received: list[Message] = []
    await broker.subscribe("room.*", received.append).ready()
    reconnects: list[int] = []
    broker.add_reconnect_listener(lambda: reconnects.append(1))

    server.stop()
    await wait_until_disconnected(broker)
    began = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="NATS is unreachable"):
        await broker.publish("room.1", b"lost")
    assert time.monotonic() - began < 0.1  # at once, never waiting for the server
    assert broker.published == 0
    with pytest.raises(BrokerUnavailable):
        await broker.subscribe("other", print).ready()

    await reconnected(broker, server.start)
    assert reconnects == [1]
    # The subscription made before the outage was made again on the new connection.
    await broker.publish("room.1", b"back")
    await broker.flush()
    assert [m.data for m in received] == [b"back"]


async def test_messages_from_one_publisher_arrive_in_order_in_another_process(
    server: Server,
) -> None:
    """Two connections, as two processes: one publishes, the other receives in order."""
    async with NATSBroker(server.url) as publisher, NATSBroker(server.url) as subscriber:
        received: list[bytes] = []
        await subscriber.subscribe("seq.*", lambda m: received.append(m.data)).ready()
        sent = [str(n).encode() for n in range(2_000)]
        for number, data in enumerate(sent):
            await publisher.publish(f"seq.{number % 7}", data)
        await publisher.flush()
        with anyio.fail_after(10):
            while len(received) < len(sent):
                await subscriber.flush()
        assert received == sent


async def test_start_fails_with_a_clear_error_without_a_server(server: Server) -> None:
    server.stop()
    broker = NATSBroker(server.url, timeout=0.5)
    with anyio.fail_after(10), pytest.raises(Exception, match="cannot connect to NATS"):
        await broker.start()


def test_options_are_kept_frozen() -> None:
    broker = NATSBroker(["nats://a:4222", "nats://b:4222"], name="web-1", credentials="x.creds")
    assert broker.options.servers == ("nats://a:4222", "nats://b:4222")
    assert broker.options.credentials == Path("x.creds")
    with pytest.raises(AttributeError):
        broker.options.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="at least one server"):
        NATSBroker([])


# -- an app on NATS ---------------------------------------------------------------------


@dataclass
class Bumped(Event, subject="counter"):
    pass


async def test_an_action_on_one_app_re_renders_a_stream_on_another(server: Server) -> None:
    """Two apps, each with its own NATS connection, as two processes would have."""
    count = {"n": 0}

    def make() -> App:
        app = App(settings=Settings(secret_key="k"), broker=NATSBroker(server.url))

        @app.page("/")
        @on(Bumped)
        class Counter(Page):
            def render(self) -> str:
                return f'<p id="n">{count["n"]}</p>'

            @action
            async def bump(self) -> None:
                count["n"] += 1
                await app.publish(Bumped())

        return app

    first, second = make(), make()
    assert isinstance(first.broker, NATSBroker)
    async with Client(first) as acting, Client(second) as watching:
        page = await watching.get("/")
        async with page.stream() as stream:
            first_render = await stream.next_event()
            assert '<p id="n">0</p>' in (first_render.elements or "")
            response = await (await acting.get("/")).action("bump")
            assert response.is_success
            with anyio.fail_after(5):
                patch = await stream.next_event()
            assert '<p id="n">1</p>' in (patch.elements or "")


async def test_an_action_that_publishes_while_nats_is_away_answers_503(server: Server) -> None:
    app = App(
        settings=Settings(secret_key="k"),
        broker=NATSBroker(server.url, reconnect_wait=RECONNECT_WAIT),
    )

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "<p>home</p>"

        @action
        async def bump(self) -> None:
            await app.publish(Bumped())

    async with Client(app) as client:
        page = await client.get("/")
        broker = app.broker
        assert isinstance(broker, NATSBroker)
        server.stop()
        await wait_until_disconnected(broker)
        with anyio.fail_after(2):  # fails fast: no waiting for NATS
            response = await page.action("bump")
        assert response.status_code == 200  # a Datastar answer: the page shows _error
        assert b'"status":503' in response.content
        assert b"live updates are unavailable, try again shortly" in response.content
        await reconnected(broker, server.start)
        response = await page.action("bump")
        assert response.is_success
        assert b"_error" not in response.content or b'"status":503' not in response.content


async def test_a_slow_consumer_counts_drops_and_calls_the_reconnect_listeners(
    own_nats: str,
) -> None:
    """nats-py holds at most ``pending_limit`` messages for a subscription whose callback
    has not run yet; past that it drops them, and every view must re-render."""
    async with (
        NATSBroker(own_nats) as publisher,
        NATSBroker(own_nats, pending_limit=5) as subscriber,
    ):
        received: list[Message] = []
        await subscriber.subscribe("burst", received.append).ready()
        notified = asyncio.Event()
        subscriber.add_reconnect_listener(notified.set)
        for number in range(2_000):  # read in a few chunks, faster than the callback runs
            await publisher.publish("burst", str(number).encode())
        await publisher.flush()
        with anyio.fail_after(10):
            await notified.wait()
        await subscriber.flush()
        assert subscriber.dropped > 0
        assert len(received) + subscriber.dropped == 2_000
