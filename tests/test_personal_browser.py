"""Personal views in real Chromium: two signed-in people, one shared render, own names."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response

from livepages import App, Page, Session, Settings, Templates, action
from livepages.events import Event, on
from livepages.personal import PersonalView
from livepages.sessions.session import SessionManager
from livepages.testing import LiveServer, goto_live, watch_console
from tests.fixtures.browser import NewContext

PAGE = """
<header>{% if session.data.name %}Signed in as <b id="me">{{ session.data.name }}</b>
{% else %}<span id="me">nobody</span>{% endif %}</header>
<input id="name" data-bind:name>
<button id="enter" data-on:click="{{ action(page.enter) }}">Sign in</button>
<button id="bump" data-on:click="{{ action(page.bump) }}">Bump</button>
<p id="count">{{ count }}</p>
"""


@dataclass
class Profile:
    name: str = ""


@dataclass
class Entry:
    name: str


@dataclass
class Bumped(Event, subject="bumped"):
    pass


@pytest.fixture
def app(datastar_js: Path) -> App:
    app = App(
        settings=Settings(datastar_file=str(datastar_js), secret_key="personal"),
        sessions=SessionManager(sign_in_url="/"),
    )
    templates = Templates()
    state = {"count": 0}

    @app.page("/")
    class Board(Page):
        def render(self, session: Session[Profile]) -> str:
            return templates.render_string(PAGE, page=self, session=session, count=state["count"])

        @action
        async def enter(self, entry: Entry, session: Session[Profile]) -> None:
            await session.sign_in(entry.name, Profile(name=entry.name))

        @action
        async def bump(self) -> None:
            state["count"] += 1
            await app.publish(Bumped())

        @on(Bumped)
        def bumped(self) -> None:
            """Re-render for everyone."""

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    app.add_route("/favicon.ico", favicon)  # no console error for the browser's own request
    return app


@pytest.fixture
def server(app: App) -> Iterator[LiveServer]:
    with LiveServer(app) as live:
        yield live


def test_two_people_each_see_their_own_name_after_a_shared_change(
    app: App, server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    pages, problems = [], []
    for name in ("Ada <Lovelace>", "Grace & co"):
        page = browser_context().new_page()  # a context each: two sessions
        problems.append(watch_console(page))
        goto_live(page, server.url + "/")
        page.fill("#name", name)
        page.click("#enter")
        expect(page.locator("#me")).to_have_text(name)
        pages.append(page)
    ada, grace = pages
    ada.click("#bump")
    expect(ada.locator("#count")).to_have_text("1")
    expect(grace.locator("#count")).to_have_text("1")
    grace.click("#bump")
    expect(ada.locator("#count")).to_have_text("2")
    expect(grace.locator("#count")).to_have_text("2")
    expect(ada.locator("#me")).to_have_text("Ada <Lovelace>")
    expect(grace.locator("#me")).to_have_text("Grace & co")
    assert [type(view) for view in app.live.views.values()] == [PersonalView]
    assert problems == [[], []]
