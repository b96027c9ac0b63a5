"""The Datastar SDK against the real Datastar client in real Chromium.

A small Starlette app serves a page that loads Datastar v1.0.1, opens a stream
with ``data-init``, binds an input with ``data-bind`` and posts its signals
with ``data-on:click``. The browser shows what the SDK sent.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Error, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from livepages.datastar import (
    DatastarResponse,
    ServerSentEventGenerator,
    patch_elements,
    patch_signals,
    read_signals,
)
from livepages.testing import LiveServer
from tests.fixtures.browser import (
    DATASTAR_SHA256,
    NewContext,
    cached_datastar,
    chromium_path,
    datastar_route,
)

#: How long to wait for the browser to show something; generous for a busy CI machine.
WAIT_MS = 15_000

PAGE = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <link rel="icon" href="data:,">
  <script type="module" src="/datastar.js"></script>
</head>
<body data-signals='{"name": "", "shout": "", "message": ""}'>
  <div data-init="@get('/stream')"></div>
  <div id="status">waiting</div>
  <input id="name" data-bind:name>
  <button id="echo" data-on:click="@post('/echo')">Echo</button>
  <p id="greeting">nobody</p>
  <p id="shout" data-text="$shout"></p>
  <input id="message" data-bind:message>
  <button id="announce" data-on:click="@post('/announce')">Announce</button>
  <div id="news">no news</div>
</body>
</html>
"""


@dataclass
class Echo:
    """The signals /echo needs; the others the page sends are ignored."""

    name: str


@dataclass
class Announcement:
    message: str


class Board:
    """The latest announcement, with a version so a waiting stream never misses one."""

    def __init__(self) -> None:
        self.version = 0
        self.html = '<div id="news">no news</div>'
        self._changed = asyncio.Event()

    def publish(self, html: str) -> None:
        self.version += 1
        self.html = html
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_past(self, version: int) -> None:
        """Return once the version is past ``version`` (at once if it already is)."""
        changed = self._changed
        if self.version == version:
            await changed.wait()


def make_app(bundle: Path) -> Starlette:
    board = Board()

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def stream(request: Request) -> DatastarResponse:
        async def live(sse: ServerSentEventGenerator) -> None:
            seen = board.version
            await sse.patch_elements(board.html)
            # After the current news: once a page shows "connected", any later
            # news can only reach it as a push.
            await sse.patch_elements('<div id="status">connected</div>')
            while True:
                await board.wait_past(seen)
                seen = board.version
                await sse.patch_elements(board.html)

        return DatastarResponse(live)

    async def echo(request: Request) -> DatastarResponse:
        signals = await read_signals(request, Echo)
        return DatastarResponse(
            [
                patch_signals({"shout": signals.name.upper()}),
                patch_elements(f'<p id="greeting">Hello, {escape(signals.name)}!</p>'),
            ]
        )

    async def announce(request: Request) -> DatastarResponse:
        signals = await read_signals(request, Announcement)
        board.publish(f'<div id="news">{escape(signals.message)}</div>')
        return DatastarResponse(patch_signals({"message": ""}))

    return Starlette(
        routes=[
            Route("/", page),
            datastar_route(bundle),
            Route("/stream", stream),
            Route("/echo", echo, methods=["POST"]),
            Route("/announce", announce, methods=["POST"]),
        ]
    )


@pytest.fixture
def server(datastar_js: Path) -> Iterator[LiveServer]:
    with LiveServer(make_app(datastar_js)) as live:
        yield live


OpenPage = Callable[[], Page]


@pytest.fixture
def open_page(server: LiveServer, browser_context: NewContext) -> Iterator[OpenPage]:
    """Opens the app in a fresh context, connected to its stream; no browser errors allowed.

    Requesting ``server`` before ``browser_context`` closes the pages (and their
    streams) before the server stops.
    """
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_page_error(error: Error) -> None:
        errors.append(error.message)

    def open_one() -> Page:
        page = browser_context().new_page()
        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.goto(server.url + "/")
        expect(page.locator("#status")).to_have_text("connected", timeout=WAIT_MS)
        return page

    yield open_one
    assert errors == []


def test_stream_morphs_and_signals_round_trip(open_page: OpenPage) -> None:
    page = open_page()
    expect(page.locator("#news")).to_have_text("no news")

    page.locator("#name").fill("Ada <Lovelace>")
    page.locator("#echo").click()

    expect(page.locator("#greeting")).to_have_text("Hello, Ada <Lovelace>!", timeout=WAIT_MS)
    expect(page.locator("#shout")).to_have_text("ADA <LOVELACE>", timeout=WAIT_MS)
    # The morph kept the input and its binding: a second round trip still works.
    page.locator("#name").fill("Grace")
    page.locator("#echo").click()
    expect(page.locator("#greeting")).to_have_text("Hello, Grace!", timeout=WAIT_MS)
    expect(page.locator("#shout")).to_have_text("GRACE", timeout=WAIT_MS)


def test_a_published_patch_reaches_two_contexts(open_page: OpenPage) -> None:
    alice = open_page()
    bob = open_page()

    alice.locator("#message").fill("first")
    alice.locator("#announce").click()
    for page in (alice, bob):
        expect(page.locator("#news")).to_have_text("first", timeout=WAIT_MS)
    # The announcer's input was cleared by patch_signals, in Alice's page only.
    expect(alice.locator("#message")).to_have_value("", timeout=WAIT_MS)

    bob.locator("#message").fill("second")
    bob.locator("#announce").click()
    for page in (alice, bob):
        expect(page.locator("#news")).to_have_text("second", timeout=WAIT_MS)


def test_contexts_are_isolated(browser_context: NewContext, server: LiveServer) -> None:
    first = browser_context()
    second = browser_context()
    first.add_cookies([{"name": "who", "value": "first", "url": server.url}])
    assert [c["value"] for c in first.cookies()] == ["first"]
    assert second.cookies() == []


def test_datastar_route_serves_the_bundle_as_javascript(datastar_js: Path) -> None:
    app = Starlette(routes=[datastar_route(datastar_js, "/static/ds.js")])
    with LiveServer(app) as live, httpx.Client(base_url=live.url) as client:
        response = client.get("/static/ds.js")
        elsewhere = client.get("/datastar.js")
        posted = client.post("/static/ds.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == datastar_js.read_bytes()
    assert elsewhere.status_code == 404
    assert posted.status_code == 405


def test_datastar_js_is_the_pinned_bundle(datastar_js: Path) -> None:
    data = datastar_js.read_bytes()
    assert hashlib.sha256(data).hexdigest() == DATASTAR_SHA256
    assert data.startswith(b"// Datastar v1.0.1")
    assert cached_datastar(datastar_js.parent) == datastar_js


def test_a_corrupt_cached_bundle_is_not_used(tmp_path: Path, datastar_js: Path) -> None:
    cached = tmp_path / datastar_js.name
    cached.write_bytes(datastar_js.read_bytes()[:-10])
    assert cached_datastar(tmp_path) is None
    cached.write_bytes(datastar_js.read_bytes())
    assert cached_datastar(tmp_path) == cached


def test_an_absent_cache_has_no_bundle(tmp_path: Path) -> None:
    assert cached_datastar(tmp_path / "nowhere") is None


@pytest.mark.parametrize("exists", [False, True], ids=["absent", "not-executable"])
def test_a_missing_chromium_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exists: bool
) -> None:
    path = tmp_path / "chromium"
    if exists:
        path.write_text("not a browser")
        path.chmod(0o644)
    monkeypatch.setenv("LIVEPAGES_CHROMIUM", str(path))
    # Skipped locally, failed under LIVEPAGES_REQUIRE_ALL: either way, with the recipe.
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception), match="apt-get install"):
        chromium_path()


# These run after the browser tests above (pytest keeps file order), while the
# session's Chromium is still open: Playwright's event loop must not get in the way.
@pytest.mark.anyio
async def test_async_tests_run_while_the_browser_is_open(datastar_js: Path) -> None:
    app = Starlette(routes=[datastar_route(datastar_js)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/datastar.js")
    assert hashlib.sha256(response.content).hexdigest() == DATASTAR_SHA256


def test_asyncio_run_works_while_the_browser_is_open() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncio.run(answer()) == 42
