"""Lifecycle hooks: typed events for renders, actions, streams, publishes and errors."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from livepages import App, Event, Forbidden, Page, Settings, ValidationError, action, on
from livepages.hooks import (
    ActionDone,
    CloseReason,
    ErrorReported,
    Hooks,
    Outcome,
    Published,
    Rendered,
    StreamClosed,
    StreamOpened,
)
from livepages.testing import Client

pytestmark = pytest.mark.anyio


@dataclass
class Bumped(Event, subject="bumped"):
    pass


@dataclass
class Amount:
    n: int


def make_app() -> tuple[App, list[Any]]:
    app = App(settings=Settings(secret_key="k", write_timeout=0.2))
    seen: list[Any] = []
    for kind in (Rendered, ActionDone, StreamOpened, StreamClosed, Published, ErrorReported):
        app.hooks.add(kind, seen.append)
    count = {"n": 0}

    @app.page("/counter")
    @on(Bumped)
    class Counter(Page):
        def render(self) -> str:
            if count["n"] < 0:
                raise RuntimeError("negative")
            return f"<p>{count['n']}</p>"

        @action
        async def bump(self, amount: Amount) -> None:
            if amount.n > 100:
                raise ValidationError({"n": "too many"})
            if amount.n == 13:
                raise Forbidden("not 13")
            if amount.n == 7:
                raise RuntimeError("seven")
            count["n"] += amount.n
            await app.publish(Bumped())

    return app, seen


def of(seen: list[Any], kind: type[Any]) -> list[Any]:
    return [event for event in seen if isinstance(event, kind)]


async def test_each_action_reports_its_outcome_and_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, seen = make_app()
    async with Client(app) as client:
        page = await client.get("/counter")
        for n in (1, 500, 13, 7):
            with caplog.at_level(logging.CRITICAL):
                await page.action("bump", {"n": n})
    outcomes = [(e.name, e.outcome) for e in of(seen, ActionDone)]
    assert outcomes == [
        ("bump", Outcome.OK),
        ("bump", Outcome.INVALID),
        ("bump", Outcome.REFUSED),
        ("bump", Outcome.FAILED),
    ]
    assert all(e.duration >= 0 for e in of(seen, ActionDone))
    assert [e.subject for e in of(seen, Published)] == ["bumped"]
    [error] = of(seen, ErrorReported)
    assert (error.method, error.path, str(error.error)) == (
        "POST",
        "/counter/_action/bump",
        "seven",
    )


async def test_streams_and_renders_report_what_happened() -> None:
    app, seen = make_app()
    async with Client(app) as client:
        page = await client.get("/counter")
        async with page.stream() as stream:
            await stream.next_event()
            await page.action("bump", {"n": 0})  # the same render: a dedup skip
            await page.action("bump", {"n": 2})
            await stream.next_event()
        await asyncio.sleep(0.05)
    assert [e.page for e in of(seen, StreamOpened)] == ["Counter"]
    [closed] = of(seen, StreamClosed)
    assert (closed.page, closed.reason) == ("Counter", CloseReason.CLIENT_LEFT)
    renders = of(seen, Rendered)
    assert [(r.page, r.scope, r.dedup) for r in renders] == [
        ("Counter", "shared", False),
        ("Counter", "shared", True),
        ("Counter", "shared", False),
    ]
    assert renders[0].size > 0
    # LiveStats is a subscriber of the same events.
    assert (app.live.stats.renders, app.live.stats.dedup_skips) == (3, 1)


async def test_a_stream_ended_by_shutdown_says_so() -> None:
    app, seen = make_app()
    async with Client(app) as client:
        page = await client.get("/counter")
        stream = page.stream()
        await stream.open()
        await stream.next_event()
        await app.close_streams()
        await asyncio.wait_for(stream.ended.wait(), 2)
        await asyncio.sleep(0.05)
    assert [e.reason for e in of(seen, StreamClosed)] == [CloseReason.SHUTDOWN]


def test_a_failing_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = Hooks()
    heard: list[object] = []

    @hooks.on(Published)
    def broken(event: Published) -> None:
        raise RuntimeError("listener bug")

    hooks.add(Published, heard.append)
    assert hooks.wants(Published)
    assert not hooks.wants(Rendered)
    with caplog.at_level(logging.ERROR, logger="livepages"):
        hooks.emit(Published("a", 1))
    assert heard == [Published("a", 1)]
    assert "a Published hook failed" in caplog.text
    hooks.remove(Published, heard.append)
    hooks.remove(Published, heard.append)  # twice is harmless
    hooks.emit(Published("b", 1))
    assert heard == [Published("a", 1)]
