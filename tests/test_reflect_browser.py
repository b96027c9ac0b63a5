"""Query fields mirrored by signals, in Chromium with the real Datastar client.

Typing in a search box changes the address bar without a request of its own
(``replaceState``), the server renders the typed state over the page's stream,
a reload of that URL restores it, and a ``push=True`` field makes history
entries that Back and Forward walk through.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from markupsafe import Markup

from livepages import App, Page, Reflect, Settings
from livepages.testing import LiveServer, goto_live, watch_console
from tests.fixtures.browser import NewContext

TIMEOUT = 5_000  # ms: the functional deadline for a change to show


def make_app(datastar_js: Path) -> App:
    app = App(
        settings=Settings(datastar_file=str(datastar_js), secret_key="reflect"),
        head='<link rel="icon" href="data:,">',  # no favicon request to fail
    )

    @app.page("/search")
    class Search(Page):
        q: Annotated[str, Reflect()] = ""
        page: Annotated[int, Reflect(push=True)] = 1

        def render(self) -> Markup:
            return Markup(
                '<input id="q" data-bind="q">'
                '<button id="next" data-on:click="$page = $page + 1">next</button>'
                '<p id="shown">{} on page {}</p>'
            ).format(self.q or "everything", self.page)

    return app


@pytest.fixture
def server(datastar_js: Path) -> Iterator[LiveServer]:
    with LiveServer(make_app(datastar_js)) as live:
        yield live


def test_typing_updates_the_url_and_a_reload_restores_it(
    server: LiveServer, browser_context: NewContext
) -> None:
    page = browser_context().new_page()
    problems = watch_console(page)
    goto_live(page, server.url + "/search")
    assert page.text_content("#shown") == "everything on page 1"
    history = page.evaluate("history.length")
    documents = []
    page.on("request", lambda r: documents.append(r.url) if r.resource_type == "document" else None)

    page.locator("#q").press_sequentially("milk")
    page.wait_for_url(re.compile(r"/search\?q=milk$"), timeout=TIMEOUT)
    # The server rendered the typed state over the stream, with no navigation.
    page.wait_for_function(
        "document.getElementById('shown').textContent === 'milk on page 1'", timeout=TIMEOUT
    )
    assert documents == []
    assert page.evaluate("history.length") == history  # replaced, not pushed

    goto_live(page, page.url)  # a reload of the URL as it now is
    assert page.input_value("#q") == "milk"
    assert page.text_content("#shown") == "milk on page 1"
    page.locator("#q").fill("")
    page.wait_for_url(re.compile(r"/search$"), timeout=TIMEOUT)  # the default leaves the URL
    assert problems == []


def test_back_and_forward_walk_through_pushed_values(
    server: LiveServer, browser_context: NewContext
) -> None:
    page = browser_context().new_page()
    problems = watch_console(page)
    goto_live(page, server.url + "/search?q=tea")
    page.click("#next")
    page.wait_for_url(re.compile(r"/search\?q=tea&page=2$"), timeout=TIMEOUT)
    page.click("#next")
    page.wait_for_url(re.compile(r"/search\?q=tea&page=3$"), timeout=TIMEOUT)
    page.wait_for_function(
        "document.getElementById('shown').textContent === 'tea on page 3'", timeout=TIMEOUT
    )

    page.go_back()
    page.wait_for_url(re.compile(r"page=2$"), timeout=TIMEOUT)
    page.wait_for_function(
        "document.getElementById('shown').textContent === 'tea on page 2'", timeout=TIMEOUT
    )
    page.go_back()
    page.wait_for_url(re.compile(r"/search\?q=tea$"), timeout=TIMEOUT)
    page.wait_for_function(
        "document.getElementById('shown').textContent === 'tea on page 1'", timeout=TIMEOUT
    )
    page.go_forward()
    page.wait_for_url(re.compile(r"page=2$"), timeout=TIMEOUT)
    page.wait_for_function(
        "document.getElementById('shown').textContent === 'tea on page 2'", timeout=TIMEOUT
    )
    # Typing after going back replaces the entry: Forward still leads to page 3.
    page.locator("#q").fill("teas")
    page.wait_for_url(re.compile(r"q=teas&page=2$"), timeout=TIMEOUT)
    page.go_forward()
    page.wait_for_url(re.compile(r"q=tea&page=3$"), timeout=TIMEOUT)
    page.wait_for_function(
        "document.getElementById('shown').textContent === 'tea on page 3'", timeout=TIMEOUT
    )
    assert page.input_value("#q") == "tea"
    assert problems == []


def test_a_value_the_field_refuses_is_a_400(
    server: LiveServer, browser_context: NewContext
) -> None:
    page = browser_context().new_page()
    response = page.goto(server.url + "/search?page=abc")
    assert response is not None
    assert response.status == 400
    assert "'page'" in (page.text_content("body") or "")
