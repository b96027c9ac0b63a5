"""The policy's script sources are the minimum Datastar needs, checked in Chromium.

The same page runs under the policy livepages sends, and under that policy
with one source taken out: without ``'unsafe-eval'`` no Datastar attribute
works (it compiles expressions with ``Function``); without ``'strict-dynamic'``
a script the server patches in (a redirect after an action) is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from pathlib import Path

import pytest
from markupsafe import Markup
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livepages import App, Page, Settings, action, invoke, redirect
from livepages.responses import Redirect
from livepages.testing import LiveServer, watch_console
from tests.fixtures.browser import NewContext

TIMEOUT = 5_000  # ms
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e => window.__violations.push(
    e.violatedDirective));
"""


class WithoutSource:
    """Takes one source out of every response's Content-Security-Policy."""

    def __init__(self, app: ASGIApp, source: str) -> None:
        self.app = app
        self.source = source.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        def strip(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v.replace(b" " + self.source, b""))
                    if k == b"content-security-policy"
                    else (k, v)
                    for k, v in message["headers"]
                ]
                message = {**message, "headers": headers}
            return send(message)

        await self.app(scope, receive, strip)


def make_app(datastar_js: Path) -> App:
    app = App(
        settings=Settings(datastar_file=str(datastar_js), secret_key="csp browser"),
        head='<link rel="icon" href="data:,">',  # no favicon request to fail
    )

    @app.page("/")
    class Home(Page):
        live = False

        def render(self) -> Markup:
            go = invoke(self.go)
            return Markup(
                '<p id="ran" data-text="\'Datastar ran\'"></p>'
                '<button id="go" data-on:click="{}">go</button>'
            ).format(go)

        @action
        async def go(self) -> Redirect:
            return redirect(Landing())

    @app.page("/landing")
    class Landing(Page):
        live = False

        def render(self) -> str:
            return '<p id="landed">landed</p>'

    return app


@pytest.fixture(params=["", "'unsafe-eval'", "'strict-dynamic'"], ids=["full", "eval", "dynamic"])
def without(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(datastar_js: Path, without: str) -> Iterator[LiveServer]:
    app = make_app(datastar_js)
    served: ASGIApp = WithoutSource(app, without) if without else app
    with LiveServer(served) as live:
        yield live


def test_each_script_source_is_needed(
    server: LiveServer, without: str, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    problems = watch_console(page)
    page.goto(server.url + "/")
    if without == "'unsafe-eval'":
        # Datastar's attributes are compiled with Function: nothing of the page runs.
        page.wait_for_function("window.__violations.length > 0", timeout=TIMEOUT)
        expect(page.locator("#ran")).to_have_text("")
        assert any("EvalError" in problem for problem in problems)
        return
    expect(page.locator("#ran")).to_have_text("Datastar ran", timeout=TIMEOUT)
    page.click("#go")
    if without == "'strict-dynamic'":
        # The redirect is a script Datastar creates from the server's patch: refused.
        page.wait_for_function("window.__violations.length > 0", timeout=TIMEOUT)
        assert page.url == server.url + "/"
        return
    page.wait_for_url(server.url + "/landing", timeout=TIMEOUT)
    assert page.evaluate("window.__violations") == []
    assert problems == []
