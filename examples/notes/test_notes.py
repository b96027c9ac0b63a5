"""The notes example: over HTTP with ``livepages.testing.Client``, and in a real Chromium."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from examples.notes.app import (
    COOKIE_NAME,
    MAX_NOTES,
    MAX_TEXT,
    Notebooks,
    create_app,
)
from livepages import App, Settings, ValidationError
from livepages.sessions import SQLiteSessionStore
from livepages.testing import (
    Client,
    DatastarEvent,
    LiveServer,
    LiveStream,
    LoadedPage,
    goto_live,
    parse_events,
    watch_console,
)

if TYPE_CHECKING:
    from tests.fixtures.browser import NewContext

_LOCATION = re.compile(r"window\.location\.href = (\"[^\"]*\")")
_SESSION_IDS = re.compile(r"\$sid = '([0-9a-f]{64})'")
_CURRENT = re.compile(r'<li class="session current">.*?\$sid = \'([0-9a-f]{64})\'', re.S)


def events_of(response: httpx.Response) -> list[DatastarEvent]:
    """The events of an action's Datastar response."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    found, rest = parse_events(response.text)
    assert rest == ""
    return found


def redirect_of(event: DatastarEvent) -> str | None:
    """Where a script patch sends the browser, if it is a redirect."""
    match = _LOCATION.search(event.elements)
    return json.loads(match.group(1)) if match else None


def redirect_target(response: httpx.Response) -> str:
    """The URL a Datastar redirect response sends the browser to."""
    targets = [redirect_of(event) for event in events_of(response)]
    found = [target for target in targets if target is not None]
    assert len(found) == 1, response.text
    return found[0]


def signal_patch(response: httpx.Response) -> dict[str, object]:
    """The signals an action's response patches (all of its signal events merged)."""
    patch: dict[str, object] = {}
    for event in events_of(response):
        if event.type == "datastar-patch-signals":
            patch.update(event.signals)
    return patch


async def sign_in(client: Client, username: str, start: str = "/") -> str:
    """Sign in from the sign-in page at ``start``; where the browser is sent next."""
    page = await client.get(start)
    assert page.status_code == 200
    return redirect_target(await page.action("sign_in", form={"username": username}))


async def ended_by_redirect(stream: LiveStream) -> str:
    """Skip to the end of a stream that is being closed; where its last patch redirects."""
    target = None
    while not stream.ended.is_set() or not stream.events.empty():
        event = await stream.next_event()
        target = redirect_of(event) or target
    assert target is not None, "the stream ended without a redirect"
    return target


async def opened(page: LoadedPage) -> LiveStream:
    """Open the page's live stream and read its first render."""
    stream = await page.stream().open()
    assert stream.status == 200
    first = await stream.next_event()
    assert first.type == "datastar-patch-elements"
    return stream


async def delete_note(page: LoadedPage, note: object) -> httpx.Response:
    """Call the DELETE action as Datastar does: the signals in the ``datastar`` query."""
    return await page.action("delete", {"note": note}, method="DELETE")


def session_ids(html: str) -> list[str]:
    return _SESSION_IDS.findall(html)


def current_session(html: str) -> str:
    match = _CURRENT.search(html)
    assert match is not None, "no session is marked as this one"
    return match.group(1)


@pytest.fixture
def app() -> App:
    return create_app()


@pytest.fixture
async def client(app: App) -> AsyncIterator[Client]:
    async with Client(app) as c:
        yield c


@pytest.fixture
async def other(app: App) -> AsyncIterator[Client]:
    """A second browser (its own cookie jar) on the same app."""
    async with Client(app) as c:
        yield c


@pytest.fixture
async def third(app: App) -> AsyncIterator[Client]:
    async with Client(app) as c:
        yield c


# -- guests -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/notes", "/sessions"])
async def test_guests_are_sent_to_sign_in(client: Client, path: str) -> None:
    response = await client.http.get(path)
    assert response.status_code == 303
    location = response.headers["location"]
    # Relative, so that it stays inside a mount: from /notes it is the app's root.
    assert location == "./?" + urlencode({"next": path})
    target = response.url.join(location)
    assert target.path == "/"
    assert target.params["next"] == path
    sign_in_page = await client.get(str(target))
    assert sign_in_page.status_code == 200
    assert "<h1>Sign in</h1>" in sign_in_page.html


@pytest.mark.anyio
async def test_guests_get_no_stream_and_no_actions(app: App, client: Client) -> None:
    guest = await client.get("/")  # a guest session, with a valid CSRF token
    assert guest.csrf
    tab = app.live.tabs.issue()  # a genuine tab id, so only the missing user refuses
    async with client.stream("/notes/_live", headers={**guest.headers, "X-LP-Tab": tab}) as stream:
        assert stream.status == 204
    for path, name in [("/notes", "add"), ("/notes", "sign_out"), ("/sessions", "close_all")]:
        response = await client.http.post(
            f"{path}/_action/{name}", data={"text": "x"}, headers=guest.headers
        )
        assert signal_patch(response)["_error"] == {"status": 403, "message": "sign in first"}


@pytest.mark.anyio
async def test_the_sign_in_page_is_not_live(client: Client) -> None:
    # Signing in replaces the guest session; a stream of it would be redirected away.
    page = await client.get("/")
    assert 'id="lp-live"' not in page.html
    assert page.tab == ""


# -- signing in -----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("", "is required"),
        ("   ", "is required"),
        ("a" * 33, "must be at most 32 characters"),
        ("ada lovelace", "may use letters, digits, '.', '_' and '-'"),
        ("<script>", "may use letters, digits, '.', '_' and '-'"),
        ("ada.notes", None),
    ],
)
async def test_usernames_are_checked(client: Client, username: str, message: str | None) -> None:
    page = await client.get("/")
    response = await page.action("sign_in", form={"username": username})
    if message is None:
        assert redirect_target(response) == "/notes"
    else:
        assert signal_patch(response) == {"errors": {"username": message}}
        assert (await client.http.get("/notes")).status_code == 303


@pytest.mark.anyio
async def test_a_form_without_the_field_is_refused(client: Client) -> None:
    page = await client.get("/")
    response = await page.action("sign_in", form={"name": "ada"})
    assert signal_patch(response) == {"errors": {"username": "is required"}}


@pytest.mark.anyio
async def test_sign_in_without_csrf_is_refused(client: Client) -> None:
    page = await client.get("/")
    response = await client.http.post(
        "/_action/sign_in",
        data={"username": "ada"},
        headers={**page.headers, "X-CSRF-Token": "forged"},
    )
    assert response.status_code == 403
    assert (await client.http.get("/notes")).status_code == 303


@pytest.mark.anyio
async def test_sign_in_leads_to_the_notes_with_the_apps_own_cookie(client: Client) -> None:
    page = await client.get("/")
    response = await page.action("sign_in", form={"username": " Ada "})
    assert redirect_target(response) == "/notes"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(COOKIE_NAME + "=")
    assert "HttpOnly" in cookie
    notes = await client.get("/notes")
    assert notes.status_code == 200
    assert '<strong id="user">ada</strong>' in notes.html  # usernames are case-insensitive
    again = await client.get("/")
    assert "You are signed in as <strong>ada</strong>" in again.html


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("next_url", "target"),
    [
        ("/sessions", "/sessions"),
        ("//evil.example/notes", "/notes"),
        ("/\\evil.example", "/notes"),
        ("https://evil.example/", "/notes"),
        ("notes", "/notes"),
    ],
)
async def test_sign_in_returns_to_a_local_next_only(
    client: Client, next_url: str, target: str
) -> None:
    start = "/?" + urlencode({"next": next_url})
    assert await sign_in(client, "ada", start) == target


@pytest.mark.anyio
async def test_a_guest_comes_back_where_they_were_sent_from(client: Client) -> None:
    sent = await client.http.get("/sessions")
    start = sent.url.join(sent.headers["location"])
    assert await sign_in(client, "ada", str(start)) == "/sessions"
    assert (await client.get("/sessions")).status_code == 200


# -- private notes --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_notes_are_private(client: Client, other: Client) -> None:
    await sign_in(client, "ada")
    await sign_in(other, "bob")
    ada, bob = await client.get("/notes"), await other.get("/notes")
    assert (await ada.action("add", form={"text": "ada's secret"})).status_code == 200
    assert (await bob.action("add", form={"text": "bob's plan"})).status_code == 200

    ada_html, bob_html = (await client.get("/notes")).html, (await other.get("/notes")).html
    assert "ada&#39;s secret" in ada_html
    assert "bob&#39;s plan" not in ada_html
    assert "bob&#39;s plan" in bob_html
    assert "ada&#39;s secret" not in bob_html

    # Bob cannot delete Ada's note (note 1) by its id.
    response = await delete_note(bob, 1)
    assert signal_patch(response)["_error"] == {"status": 404, "message": "you have no note 1"}
    assert "ada&#39;s secret" in (await client.get("/notes")).html


@pytest.mark.anyio
async def test_a_note_reaches_every_tab_of_its_user_only(
    client: Client, other: Client, third: Client
) -> None:
    await sign_in(client, "ada")
    await sign_in(other, "ada")  # Ada on a second device: another session
    await sign_in(third, "bob")
    tab1, tab2 = await client.get("/notes"), await client.get("/notes")
    device2, bob = await other.get("/notes"), await third.get("/notes")
    streams = [await opened(page) for page in (tab1, tab2, device2, bob)]

    response = await tab1.action("add", form={"text": "milk & eggs"})
    # The adding tab's form is emptied by a script patch, its error cleared.
    assert signal_patch(response) == {
        "_error": {"status": 0, "message": ""},
        "errors": {"text": ""},
    }
    for stream in streams[:3]:
        patch = await stream.next_event()
        assert patch.type == "datastar-patch-elements"
        assert "milk &amp; eggs" in patch.elements

    # Bob's next patch is his own note: Ada's never reached his view.
    await bob.action("add", form={"text": "bob's note"})
    patch = await streams[3].next_event()
    assert "bob&#39;s note" in patch.elements
    assert "milk" not in patch.elements
    for stream in streams:
        await stream.close()


@pytest.mark.anyio
async def test_deleting_a_note_updates_every_tab(client: Client) -> None:
    await sign_in(client, "ada")
    tab1, tab2 = await client.get("/notes"), await client.get("/notes")
    await tab1.action("add", form={"text": "first"})
    async with tab2.stream() as stream:
        assert 'id="note-1"' in (await stream.next_event()).elements
        response = await delete_note(tab1, 1)
        assert response.status_code == 200
        patch = await stream.next_event()
        assert 'id="note-1"' not in patch.elements
        assert "No notes yet." in patch.elements


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"text": ""}, "is required"),
        ({"text": "  \n "}, "is required"),
        ({"text": "x" * (MAX_TEXT + 1)}, f"must be at most {MAX_TEXT} characters"),
        ({"note": "x"}, "is required"),
    ],
)
async def test_bad_notes_are_refused(client: Client, form: dict[str, str], message: str) -> None:
    await sign_in(client, "ada")
    notes = await client.get("/notes")
    response = await notes.action("add", form=form)
    assert signal_patch(response) == {"errors": {"text": message}}
    assert "No notes yet." in (await client.get("/notes")).html


@pytest.mark.anyio
async def test_a_bad_note_id_is_refused(client: Client) -> None:
    await sign_in(client, "ada")
    notes = await client.get("/notes")
    # Signals that do not fit are a 400 (per-field messages are for forms).
    response = await delete_note(notes, "one")
    error = signal_patch(response)["_error"]
    assert isinstance(error, dict)
    assert error["status"] == 400
    response = await delete_note(notes, 7)
    assert signal_patch(response)["_error"] == {"status": 404, "message": "you have no note 7"}


@pytest.mark.anyio
async def test_notes_are_escaped(client: Client) -> None:
    await sign_in(client, "ada")
    notes = await client.get("/notes")
    await notes.action("add", form={"text": "<script>alert(1)</script>"})
    html = (await client.get("/notes")).html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_user_has_a_bounded_number_of_notes() -> None:
    notebooks = Notebooks()
    for n in range(MAX_NOTES):
        notebooks.add("ada", f"note {n}")
    with pytest.raises(ValidationError) as full:
        notebooks.add("ada", "one too many")
    assert full.value.errors == {"text": f"you have {MAX_NOTES} notes, delete some first"}
    assert notebooks.add("bob", "bob's first").text == "bob's first"  # per user
    assert [note.text for note in notebooks.of("ada")][:2] == [
        f"note {MAX_NOTES - 1}",
        f"note {MAX_NOTES - 2}",
    ]


# -- sessions -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_sessions_page_lists_the_users_sessions(
    app: App, client: Client, other: Client, third: Client
) -> None:
    await sign_in(client, "ada")
    mine = await client.get("/sessions")
    stream = await opened(mine)
    await sign_in(other, "ada")
    await sign_in(third, "bob")

    # Ada's second sign-in shows up live; Bob's does not.
    patch = await stream.next_event()
    assert len(session_ids(patch.elements)) == 2
    first, second = (await client.get("/sessions")).html, (await other.get("/sessions")).html
    assert app.sessions is not None
    stored = [record.id for record in await app.sessions.list_user("ada")]
    assert session_ids(first) == session_ids(second) == stored  # oldest first
    assert first.count("this session") == second.count("this session") == 1
    assert current_session(first) == stored[0]
    assert current_session(second) == stored[1]
    assert "python-httpx" in first  # what signed in, from its User-Agent
    bob = (await third.get("/sessions")).html
    assert len(session_ids(bob)) == 1
    assert not set(session_ids(bob)) & set(stored)
    await stream.close()


@pytest.mark.anyio
async def test_signing_in_as_someone_else_ends_the_first_users_session(
    client: Client, other: Client
) -> None:
    await sign_in(client, "ada")
    await sign_in(other, "ada")
    ada_elsewhere = await other.get("/sessions")
    stream = await opened(ada_elsewhere)
    assert await sign_in(client, "bob") == "/notes"
    # Ada's other sessions page hears that her first session is gone.
    patch = await stream.next_event()
    assert session_ids(patch.elements) == [current_session(ada_elsewhere.html)]
    assert '<strong id="user">bob</strong>' in (await client.get("/notes")).html
    await stream.close()


@pytest.mark.anyio
async def test_closing_a_session_ends_its_streams(client: Client, other: Client) -> None:
    await sign_in(client, "ada")
    await sign_in(other, "ada")
    sessions = await client.get("/sessions")
    mine = current_session(sessions.html)
    [theirs] = [sid for sid in session_ids(sessions.html) if sid != mine]
    watching = await opened(sessions)
    their_notes = await opened(await other.get("/notes"))
    their_sessions = await opened(await other.get("/sessions"))

    response = await sessions.action("close", {"sid": theirs})
    assert response.status_code == 200
    assert all(redirect_of(event) is None for event in events_of(response))
    # The closed session's streams are sent to the sign-in page (relative: see the app).
    assert await ended_by_redirect(their_notes) == "./"
    assert await ended_by_redirect(their_sessions) == "./"
    assert (await other.http.get("/notes")).status_code == 303
    # This session stays, and its sessions page now lists only itself.
    patch = await watching.next_event()
    assert session_ids(patch.elements) == [mine]
    assert not watching.ended.is_set()
    assert (await client.get("/notes")).status_code == 200
    await watching.close()


@pytest.mark.anyio
async def test_closing_this_session_signs_it_out(client: Client, other: Client) -> None:
    await sign_in(client, "ada")
    await sign_in(other, "ada")
    sessions = await client.get("/sessions")
    response = await sessions.action("close", {"sid": current_session(sessions.html)})
    assert redirect_target(response) == "/"
    assert (await client.http.get("/notes")).status_code == 303
    assert (await other.http.get("/notes")).status_code == 200


@pytest.mark.anyio
async def test_no_one_closes_another_users_session(app: App, client: Client, other: Client) -> None:
    await sign_in(client, "ada")
    await sign_in(other, "bob")
    assert app.sessions is not None
    [bobs] = [record.id for record in await app.sessions.list_user("bob")]
    sessions = await client.get("/sessions")
    for sid in (bobs, "0" * 64, ""):
        response = await sessions.action("close", {"sid": sid})
        assert signal_patch(response)["_error"] == {
            "status": 404,
            "message": "you have no such session",
        }
    response = await sessions.action("close", {})
    error = signal_patch(response)["_error"]
    assert isinstance(error, dict)
    assert error["status"] == 400
    assert (await other.http.get("/notes")).status_code == 200


@pytest.mark.anyio
async def test_close_all_others(client: Client, other: Client, third: Client) -> None:
    for c in (client, other, third):
        await sign_in(c, "ada")
    streams = [await opened(await c.get("/notes")) for c in (other, third)]
    sessions = await client.get("/sessions")
    mine = current_session(sessions.html)
    assert (await sessions.action("close_others")).status_code == 200
    for stream in streams:
        assert await ended_by_redirect(stream) == "./"
    assert session_ids((await client.get("/sessions")).html) == [mine]
    for c in (other, third):
        assert (await c.http.get("/notes")).status_code == 303


@pytest.mark.anyio
async def test_close_all(client: Client, other: Client) -> None:
    await sign_in(client, "ada")
    await sign_in(other, "ada")
    streams = [await opened(await c.get("/notes")) for c in (client, other)]
    sessions = await client.get("/sessions")
    assert redirect_target(await sessions.action("close_all")) == "/"
    for stream in streams:
        assert await ended_by_redirect(stream) == "./"
    for c in (client, other):
        assert (await c.http.get("/notes")).status_code == 303


@pytest.mark.anyio
async def test_sign_out_ends_this_sessions_tabs_only(client: Client, other: Client) -> None:
    await sign_in(client, "ada")
    await sign_in(other, "ada")
    tab1, tab2 = await client.get("/notes"), await client.get("/sessions")
    streams = [await opened(tab1), await opened(tab2)]
    elsewhere = await opened(await other.get("/notes"))

    response = await tab1.action("sign_out")
    assert redirect_target(response) == "/"
    assert response.headers["set-cookie"].startswith(COOKIE_NAME + "=;")  # cleared
    own, other_tab = streams
    # The tab that signed out follows its action's redirect; its stream just ends.
    await asyncio.wait_for(own.ended.wait(), 2)
    assert await ended_by_redirect(other_tab) == "./"
    assert (await client.http.get("/notes")).status_code == 303
    # Ada's other device is still signed in, its stream still open.
    assert not elsewhere.ended.is_set()
    # The signed-out tab can no longer write.
    assert (await tab1.action("add", form={"text": "stale"})).status_code == 403
    assert "stale" not in (await other.get("/notes")).html
    await elsewhere.close()


# -- mounted under a prefix, next to other apps ---------------------------------------------


@pytest.mark.anyio
async def test_mounted_under_a_prefix() -> None:
    parent = Starlette(routes=[Mount("/notes", app=create_app())])
    async with Client(parent) as client:
        sent = await client.http.get("/notes/notes")
        start = sent.url.join(sent.headers["location"])
        assert (start.path, start.params["next"]) == ("/notes/", "/notes/notes")
        page = await client.get(str(start))
        assert "@post(&#39;/notes/_action/sign_in?next=%2Fnotes%2Fnotes&#39;" in page.html
        assert await sign_in(client, "ada", str(start)) == "/notes/notes"

        notes = await client.get("/notes/notes")
        assert "@post(&#39;/notes/notes/_action/add&#39;" in notes.html
        assert '<a id="to-sessions" href="/notes/sessions">' in notes.html
        stream = await opened(notes)
        other_tab = await opened(await client.get("/notes/notes"))
        assert redirect_target(await notes.action("sign_out")) == "/notes/"
        await asyncio.wait_for(stream.ended.wait(), 2)  # the caller follows its action
        # "./" from /notes/notes is /notes/: the mounted app's sign-in page.
        assert sent.url.join(await ended_by_redirect(other_tab)).path == "/notes/"


@pytest.mark.anyio
async def test_sessions_outlive_the_app_in_a_session_store(tmp_path: Path) -> None:
    settings = Settings(secret_key="notes-test-key")
    first = SQLiteSessionStore(tmp_path / "sessions.db")
    try:
        async with Client(create_app(settings, first)) as client:
            await sign_in(client, "ada")
            cookies = dict(client.http.cookies)
    finally:
        await first.close()
    # A restarted app with the same key and database: Ada is still signed in.
    second = SQLiteSessionStore(tmp_path / "sessions.db")
    try:
        async with Client(create_app(settings, second)) as client:
            client.http.cookies.update(cookies)
            notes = await client.get("/notes")
            assert notes.status_code == 200
            assert '<strong id="user">ada</strong>' in notes.html
            assert "No notes yet." in notes.html  # notes live in memory, sessions do not
    finally:
        await second.close()


def test_module_app_is_what_make_run_serves() -> None:
    from examples.notes.app import app

    assert isinstance(app, App)
    assert app.sessions is not None
    assert app.sessions.cookie_name == COOKIE_NAME


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture
def server(datastar_js: Path) -> Iterator[LiveServer]:
    # Requested before browser_context by the test, so its pages close before this stops.
    with LiveServer(create_app(Settings(datastar_file=str(datastar_js)))) as live:
        yield live


def test_two_tabs_in_a_browser(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import expect

    context = browser_context()
    first = context.new_page()
    problems = watch_console(first)

    first.goto(server.url + "/notes")  # a guest: sent to sign in
    assert first.url == server.url + "/?next=%2Fnotes"
    first.fill("#username", "ada")
    first.click("#sign-in button[type=submit]")
    first.wait_for_url(server.url + "/notes")

    second = context.new_page()  # the same context: the same cookie, the same session
    problems += watch_console(second)
    goto_live(second, server.url + "/notes")
    goto_live(first, server.url + "/notes")  # reloaded so its stream is surely open
    for page in (first, second):
        expect(page.locator("#user")).to_have_text("ada")
        expect(page.locator("#notes li")).to_have_text(["No notes yet."])

    # Chromium throttles the animation frames of a page in the background, and
    # Playwright's clicks wait for frames: the page being used comes to the front.
    first.bring_to_front()
    first.fill("#text", "buy milk")
    first.click("#new-note button[type=submit]")
    expect(second.locator("#notes .text")).to_have_text(["buy milk"])
    expect(first.locator("#notes .text")).to_have_text(["buy milk"])
    expect(first.locator("#text")).to_have_value("")  # the form was emptied

    second.bring_to_front()
    second.fill("#text", "and eggs")
    second.press("#text", "Enter")
    expect(first.locator("#notes .text")).to_have_text(["and eggs", "buy milk"])

    first.bring_to_front()
    first.click("#sign-out")
    first.wait_for_url(server.url + "/")
    # The other tab's stream is closed with a redirect: it leaves the private page.
    second.wait_for_url(server.url + "/")
    expect(second.locator("h1")).to_have_text("Sign in")
    expect(second.locator("#signed-in")).to_have_count(0)
    second.goto(server.url + "/notes")
    assert second.url == server.url + "/?next=%2Fnotes"
    assert problems == []
