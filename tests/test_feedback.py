"""Feedback in every page: the connection indicator, in-flight actions, the error notice.

The browser tests drive Datastar v1.0.1 in real Chromium: its ``datastar-fetch``
events are what the feedback listens to, so only a real client can tell whether
the indicators follow it.
"""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections.abc import Iterator
from html import escape
from pathlib import Path

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from livepages import App, Feedback, Page, Settings, action, invoke
from livepages.testing import Client, LiveServer, goto_live
from tests.fixtures.browser import NewContext
from tests.fixtures.script_server import ScriptServer

# -- the HTML -------------------------------------------------------------------------


def _app(**settings: object) -> App:
    app = App(settings=Settings(secret_key="feedback", **settings))  # type: ignore[arg-type]

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "<p>home</p>"

    @app.page("/still")
    class Still(Page):
        live = False

        def render(self) -> str:
            return "<p>still</p>"

    return app


@pytest.mark.anyio
async def test_every_page_has_the_feedback_elements_and_style() -> None:
    async with Client(_app()) as c:
        html = (await c.http.get("/")).text
    assert '<style id="lp-feedback-style">' in html
    assert 'id="lp-connection" class="lp-connection" role="status" hidden data-state="live"' in html
    assert 'id="lp-notice" class="lp-notice" role="alert" hidden' in html
    assert 'data-on:datastar-fetch="' in html
    assert "_connection: &#x27;live&#x27;" in html


@pytest.mark.anyio
async def test_a_page_without_a_stream_has_no_connection_indicator() -> None:
    async with Client(_app()) as c:
        html = (await c.http.get("/still")).text
    assert 'id="lp-notice"' in html
    assert 'id="lp-connection"' not in html
    assert "_connection:" not in html


@pytest.mark.anyio
async def test_the_setting_switches_feedback_off() -> None:
    async with Client(_app(feedback=False)) as c:
        html = (await c.http.get("/")).text
    assert "lp-feedback" not in html
    assert "lp-notice" not in html
    assert "datastar-fetch" not in html


@pytest.mark.anyio
async def test_messages_and_style_can_be_changed() -> None:
    app = App(feedback=Feedback(messages={403: "Nope & no"}, style=""))

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return ""

    async with Client(app) as c:
        html = (await c.http.get("/")).text
    assert "403: &#x27;Nope &amp; no&#x27;" in html
    assert "413:" not in html
    assert "lp-feedback-style" not in html  # styled by the app's own CSS


# -- in Chromium ------------------------------------------------------------------------


class Refuse:
    """A proxy in front of the app that refuses ``/_action/big`` with a plain 413."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/_action/big"):
            await PlainTextResponse("too big", status_code=413)(scope, receive, send)
            return
        await self.app(scope, receive, send)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave the slow action waiting


@pytest.fixture
def server(datastar_js: Path, release: threading.Event) -> Iterator[LiveServer]:
    app = App(
        settings=Settings(datastar_file=str(datastar_js), secret_key="feedback in chromium"),
        sessions=True,
        middleware=[Middleware(Refuse)],
    )

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "".join(
                f'<button id="{name}" data-on:click="{escape(invoke(method))}">{name}</button>'
                for name, method in (("slow", self.slow), ("big", self.big), ("fine", self.fine))
            )

        @action
        async def slow(self) -> None:
            await asyncio.to_thread(release.wait, 30)

        @action
        async def big(self) -> None:
            """Never reached: the proxy refuses it."""

        @action
        async def fine(self) -> None:
            pass

    with LiveServer(app) as live:
        yield live


def test_a_running_action_marks_its_element_busy_until_it_finishes(
    server: LiveServer, browser_context: NewContext, release: threading.Event
) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    goto_live(page, server.url + "/")
    slow, fine = page.locator("#slow"), page.locator("#fine")
    expect(slow).not_to_have_class("lp-busy")
    slow.click()
    expect(slow).to_have_class("lp-busy")
    expect(slow).to_have_attribute("aria-busy", "true")
    expect(fine).not_to_have_class("lp-busy")  # only the element whose action runs
    release.set()
    expect(slow).not_to_have_class("lp-busy")
    expect(slow).not_to_have_attribute("aria-busy", "true")
    assert page.locator("#lp-notice").is_hidden()


def test_a_refused_action_shows_a_notice_that_the_next_success_clears(
    server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    goto_live(page, server.url + "/")
    notice = page.locator("#lp-notice")
    expect(notice).to_be_hidden()
    page.locator("#big").click()  # a plain 413, which Datastar alone would ignore
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("too large")
    page.locator("#lp-notice button").click()  # dismissed
    expect(notice).to_be_hidden()

    page.locator("#big").click()
    expect(notice).to_be_visible()
    page.locator("#fine").click()  # a success clears _error
    expect(notice).to_be_hidden()


def test_an_action_refused_for_its_csrf_token_says_so(
    server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    context = browser_context()
    page = context.new_page()
    goto_live(page, server.url + "/")
    page.evaluate("document.getElementById('lp-live').remove()")  # keep the stream out of it
    context.clear_cookies()  # the session is gone: the page's CSRF token matches nothing
    page.locator("#fine").click()
    notice = page.locator("#lp-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("refused")


# -- the connection, with a real server process -----------------------------------------

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from html import escape
    from livepages import App, Page, Settings, action, invoke
    from livepages.server import run

    settings = Settings(secret_key="connection", datastar_file=os.environ["DATASTAR_FILE"])
    app = App(settings=settings)

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            # Datastar gives up on the action after one failed attempt.
            call = escape(invoke(self.ping, retry_max_count=1, retry_interval=100))
            return f'<p id="home">home</p><button id="ping" data-on:click="{call}">ping</button>'

        @action
        async def ping(self) -> None:
            pass

    run(app, port=int(sys.argv[1]), log_level="warning")
    """
)


class Process(ScriptServer):
    """The script above, stopped and started again on one port."""

    def __init__(self, folder: Path, datastar_js: Path) -> None:
        super().__init__(folder, SCRIPT, datastar_js)


@pytest.fixture
def process(tmp_path: Path, datastar_js: Path) -> Iterator[Process]:
    served = Process(tmp_path, datastar_js)
    try:
        yield served
    finally:
        served.stop()


def test_the_connection_indicator_follows_the_server_away_and_back(
    process: Process, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    process.start()
    page = browser_context().new_page()
    goto_live(page, process.url + "/")
    indicator = page.locator("#lp-connection")
    expect(indicator).to_have_attribute("data-state", "live")
    expect(indicator).to_be_hidden()

    process.stop()
    expect(indicator).to_have_attribute("data-state", "reconnecting", timeout=10_000)
    expect(indicator).to_be_visible()
    expect(indicator).to_contain_text("Reconnecting")

    process.start()
    expect(indicator).to_have_attribute("data-state", "live", timeout=15_000)
    expect(indicator).to_be_hidden()
    assert httpx.get(process.url + "/").status_code == 200


def test_a_stream_refused_for_good_shows_offline_with_a_reload_link(
    server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    goto_live(page, server.url + "/")
    indicator = page.locator("#lp-connection")
    expect(indicator).to_be_hidden()
    # The next stream is refused with 204 (as livepages refuses one that must not come
    # back): Datastar stops retrying. A visibility change makes it reconnect now.
    page.route("**/_live*", lambda route: route.fulfill(status=204))
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(indicator).to_have_attribute("data-state", "offline")
    expect(indicator).to_be_visible()
    expect(indicator).to_contain_text("Offline")
    expect(indicator.locator("a.lp-reload")).to_be_visible()


def test_an_action_that_cannot_reach_the_server_says_so(
    process: Process, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    process.start()
    page = browser_context().new_page()
    goto_live(page, process.url + "/")
    process.stop()
    page.locator("#ping").click()
    notice = page.locator("#lp-notice")
    expect(notice).to_be_visible(timeout=10_000)
    expect(notice).to_contain_text("cannot be reached")
    expect(page.locator("#ping")).not_to_have_class("lp-busy")  # it gave up
