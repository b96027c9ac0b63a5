"""The app and the live engine on their broker: one start for all callers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from livepages import App, Page, Settings, action
from livepages.broker import Broker, BrokerError, MemoryBroker
from livepages.events import Event, on
from livepages.tabs import Tab
from tests.broker.wrappers import SlowStart

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
