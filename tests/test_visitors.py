"""Pages left open: a session that ended sends the page to sign in, and back.

The sessions' store runs on a clock the tests move, so "a week later" takes no time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from livepages import (
    App,
    MemorySessionStore,
    Page,
    Redirect,
    Session,
    SessionManager,
    Settings,
    SQLiteSessionStore,
    action,
    invoke,
    redirect,
    safe_next,
)
from livepages.testing import Client, LiveServer, goto_live
from livepages.visitors import _page_of
from tests.fixtures.browser import NewContext

WEEK = 7 * 24 * 3600.0


class Clock:
    """The store's time: now, plus however far a test moved it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def make_app(clock: Clock, **settings: Any) -> App:
    store = MemorySessionStore(clock=clock)
    app = App(
        settings=Settings(secret_key="left open for a week", **settings),
        sessions=SessionManager(store, max_age=WEEK, sign_in_url="/signin"),
    )

    @app.page("/signin")
    class SignIn(Page):
        next: str = "/"

        def render(self) -> str:
            return f'<button id="enter" data-on:click="{escape(invoke(self.enter))}">in</button>'

        @action
        async def enter(self, session: Session[Any]) -> Redirect:
            await session.sign_in("ada")
            return redirect(safe_next(self.next))

    @app.page("/notes")
    class Notes(Page):
        auth = True
        topic: str = "all"

        def render(self, session: Session[Any]) -> str:
            save = escape(invoke(self.save))
            return f'<p id="who">{session.user_id}</p><button id="save" data-on:click="{save}">'

        @action
        async def save(self) -> None:
            pass

    return app


async def _signed_in(client: Client) -> None:
    page = await client.get("/signin")
    assert (await page.action("enter")).status_code == 200


@pytest.mark.anyio
async def test_an_action_after_the_session_ended_goes_to_sign_in_with_next() -> None:
    clock = Clock()
    async with Client(make_app(clock)) as client:
        await _signed_in(client)
        page = await client.get("/notes?topic=work")
        assert (await page.action("save")).status_code == 200
        clock.offset = WEEK + 1  # the page stays open for a week
        response = await page.action("save")
        assert response.status_code == 200  # Datastar reads only 200s
        assert 'window.location.href = "/signin?next=%2Fnotes%3Ftopic%3Dwork"' in response.text


@pytest.mark.anyio
async def test_a_guarded_page_whose_session_ended_reconnects_to_sign_in() -> None:
    clock = Clock()
    async with Client(make_app(clock)) as client:
        await _signed_in(client)
        page = await client.get("/notes")
        clock.offset = WEEK + 1
        async with page.stream() as stream:
            event = await stream.next_event()
            assert 'window.location.href = "/signin?next=%2Fnotes"' in event.elements


@pytest.mark.anyio
async def test_a_forged_token_of_a_live_session_is_still_a_plain_refusal() -> None:
    clock = Clock()
    async with Client(make_app(clock)) as client:
        await _signed_in(client)
        page = await client.get("/notes")
        response = await page.action("save", headers={"X-CSRF-Token": "forged"})
        assert response.status_code == 403


def _request(path: str, headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
    scope = {"type": "http", "method": "POST", "path": path, "headers": raw, "query_string": b""}
    scope["server"] = ("testserver", 80)
    return Request(scope)


def test_the_page_of_an_action_is_its_same_site_referer_or_its_path() -> None:
    host = {"host": "testserver"}
    assert _page_of(_request("/notes/_action/save", host)) == "/notes"
    assert _page_of(_request("/_action/save", host)) == "/"
    same = {**host, "referer": "http://testserver/rooms/4?tab=2"}
    assert _page_of(_request("/_action/save", same)) == "/rooms/4?tab=2"
    other = {**host, "referer": "https://evil.example/x"}
    assert _page_of(_request("/notes/_action/save", other)) == "/notes"


@given(st.text(max_size=200), st.text(max_size=100))
def test_any_referer_gives_a_path_on_this_site(referer: str, path: str) -> None:
    headers = {"host": "testserver", "referer": referer.encode("utf-8").decode("latin-1")}
    page = _page_of(_request("/" + path, headers))
    assert safe_next(page, "") == page


# -- in Chromium ------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(datastar_js: Path, clock: Clock) -> Iterator[LiveServer]:
    # No heartbeat: the stream's own expiry check (at each heartbeat) would race the
    # action this test is about; a stream sent to sign-in is tested in test_session_watch.
    with LiveServer(make_app(clock, datastar_file=str(datastar_js), heartbeat=0)) as live:
        yield live


def test_a_session_that_expires_while_the_page_is_open_sends_the_next_action_to_sign_in(
    server: LiveServer, clock: Clock, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    page.goto(server.url + "/notes?topic=work")  # a guest: to sign in first
    expect(page).to_have_url(server.url + "/signin?next=%2Fnotes%3Ftopic%3Dwork")
    goto_live(page, page.url)
    page.locator("#enter").click()
    expect(page).to_have_url(server.url + "/notes?topic=work")
    expect(page.locator("#who")).to_have_text("ada")
    goto_live(page, page.url)

    clock.offset = WEEK + 1  # a week passes with the page open
    page.locator("#save").click()
    expect(page).to_have_url(server.url + "/signin?next=%2Fnotes%3Ftopic%3Dwork")
    clock.offset = 0  # (a new session is issued at the real time: its store's must agree)
    goto_live(page, page.url)
    page.locator("#enter").click()  # and back, once signed in again
    expect(page).to_have_url(server.url + "/notes?topic=work")
    expect(page.locator("#who")).to_have_text("ada")


# -- secrets rotated while the page is open ----------------------------------------------


COOKIE = "livepages_session"


def _cookie(client: Client) -> str:
    """The session cookie the client holds now."""
    (value,) = [c.value for c in client.http.cookies.jar if c.name == COOKIE and c.value]
    return str(value)


def _rotated(db: Path, secret: str, *previous: str) -> App:
    app = App(
        settings=Settings(secret_key=secret, previous_secret_keys=previous),
        sessions=SessionManager(SQLiteSessionStore(db), sign_in_url="/signin"),
    )

    @app.page("/notes")
    class Notes(Page):
        def render(self, session: Session[Any]) -> str:
            return f'<p id="who">{session.user_id}</p>'

        @action
        async def save(self, session: Session[Any]) -> str:
            return session.user_id or "guest"

        @action
        async def enter(self, session: Session[Any]) -> None:
            await session.sign_in("ada")

    return app


@pytest.mark.anyio
async def test_a_page_open_across_two_key_rotations_gets_a_fresh_token_and_cookie(
    tmp_path: Path,
) -> None:
    db = tmp_path / "sessions.db"
    async with Client(_rotated(db, "the first secret")) as first:
        page = await first.get("/notes")
        assert (await page.action("enter")).status_code == 200
        page = await first.get("/notes")  # rendered under the first secret
        cookie = _cookie(first)
    # A deploy adds a second secret; the page's stream reconnects to it.
    async with Client(_rotated(db, "the second secret", "the first secret")) as second:
        second.http.cookies.set(COOKIE, cookie)
        async with second.stream(str(page.live_url), headers=page.headers) as stream:
            event = await stream.next_event()
            assert event.type == "datastar-patch-signals"
            fresh = event.signals["_csrf"]
            assert fresh != page.csrf
            # Sealed again, with the second secret.
            resealed = stream.headers["set-cookie"].split(";")[0].removeprefix(COOKIE + "=")
        assert resealed not in ("", cookie)
    # The next deploy retires the first secret: the page still works, signed in.
    async with Client(_rotated(db, "the second secret")) as third:
        third.http.cookies.set(COOKIE, resealed)
        headers = {**page.headers, "X-CSRF-Token": fresh}
        response = await third.http.post("/notes/_action/save", headers=headers, json={})
        assert response.status_code == 200
        stale = {**page.headers}  # the token rendered under the first secret
        response = await third.http.post("/notes/_action/save", headers=stale, json={})
        assert response.status_code == 403
