"""The app and the live engine on their broker: one start for all callers, views that wait
for their subscriptions, a re-render after a reconnect, a subject prefix per app."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from livepages import App, Page, SessionManager, Settings, action
from livepages.broker import Broker, BrokerError, MemoryBroker, Message, ReconnectListener
from livepages.events import Event, on
from livepages.protocol import ClosedReason, SessionNotice
from livepages.tabs import Tab
from livepages.testing import Client
from tests.broker.wrappers import (
    BrokenSubscriptions,
    DelegatingBroker,
    LateSubscriptions,
    SlowStart,
)

pytestmark = pytest.mark.anyio


@dataclass
class Changed(Event, subject="board.{board}"):
    board: str


@dataclass
class Choice:
    filter: str


def make_app(values: dict[str, Any], broker: Broker | None = None, **settings: Any) -> App:
    """Boards that show ``values[board]``, and a per-tab page that shows ``values["mine"]``."""
    app = App(broker=broker, settings=Settings(**settings))

    @app.page("/boards/{board}")
    @on(Changed, board="board")
    class Board(Page):
        board: str

        def render(self) -> str:
            return f'<p id="v">{values.get(self.board, 0)}</p>'

    @app.page("/mine")
    class Mine(Page):
        def render(self, tab: Tab) -> str:
            return f'<p id="f">{tab.state.get("filter", "all")} {values.get("mine", 0)}</p>'

        @action
        async def choose(self, tab: Tab, choice: Choice) -> None:
            tab.state["filter"] = choice.filter

    return app


def shows(value: object) -> str:
    return f'<main id="lp-root"><p id="v">{value}</p></main>'


# -- one start, however many callers --------------------------------------------------


async def test_concurrent_publishes_all_wait_for_one_slow_start() -> None:
    broker = SlowStart(MemoryBroker(), delay=0.1)
    app = make_app({}, broker)
    try:
        outcomes = await asyncio.gather(
            *(app.publish(Changed(board=str(n))) for n in range(3)), return_exceptions=True
        )
        assert outcomes == [None, None, None]
        assert broker.starts == 1
        assert broker.published == 3
    finally:
        await app.shutdown()


async def test_a_failed_start_reaches_every_waiter_and_is_tried_again() -> None:
    broker = SlowStart(MemoryBroker(), delay=0.01, failures=1)
    app = make_app({}, broker)
    try:
        outcomes = await asyncio.gather(
            *(app.publish(Changed(board="a")) for _ in range(3)), return_exceptions=True
        )
        assert [type(outcome) for outcome in outcomes] == [BrokerError] * 3
        assert broker.starts == 1
        await app.publish(Changed(board="a"))  # the next caller starts it again
        assert (broker.starts, broker.published) == (2, 1)
    finally:
        await app.shutdown()


async def test_a_caller_that_gives_up_does_not_cancel_the_start() -> None:
    broker = SlowStart(MemoryBroker(), delay=0.1)
    app = make_app({}, broker)
    try:
        impatient = asyncio.ensure_future(app.publish(Changed(board="a")))
        patient = asyncio.ensure_future(app.publish(Changed(board="b")))
        await asyncio.sleep(0.01)
        impatient.cancel()
        await patient
        assert impatient.cancelled()
        assert (broker.starts, broker.published) == (1, 1)
    finally:
        await app.shutdown()


async def test_shutdown_during_the_start_closes_the_broker_after_it() -> None:
    inner = MemoryBroker()
    app = make_app({}, SlowStart(inner, delay=0.05))
    starting = asyncio.ensure_future(app.startup())
    await asyncio.sleep(0.01)
    await app.shutdown()
    await starting
    assert "closed" in repr(inner)
    await app.startup()  # a shut-down app does not start again
    assert "closed" in repr(inner)


# -- a view hears every change after its first render ---------------------------------


async def test_a_change_right_after_the_stream_opens_reaches_it() -> None:
    """On a networked broker a subscription takes effect late; the first render waits for
    it, so neither a change made meanwhile nor one right after the first render is lost."""
    values = {"a": 0}
    app = make_app(values, LateSubscriptions(MemoryBroker(), delay=0.2, late="board."))
    async with Client(app) as client:
        page = await client.get("/boards/a")
        async with page.stream() as stream:
            values["a"] = 1  # while the view is still subscribing
            await app.publish(Changed(board="a"))
            assert (await stream.next_event()).elements == shows(1)
            values["a"] = 2  # right after the first render
            await app.publish(Changed(board="a"))
            assert (await stream.next_event()).elements == shows(2)


async def test_a_view_that_cannot_subscribe_ends_its_streams_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    values = {"a": 0}
    broker = BrokenSubscriptions(MemoryBroker(), prefix="board.")
    app = make_app(values, broker)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        with caplog.at_level(logging.ERROR, logger="livepages.live"):
            async with page.stream() as stream:
                await asyncio.wait_for(stream.ended.wait(), 2)
                assert stream.events.empty()  # no render that could go stale
        assert "could not subscribe" in caplog.text
        assert app.live.views == {}
        broker.broken = False
        async with page.stream() as stream:  # Datastar reconnects: a view made afresh
            assert (await stream.next_event()).elements == shows(0)
            values["a"] = 1
            await app.publish(Changed(board="a"))
            assert (await stream.next_event()).elements == shows(1)


# -- a reconnect re-renders every view ------------------------------------------------


async def test_a_reconnect_re_renders_every_open_view() -> None:
    values: dict[str, Any] = {}
    broker = MemoryBroker()
    app = make_app(values, broker)
    async with Client(app) as client:
        pages = [await client.get(url) for url in ("/boards/a", "/boards/b", "/mine", "/boards/c")]
        streams = [await page.stream().open() for page in pages]
        a, b, mine, unchanged = streams
        for stream in streams:
            await stream.next_event()
        # Changes whose events the broker lost while it was away.
        values.update(a=1, b=2, mine=3)
        broker.simulate_reconnect()
        assert (await a.next_event()).elements == shows(1)
        assert (await b.next_event()).elements == shows(2)
        assert "all 3" in (await mine.next_event()).elements
        assert await unchanged.drain() == []  # rendered again, identical: nothing sent
        assert app.live.stats.dedup_skips == 1


class Listeners(DelegatingBroker):
    """Keeps the reconnect listeners registered through it."""

    def __init__(self, inner: Broker) -> None:
        super().__init__(inner)
        self.listeners: list[ReconnectListener] = []

    def add_reconnect_listener(self, listener: ReconnectListener) -> None:
        self.listeners.append(listener)

    def remove_reconnect_listener(self, listener: ReconnectListener) -> None:
        self.listeners.remove(listener)


async def test_the_engine_listens_to_reconnects_from_start_to_shutdown() -> None:
    broker = Listeners(MemoryBroker())
    app = make_app({}, broker)
    async with Client(app):
        assert broker.listeners == [app.live._on_reconnect]
        await app.startup()  # once only
        assert len(broker.listeners) == 1
    assert broker.listeners == []


# -- a subject prefix per app ---------------------------------------------------------


async def test_apps_with_different_prefixes_share_a_broker_without_hearing_each_other() -> None:
    shared = MemoryBroker()
    ones: dict[str, Any] = {}
    twos: dict[str, Any] = {}
    one = make_app(ones, shared, subject_prefix="one")
    two = make_app(twos, shared, subject_prefix="acme.two")
    wire: list[str] = []
    async with Client(one) as first, Client(two) as second:
        shared.subscribe(">", lambda message: wire.append(message.subject))
        board_one, board_two = await first.get("/boards/a"), await second.get("/boards/a")
        mine_one, mine_two = await first.get("/mine"), await second.get("/mine")
        async with (
            board_one.stream() as s1,
            board_two.stream() as s2,
            mine_one.stream() as m1,
            mine_two.stream() as m2,
        ):
            for stream in (s1, s2, m1, m2):
                await stream.next_event()
            ones["a"] = twos["a"] = 1  # only app one announces it
            await one.publish(Changed(board="a"))
            assert (await s1.next_event()).elements == shows(1)
            assert await s2.drain() == []

            twos["mine"] = 5  # would show if app two's tab refresh ran
            assert (await mine_one.action("choose", {"filter": "open"})).is_success
            assert "open 0" in (await m1.next_event()).elements
            assert await m2.drain() == []
    assert "one.board.a" in wire
    assert any(subject.startswith("one._lp.tab.") for subject in wire)
    assert all(subject.startswith(("one.", "acme.two.")) for subject in wire)


async def test_a_closed_session_ends_its_streams_under_a_prefix() -> None:
    shared = MemoryBroker()
    wire: list[Message] = []
    app = App(
        broker=shared,
        settings=Settings(subject_prefix="shop"),
        sessions=SessionManager(sign_in_url="/signin", closed_url="/bye"),
    )

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "<p>home</p>"

    async with Client(app) as client:
        shared.subscribe(">", wire.append)
        page = await client.get("/")
        async with page.stream() as stream:
            await stream.next_event()
            (connection,) = app.live.connections
            assert connection.session is not None
            await app.announce_session_closed(
                connection.session, SessionNotice(ClosedReason.CLOSED)
            )
            await asyncio.wait_for(stream.ended.wait(), 1)
            assert '"/bye"' in (await stream.next_event()).elements
    assert [m.subject for m in wire] == ["shop._lp.session." + connection.session]


def test_an_invalid_prefix_is_refused_when_the_app_is_made() -> None:
    with pytest.raises(ValueError, match="invalid subject prefix"):
        App(settings=Settings(subject_prefix="shop.*"))
