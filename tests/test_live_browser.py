"""How the real Datastar client treats a stream refused while the server shuts down.

Datastar v1.0.1 in Chromium, opening streams with ``retry: 'always'``: a 503
(what livepages answers during shutdown) is retried until the stream opens; a
204 (kept for streams that must not come back) stops the retries for good.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from livepages import App, Page, Settings
from livepages.csp import nonce
from livepages.testing import LiveServer
from tests.fixtures.browser import NewContext

#: A page outside livepages whose stream always answers 204.
REFUSED_PAGE = """<!doctype html>
<html><head><script type="module" nonce="{nonce}" src="{datastar}"></script></head>
<body><div data-init="@get('/refused', {{retry: 'always'}})"></div></body></html>
"""


class CountRequests:
    """Counts the requests to each path."""

    def __init__(self, app: ASGIApp, counts: Counter[str]) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.counts[scope["path"]] += 1
        await self.app(scope, receive, send)


@pytest.fixture
def counts() -> Counter[str]:
    return Counter()


@pytest.fixture
def app(datastar_js: Path, counts: Counter[str]) -> App:
    app = App(
        settings=Settings(datastar_file=str(datastar_js), secret_key="retry"),
        middleware=[Middleware(CountRequests, counts=counts)],
    )
    renders = Counter[str]()

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            renders["home"] += 1
            return f'<p id="n">{renders["home"]}</p>'

    async def refused_page(request: Request) -> HTMLResponse:
        # The app's CSP covers its own routes too: the script carries the nonce.
        datastar, script_nonce = app.asset("datastar.js"), nonce(request.scope)
        return HTMLResponse(REFUSED_PAGE.format(datastar=datastar, nonce=script_nonce))

    async def refused(request: Request) -> Response:
        return Response(status_code=204)

    app.add_route("/refused-page", refused_page)
    app.add_route("/refused", refused)
    return app


@pytest.fixture
def server(app: App) -> Iterator[LiveServer]:
    # Requested before browser_context by the test, so pages close before the server stops.
    with LiveServer(app) as live:
        yield live


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_page_refused_during_shutdown_comes_back_and_a_204_stays_away(
    app: App, server: LiveServer, counts: Counter[str], browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    app.live.closing = True  # as between SIGTERM and the end of this process
    page = browser_context().new_page()
    page.goto(server.url + "/")
    expect(page.locator("#n")).to_have_text("1")  # the document's own render
    wait_for(lambda: counts["/_live"] >= 1)  # answered 503
    app.live.closing = False  # as the next server, up now
    expect(page.locator("#n")).to_have_text("2", timeout=10_000)  # the stream's render
    assert counts["/_live"] >= 2

    refused = browser_context().new_page()
    refused.goto(server.url + "/refused-page")
    wait_for(lambda: counts["/refused"] >= 1)
    time.sleep(2.5)  # past two retry intervals (1 s each)
    assert counts["/refused"] == 1
