"""The browser layer against a real server: what succeeds is timed, what fails is an error."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from benchmarks.classifieds.browser import KEEPALIVE, Browser, Failed
from benchmarks.classifieds.record import Recorder
from livepages import App, Page, Redirect, ValidationError, action, redirect
from livepages.limits import ServerLimits
from livepages.testing import DatastarEvent, LiveServer

pytestmark = pytest.mark.anyio


@dataclass
class Form:
    text: str = ""


def make_app() -> App:
    app = App()

    @app.page("/")
    class Home(Page):
        async def render(self) -> str:
            return "<p>home</p>"

        @action
        async def go(self) -> Redirect:
            return redirect("/listings/7")

        @action
        async def check(self, form: Form) -> None:
            if not form.text:
                raise ValidationError({"text": "is required"})

    return app


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(make_app()) as running:
        yield running


@pytest.fixture
async def visitor(server: LiveServer) -> AsyncIterator[Browser]:
    visitor = Browser([server.url], Recorder(), random.Random(1), timeout=5.0)
    yield visitor
    await visitor.close()


async def test_a_page_and_its_actions_are_timed_per_route(visitor: Browser) -> None:
    page = await visitor.get("/")
    assert page.wiring.live_url is not None
    match = await visitor.redirected(page, "go", {}, re.compile(r"/listings/(\d+)"))
    assert match.group(1) == "7"
    await visitor.action(page, "check", {"text": "hi"})
    assert visitor.recorder.error_count == 0
    assert [row.route for row in visitor.recorder.rows()] == [
        "GET /",
        "POST /_action/go",
        "POST /_action/check",
    ]


async def test_a_refused_action_is_an_error(visitor: Browser) -> None:
    page = await visitor.get("/")
    with pytest.raises(Failed):
        await visitor.action(page, "check", {"text": ""})
    assert visitor.recorder.errors == {"POST /_action/check: refused: text: is required": 1}


async def test_a_redirect_elsewhere_is_an_error(visitor: Browser) -> None:
    page = await visitor.get("/")
    with pytest.raises(Failed):
        await visitor.redirected(page, "go", {}, re.compile(r"/chats/(\d+)"))
    assert visitor.recorder.error_count == 1


async def test_a_missing_page_and_an_unknown_action_are_errors(visitor: Browser) -> None:
    with pytest.raises(Failed):
        await visitor.get("/nowhere")
    page = await visitor.get("/")
    with pytest.raises(Failed):
        await visitor.action(page, "nothing")
    assert visitor.recorder.route_errors == {"GET /nowhere": 1, "POST /_action/nothing": 1}


async def test_no_answer_in_time_is_an_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)
        writer.close()

    listening = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    visitor = Browser([f"http://127.0.0.1:{port}"], Recorder(), random.Random(1), 0.2)
    try:
        with pytest.raises(Failed):
            await visitor.get("/")
    finally:
        await visitor.close()
        listening.close()
    assert visitor.recorder.errors == {"GET /: no answer within 0.2 s": 1}


async def test_a_stream_that_the_server_ends_is_an_error(
    server: LiveServer, visitor: Browser
) -> None:
    page = await visitor.get("/")
    events: list[DatastarEvent] = []
    stream = visitor.stream(page, events.append)
    await stream.open()
    assert events  # the first render
    assert server.loop is not None
    ending = asyncio.run_coroutine_threadsafe(server.app.close_streams(), server.loop)  # type: ignore[attr-defined]
    await asyncio.wrap_future(ending)
    for _ in range(100):
        if stream.broken:
            break
        await asyncio.sleep(0.05)
    await stream.close()
    assert stream.broken
    assert list(visitor.recorder.route_errors) == ["GET /_live (stream)"]


async def test_a_stream_closed_by_the_user_is_no_error(visitor: Browser) -> None:
    page = await visitor.get("/")
    stream = visitor.stream(page, lambda event: None)
    await stream.open()
    await stream.close()
    assert visitor.recorder.error_count == 0
    assert "GET /_live (stream)" in visitor.recorder.latencies


def test_the_pool_forgets_idle_connections_well_before_the_server_does() -> None:
    # A request sent on a connection that the server is closing for idleness is cut.
    assert ServerLimits().idle_timeout >= KEEPALIVE * 2
