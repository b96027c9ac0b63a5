"""Sessions wired into an app: every test makes real requests against a real ``App``.

The cookie codec, the stores and the CSRF tokens have their own unit tests; here
they meet: bad cookies, expiry, sign-in without fixation, closing sessions and
their live streams, session data, the cookie's attributes, key rotation, a store
that fails, and SQLite sessions that survive a restart of the server process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from livepages import SSE, App, Page, ServiceUnavailable, Settings, action
from livepages.events import USER, Event, on
from livepages.sessions import (
    CookieCodec,
    MemorySessionStore,
    SealedToken,
    SessionRecord,
    SessionStore,
    SQLiteSessionStore,
    generate_key,
    generate_token,
    session_id,
)
from livepages.sessions.cookie import b64encode
from livepages.sessions.session import Session, SessionManager
from livepages.testing import Client, DatastarEvent, LiveStream, LoadedPage

pytestmark = pytest.mark.anyio

SECRET = "a fixed secret for these tests, long enough"
NAME = "livepages_session"
MAX_AGE = 14 * 24 * 3600
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Prefs:
    theme: str = "light"


@dataclass
class Credentials:
    user: str


@dataclass
class Theme:
    theme: str


@dataclass
class Notified(Event, subject="notify.{user}"):
    user: str
    text: str


@dataclass
class Announced(Event, subject="announce"):
    text: str


def make_app(
    manager: SessionManager | None = None, settings: Settings | None = None, **options: Any
) -> App:
    """A small app whose page shows who is signed in, the session id and its data."""
    if manager is None:
        manager = SessionManager(sign_in_url="/signin", closed_url="/bye", **options)
    app = App(settings=settings or Settings(secret_key=SECRET), sessions=manager)

    @app.page("/")
    class Home(Page):
        def render(self, session: Session[Prefs]) -> str:
            return (
                f'<p id="who">{session.user_id or "guest"}</p>'
                f'<p id="sid">{session.id}</p>'
                f'<p id="theme">{session.data.theme}</p>'
            )

        @action
        async def sign_in(self, session: Session[Prefs], credentials: Credentials) -> None:
            await session.sign_in(credentials.user)

        @action
        async def sign_out(self, session: Session[Prefs]) -> None:
            await session.sign_out()

        @action
        async def choose(self, session: Session[Prefs], choice: Theme) -> None:
            session.data.theme = choice.theme
            await session.save()

        @action
        async def touch(self, session: Session[Prefs]) -> None:
            await session.save()  # without reading the data: it must be kept

        @action
        async def wave(self, session: Session[Prefs]) -> None:
            assert session.data.theme  # reads the session, saves nothing

        @on(Notified, user=USER)
        async def notified(self, event: Notified, sse: SSE) -> None:
            await sse.patch_signals({"note": event.text})

        @on(Announced)
        async def announced(self, event: Announced, sse: SSE) -> None:
            await sse.patch_signals({"note": event.text})

    return app


def sqlite_sessions(db: Path) -> SessionManager:
    """Sessions in the SQLite file ``db``: each app closes its own store at shutdown,
    and the next app on the same file finds the sessions again."""
    return SessionManager(SQLiteSessionStore(db))


async def record_of(store: SessionStore, id: str) -> SessionRecord | None:
    """The session's live record, or None (never stored, closed, expired)."""
    entry = await store.get(id)
    return None if entry is None else entry.record


def manager(app: App) -> SessionManager:
    assert app.sessions is not None
    return app.sessions


def codec(app: App) -> CookieCodec:
    codec = manager(app).codec
    assert codec is not None
    return codec


def shown(page: LoadedPage, element: str) -> str:
    """The text of ``<p id="element">`` in the page."""
    match = re.search(f'<p id="{element}">([^<]*)</p>', page.html)
    assert match is not None, page.html
    return match.group(1)


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def cookie_value(header: str) -> str:
    name, _, rest = header.partition("=")
    assert name == NAME
    return rest.partition(";")[0]


def use_cookie(client: Client, value: str) -> None:
    """Replace the client's session cookie (the same jar entry the app's cookie lands in)."""
    client.http.cookies.clear()
    client.http.cookies.set(NAME, value, domain="testserver.local")


async def sign_in(client: Client, user: str) -> LoadedPage:
    """Sign ``user`` in through the page's action; the page as then loaded."""
    guest = await client.get("/")
    response = await guest.action("sign_in", {"user": user})
    assert response.status_code == 200, response.text
    page = await client.get("/")
    assert shown(page, "who") == user
    return page


def received(stream: LiveStream) -> list[DatastarEvent]:
    """The events a stream has received and nobody has read yet."""
    events = []
    while not stream.events.empty():
        event = stream.events.get_nowait()
        if not event.comment:
            events.append(event)
    return events


def is_redirect(event: DatastarEvent, url: str) -> bool:
    return event.type == "datastar-patch-elements" and (
        f'window.location.href = "{url}"' in event.elements
    )


# -- bad cookies --------------------------------------------------------------------


def forged(valid: str, app: App) -> str:
    """A well-formed cookie (version byte and all) that no key of the app sealed."""
    return b64encode(b"\x01" + os.urandom(12 + 32 + 16))


def truncated(valid: str, app: App) -> str:
    return valid[:-4]


def resealed(valid: str, app: App) -> str:
    """The real, live session token, sealed with a key the app does not have."""
    token = codec(app).decode(valid)
    assert token is not None
    return CookieCodec([generate_key()], name=NAME).encode(token)


def renamed(valid: str, app: App) -> str:
    """The real token sealed with the app's own key, but for another cookie name."""
    token = codec(app).decode(valid)
    assert token is not None
    return CookieCodec([app.keys.derive("cookie")], name="other").encode(token)


BAD_COOKIES = pytest.mark.parametrize("spoil", [forged, truncated, resealed, renamed])


@BAD_COOKIES
async def test_a_bad_cookie_on_a_page_gets_a_fresh_guest_session(
    spoil: Callable[[str, App], str],
) -> None:
    app = make_app()
    async with Client(app) as client:
        signed_in = await sign_in(client, "alice")
        bad = spoil(_jar(client), app)
        use_cookie(client, bad)
        page = await client.get("/")
        assert page.status_code == 200
        assert shown(page, "who") == "guest"
        assert shown(page, "sid") != shown(signed_in, "sid")
        # A page GET replaces the bad cookie with a new guest session's, in one header.
        [header] = set_cookies(page.response)
        fresh = cookie_value(header)
        assert fresh not in ("", bad)
        assert f"Max-Age={MAX_AGE}" in header
        use_cookie(client, fresh)
        assert shown(await client.get("/"), "sid") == shown(page, "sid")


def _jar(client: Client) -> str:
    value = client.http.cookies.get(NAME)
    assert value
    return value


@BAD_COOKIES
async def test_a_bad_cookie_on_a_live_stream_is_cleared_and_the_page_reloads(
    spoil: Callable[[str, App], str],
) -> None:
    app = make_app()
    async with Client(app) as client:
        page = await sign_in(client, "alice")
        use_cookie(client, spoil(_jar(client), app))
        async with page.stream() as stream:
            # The page's tab id belongs to alice's session, not to the guest this
            # request now is: the stream cannot resume, so the page loads afresh.
            assert stream.status == 200
            event = await stream.next_event()
            assert "window.location.reload()" in event.elements
            assert stream.headers["set-cookie"] == (
                f"{NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
            )


@BAD_COOKIES
async def test_a_bad_cookie_on_an_action_is_refused_and_cleared(
    spoil: Callable[[str, App], str],
) -> None:
    app = make_app()
    async with Client(app) as client:
        page = await sign_in(client, "alice")
        use_cookie(client, spoil(_jar(client), app))
        response = await page.action("choose", {"theme": "dark"})
        assert response.status_code == 403  # a guest has no session the token belongs to
        assert set_cookies(response) == [f"{NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"]


async def test_an_expired_session_is_a_guest() -> None:
    clock = [time.time()]
    store = MemorySessionStore(clock=lambda: clock[0])
    app = make_app(SessionManager(store, max_age=3600))
    async with Client(app) as client:
        page = await sign_in(client, "alice")
        expired = _jar(client)
        clock[0] += 3601
        again = await client.get("/")
        assert shown(again, "who") == "guest"
        assert shown(again, "sid") != shown(page, "sid")
        assert cookie_value(set_cookies(again.response)[0]) not in ("", expired)
        # An action from the page rendered before expiry: not done, the cookie cleared,
        # and the page sent to sign in again, then back to itself (livepages.visitors).
        use_cookie(client, expired)
        response = await page.action("choose", {"theme": "dark"})
        assert response.status_code == 200  # Datastar reads only 200s
        assert 'window.location.href = "/?next=%2F"' in response.text
        assert set_cookies(response) == [f"{NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"]
        assert await manager(app).list_user("alice") == []


# -- sign-in, sign-out, fixation ----------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_sign_in_issues_a_new_session_and_voids_the_old_cookie(
    kind: str, tmp_path: Path
) -> None:
    store: SessionStore = (
        MemorySessionStore() if kind == "memory" else SQLiteSessionStore(tmp_path / "s.db")
    )
    app = make_app(SessionManager(store))
    async with Client(app) as client:
        guest = await client.get("/")
        planted = _jar(client)  # what an attacker could have planted in the browser
        guest_id = shown(guest, "sid")
        response = await guest.action("sign_in", {"user": "alice"})
        assert response.status_code == 200
        [header] = set_cookies(response)
        issued = cookie_value(header)
        assert issued not in ("", planted)
        page = await client.get("/")
        assert shown(page, "who") == "alice"
        assert shown(page, "sid") != guest_id
        assert await record_of(store, guest_id) is None
        # The planted cookie now opens nothing: its holder is a guest again.
        use_cookie(client, planted)
        attacker = await client.get("/")
        assert shown(attacker, "who") == "guest"
        assert shown(attacker, "sid") not in (guest_id, shown(page, "sid"))
    await store.close()


async def test_sign_in_keeps_the_guest_data() -> None:
    app = make_app()
    async with Client(app) as client:
        guest = await client.get("/")
        assert (await guest.action("choose", {"theme": "dark"})).status_code == 200
        page = await sign_in(client, "alice")
        assert shown(page, "theme") == "dark"


async def test_sign_in_with_data_replaces_it_and_starts_the_clock_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(settings=Settings(secret_key=SECRET), sessions=SessionManager(max_age=600))

    @app.page("/")
    class Home(Page):
        def render(self, session: Session[Prefs]) -> str:
            assert session.issued_at is not None
            assert session.expires_at is not None
            lifetime = session.expires_at - session.issued_at
            return (
                f'<p id="who">{session.user_id}</p><p id="theme">{session.data.theme}</p>'
                f'<p id="life">{lifetime:.0f}</p><p id="issued">{session.issued_at}</p>'
            )

        @action
        async def sign_in(self, session: Session[Prefs], credentials: Credentials) -> None:
            session.data.theme = "guest's choice"
            await session.sign_in(credentials.user, Prefs(theme="from the database"))

        @action
        async def sign_in_badly(self, session: Session[Prefs]) -> None:
            await session.sign_in("mallory", data=["not", "a", "record"])

    async with Client(app) as client:
        guest = await client.get("/")
        assert shown(guest, "life") == "600"
        await guest.action("sign_in", {"user": "alice"})
        page = await client.get("/")
        assert shown(page, "who") == "alice"
        assert shown(page, "theme") == "from the database"
        assert shown(page, "life") == "600"
        assert float(shown(page, "issued")) >= float(shown(guest, "issued"))
        with caplog.at_level(logging.ERROR, logger="livepages"):
            response = await page.action("sign_in_badly")
        assert "session data must be a dataclass, msgspec Struct or dict" in caplog.text
        assert '"status":500' in response.text
        assert await manager(app).list_user("mallory") == []


async def test_sign_out_clears_the_cookie_and_forgets_the_session() -> None:
    app = make_app()
    async with Client(app) as client:
        page = await sign_in(client, "alice")
        signed_in = _jar(client)
        response = await page.action("sign_out")
        assert response.status_code == 200
        assert set_cookies(response) == [f"{NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"]
        assert await manager(app).list_user("alice") == []
        use_cookie(client, signed_in)
        assert shown(await client.get("/"), "who") == "guest"


# -- listing and closing sessions ----------------------------------------------------


async def test_closing_a_session_ends_its_streams_with_a_redirect() -> None:
    app = make_app()
    async with Client(app) as laptop, Client(app) as phone, Client(app) as other:
        first = await sign_in(laptop, "alice")
        second = await sign_in(phone, "alice")
        bob = await sign_in(other, "bob")
        sessions = await manager(app).list_user("alice")
        assert [s.id for s in sessions] == [shown(first, "sid"), shown(second, "sid")]
        assert all(s.user_id == "alice" for s in sessions)
        assert [s.id for s in await manager(app).list_user("bob")] == [shown(bob, "sid")]

        streams = [await page.stream().open() for page in (first, second, bob)]
        for stream in streams:
            await stream.next_event()  # the initial render
        one, two, three = streams

        await manager(app).close(shown(first, "sid"))
        await asyncio.wait_for(one.ended.wait(), 1.0)
        assert is_redirect(received(one)[-1], "/bye")
        assert not two.ended.is_set()
        assert not three.ended.is_set()
        assert [s.id for s in await manager(app).list_user("alice")] == [shown(second, "sid")]
        assert shown(await laptop.get("/"), "who") == "guest"

        closed = await manager(app).close_user("alice")
        assert closed == [shown(second, "sid")]
        await asyncio.wait_for(two.ended.wait(), 1.0)
        assert is_redirect(received(two)[-1], "/bye")
        assert await manager(app).list_user("alice") == []
        assert shown(await phone.get("/"), "who") == "guest"

        # Bob's stream is still open and still delivers.
        assert not three.ended.is_set()
        await app.publish(Notified(user="bob", text="still here"))
        assert (await three.next_event()).signals == {"note": "still here"}


async def test_sign_out_ends_the_sessions_other_streams() -> None:
    app = make_app()
    async with Client(app) as client:
        page = await sign_in(client, "alice")
        other_tab = await client.get("/")
        async with other_tab.stream() as stream:
            await stream.next_event()
            assert (await page.action("sign_out")).status_code == 200
            await asyncio.wait_for(stream.ended.wait(), 1.0)
            assert is_redirect(received(stream)[-1], "/bye")


async def test_closed_url_defaults_to_the_sign_in_url() -> None:
    app = make_app(SessionManager(sign_in_url="/signin"))
    async with Client(app) as client:
        page = await sign_in(client, "alice")
        async with page.stream() as stream:
            await stream.next_event()
            await manager(app).close_user("alice")
            await asyncio.wait_for(stream.ended.wait(), 1.0)
            assert is_redirect(received(stream)[-1], "/signin")


# -- session data and per-user events ------------------------------------------------


async def test_session_data_persists_across_requests() -> None:
    app = make_app()
    async with Client(app) as client:
        page = await client.get("/")
        assert shown(page, "theme") == "light"
        assert (await page.action("choose", {"theme": "dark"})).status_code == 200
        again = await client.get("/")
        assert shown(again, "theme") == "dark"
        assert shown(again, "sid") == shown(page, "sid")  # saved in place, same session
    async with Client(app) as stranger:
        assert shown(await stranger.get("/"), "theme") == "light"


async def test_saving_without_reading_the_data_keeps_it() -> None:
    app = make_app()
    async with Client(app) as client:
        page = await client.get("/")
        await page.action("choose", {"theme": "dark"})
        assert (await page.action("touch")).status_code == 200
        assert shown(await client.get("/"), "theme") == "dark"


async def test_stored_data_that_no_longer_fits_its_type_falls_back_to_defaults(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemorySessionStore()
    app = make_app(SessionManager(store))
    async with Client(app) as client:
        page = await client.get("/")
        await page.action("choose", {"theme": "dark"})
        entry = await store.get(shown(page, "sid"))
        assert entry is not None
        assert entry.record is not None
        old_shape = msgspec.structs.replace(entry.record, data=b'{"theme": 3}')
        await store.update(old_shape, entry.revision)
        with caplog.at_level(logging.WARNING, logger="livepages.sessions"):
            again = await client.get("/")
        assert again.status_code == 200
        assert shown(again, "theme") == "light"
        assert shown(again, "sid") == shown(page, "sid")
        assert "session data does not fit" in caplog.text


@dataclass
class Cart:
    items: list[str]  # no default: a new session cannot have one


async def test_a_data_type_without_defaults_is_a_clear_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(settings=Settings(secret_key=SECRET), sessions=True)

    @app.page("/")
    class Shop(Page):
        def render(self, session: Session[Cart]) -> str:
            return str(len(session.data.items))

    async with Client(app) as client:
        with caplog.at_level(logging.ERROR, logger="livepages"):
            response = await client.http.get("/")
        assert response.status_code == 500
        assert "needs a default for every field" in caplog.text


async def test_user_events_reach_only_that_users_streams() -> None:
    app = make_app()
    async with Client(app) as a, Client(app) as b, Client(app) as c, Client(app) as g:
        pages = [await sign_in(a, "alice"), await sign_in(b, "alice"), await sign_in(c, "bob")]
        pages.append(await g.get("/"))  # a guest
        streams = [await page.stream().open() for page in pages]
        for stream in streams:
            await stream.next_event()
        await app.publish(Notified(user="alice", text="for alice"))
        await app.publish(Announced(text="for all"))
        for stream in streams[:2]:
            assert (await stream.next_event()).signals == {"note": "for alice"}
        for stream in streams:  # the events arrive in order: nothing came before this
            assert (await stream.next_event()).signals == {"note": "for all"}
        for stream in streams:
            await stream.close()


# -- the cookie ---------------------------------------------------------------------


async def test_cookie_attributes_over_http() -> None:
    async with Client(make_app()) as client:
        page = await client.get("/")
        [header] = set_cookies(page.response)
        value = cookie_value(header)
        assert header == f"{NAME}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={MAX_AGE}"


async def test_cookie_is_secure_under_https() -> None:
    async with Client(make_app(), base_url="https://testserver") as client:
        page = await client.get("/")
        [header] = set_cookies(page.response)
        assert header.endswith("; Secure")
        assert "; HttpOnly; SameSite=Lax; " in header


async def test_cookie_name_domain_age_and_secure_are_configurable() -> None:
    manager = SessionManager(cookie_name="sid", domain="example.test", max_age=600, secure=True)
    async with Client(make_app(manager)) as client:
        response = await client.http.get("/")
        [header] = set_cookies(response)
        value = header.partition(";")[0].removeprefix("sid=")
        assert header == (
            f"sid={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600; Domain=example.test; Secure"
        )
        # The configured name is the one read back, and the only one.
        again = await client.http.get("/", headers={"cookie": f"sid={value}"})
        assert set_cookies(again) == []
        stale = await client.http.get("/", headers={"cookie": f"{NAME}={value}"})
        assert len(set_cookies(stale)) == 1  # not its cookie: a new guest session


async def test_a_valid_cookie_is_not_set_again() -> None:
    async with Client(make_app()) as client:
        page = await client.get("/")
        assert len(set_cookies(page.response)) == 1
        again = await client.get("/")
        assert set_cookies(again.response) == []
        # The guest's first save stores the session: its cookie says so, once.
        assert len(set_cookies(await again.action("choose", {"theme": "dark"}))) == 1
        assert set_cookies(await again.action("choose", {"theme": "light"})) == []
        assert set_cookies((await client.get("/")).response) == []


async def test_key_rotation_keeps_cookies_sealed_under_the_old_secret(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    before = make_app(sqlite_sessions(db), Settings(secret_key="old secret"))
    async with Client(before) as client:
        await sign_in(client, "alice")
        sealed = _jar(client)
    rotated = Settings(secret_key="new secret", previous_secret_keys=("old secret",))
    after = make_app(sqlite_sessions(db), rotated)
    async with Client(after) as client:
        use_cookie(client, sealed)
        page = await client.get("/")
        assert shown(page, "who") == "alice"
        # New cookies are sealed with the new secret only.
        await page.action("sign_in", {"user": "bob"})
        assert codec(before).decode(_jar(client)) is None
    dropped = make_app(sqlite_sessions(db), Settings(secret_key="new secret"))
    async with Client(dropped) as client:
        use_cookie(client, sealed)
        assert shown(await client.get("/"), "who") == "guest"


async def test_key_rotation_keeps_pages_rendered_under_the_old_secret_working(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    before = make_app(sqlite_sessions(db), Settings(secret_key="old secret"))
    async with Client(before) as client:
        page = await sign_in(client, "alice")
        sealed = _jar(client)
    rotated = Settings(secret_key="new secret", previous_secret_keys=("old secret",))
    async with Client(make_app(sqlite_sessions(db), rotated)) as client:
        use_cookie(client, sealed)
        page.client = client
        assert (await page.action("choose", {"theme": "dark"})).status_code == 200
        assert shown(await client.get("/"), "theme") == "dark"


async def test_key_rotation_keeps_open_pages_streaming(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    before = make_app(sqlite_sessions(db), Settings(secret_key="old secret"))
    async with Client(before) as client:
        page = await sign_in(client, "alice")
        sealed = _jar(client)
    rotated = Settings(secret_key="new secret", previous_secret_keys=("old secret",))
    async with Client(make_app(sqlite_sessions(db), rotated)) as client:
        use_cookie(client, sealed)
        page.client = client
        async with page.stream() as stream:
            assert stream.status == 200


# -- sign-in from live pages and streaming actions -----------------------------------


async def test_signing_in_does_not_send_the_tab_to_the_closed_url() -> None:
    app = make_app()
    async with Client(app) as client:
        guest = await client.get("/")
        async with guest.stream() as stream:
            await stream.next_event()
            assert (await guest.action("sign_in", {"user": "alice"})).status_code == 200
            assert not any(is_redirect(event, "/bye") for event in received(stream))


async def test_signing_in_from_a_streaming_action_sets_the_cookie() -> None:
    app = App(settings=Settings(secret_key=SECRET), sessions=True)

    @app.page("/")
    class Home(Page):
        def render(self, session: Session[Prefs]) -> str:
            return f'<p id="who">{session.user_id or "guest"}</p>'

        @action
        async def sign_in(self, session: Session[Prefs], sse: SSE) -> None:
            await session.sign_in("alice")
            await sse.patch_signals({"signed_in": True})

    async with Client(app) as client:
        page = await client.get("/")
        response = await page.action("sign_in")
        assert response.status_code == 200
        assert len(set_cookies(response)) == 1
        assert shown(await client.get("/"), "who") == "alice"


# -- guests are stored only once something is saved ----------------------------------


def stored_rows(db: Path) -> int:
    """How many rows the SQLite store at ``db`` holds (records and tombstones)."""
    with closing(sqlite3.connect(db)) as connection:
        (count,) = connection.execute("SELECT count(*) FROM livepages_sessions").fetchone()
    return int(count)


async def test_cookie_less_page_gets_store_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    app = make_app(sqlite_sessions(db))
    async with Client(app) as client:
        ids = set()
        for _ in range(30):
            client.http.cookies.clear()
            page = await client.get("/")
            [header] = set_cookies(page.response)
            sealed = codec(app).decode(cookie_value(header))
            assert sealed is not None
            assert not sealed.stored
            # The guest has a session id (its token's) all the same.
            assert shown(page, "sid") == session_id(sealed.token)
            ids.add(shown(page, "sid"))
        assert len(ids) == 30
        assert stored_rows(db) == 0

        # The last guest's page works: its actions carry a valid CSRF token.
        assert (await page.action("wave")).status_code == 200
        async with page.stream() as stream:
            assert '<p id="who">guest</p>' in (await stream.next_event()).elements
        assert stored_rows(db) == 0

        # Its first save stores one record, under the same id, and says so in the cookie.
        response = await page.action("choose", {"theme": "dark"})
        assert response.status_code == 200
        sealed = codec(app).decode(cookie_value(set_cookies(response)[0]))
        assert sealed is not None
        assert sealed.stored
        assert stored_rows(db) == 1
        again = await client.get("/")
        assert shown(again, "sid") == shown(page, "sid")
        assert shown(again, "theme") == "dark"
        record = await record_of(manager(app).store, shown(page, "sid"))
        assert record is not None
        assert record.issued_at == sealed.issued_at  # the session started at the first GET
        assert (await page.action("wave")).status_code == 200


async def test_a_guest_cookie_expires_after_max_age() -> None:
    app = make_app(max_age=600)
    old = SealedToken(generate_token(), stored=False, issued_at=time.time() - 601)
    async with Client(app) as client:
        use_cookie(client, codec(app).encode(old))
        page = await client.get("/")
        assert shown(page, "sid") != session_id(old.token)
        assert cookie_value(set_cookies(page.response)[0]) != ""
        use_cookie(client, codec(app).encode(old))
        response = await page.action("choose", {"theme": "dark"})
        assert response.status_code == 403
        assert set_cookies(response) == [f"{NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"]


async def test_a_guest_cookie_that_missed_its_first_save_is_sealed_as_stored() -> None:
    app = make_app()
    async with Client(app) as client:
        page = await client.get("/")
        unstored = _jar(client)
        await page.action("choose", {"theme": "dark"})
        use_cookie(client, unstored)  # as if the save's Set-Cookie had been lost
        again = await client.get("/")
        assert shown(again, "theme") == "dark"
        [header] = set_cookies(again.response)
        sealed = codec(app).decode(cookie_value(header))
        assert sealed is not None
        assert sealed.stored


async def test_an_old_copy_of_a_guest_cookie_cannot_revive_its_closed_session() -> None:
    app = make_app()
    async with Client(app) as client:
        page = await client.get("/")
        copy = _jar(client)  # taken before the first save
        await page.action("choose", {"theme": "dark"})
        assert (await page.action("sign_out")).status_code == 200
        use_cookie(client, copy)
        again = await client.get("/")
        assert shown(again, "sid") != shown(page, "sid")
        assert shown(again, "theme") == "light"
        use_cookie(client, copy)
        assert (await page.action("choose", {"theme": "blue"})).status_code == 403
        assert await record_of(manager(app).store, shown(page, "sid")) is None


# -- saves that race other requests ---------------------------------------------------


class Gate:
    """Holds a slow action between reading its session and saving it."""

    def __init__(self, readers: int = 1) -> None:
        self.readers = readers
        self.read = asyncio.Event()
        self.resume = asyncio.Event()

    async def between_read_and_save(self) -> None:
        self.readers -= 1
        if self.readers == 0:
            self.read.set()
        await self.resume.wait()


def add_slow_page(app: App, gate: Gate) -> None:
    """``/slow``, whose ``choose`` reads the session, waits at ``gate``, then saves."""

    @app.page("/slow")
    class Slow(Page):
        def render(self) -> str:
            return "<p>slow</p>"

        @action
        async def choose(self, session: Session[Prefs], choice: Theme) -> None:
            if choice.theme != "unchanged":
                session.data.theme = choice.theme
            await gate.between_read_and_save()
            await session.save()


def closed_by_conflict(response: httpx.Response) -> bool:
    """Whether an action answered 409 "session ended" and cleared the cookie."""
    return (
        '"status":409' in response.text
        and "your session has ended" in response.text
        and set_cookies(response) == [f"{NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"]
    )


async def _sign_out(client: Client, app: App, sid: str) -> None:
    home = await client.get("/")
    assert (await home.action("sign_out")).status_code == 200


async def _close(client: Client, app: App, sid: str) -> None:
    await manager(app).close(sid)


async def _close_user(client: Client, app: App, sid: str) -> None:
    assert await manager(app).close_user("alice") == [sid]


@pytest.mark.parametrize("end", [_sign_out, _close, _close_user])
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_session_closed_while_a_save_is_in_flight_stays_closed(
    kind: str, end: Callable[[Client, App, str], Any], tmp_path: Path
) -> None:
    store: SessionStore = (
        MemorySessionStore() if kind == "memory" else SQLiteSessionStore(tmp_path / "s.db")
    )
    app = make_app(SessionManager(store))
    gate = Gate()
    add_slow_page(app, gate)
    async with Client(app) as client:
        sid = shown(await sign_in(client, "alice"), "sid")
        stolen = _jar(client)
        slow = await client.get("/slow")
        saving = asyncio.create_task(slow.action("choose", {"theme": "dark"}))
        await gate.read.wait()
        await end(client, app, sid)
        gate.resume.set()
        assert closed_by_conflict(await saving)
        assert await manager(app).list_user("alice") == []
        assert await record_of(store, sid) is None
        use_cookie(client, stolen)
        page = await client.get("/")
        assert shown(page, "who") == "guest"
        assert shown(page, "sid") != sid


async def test_a_guests_first_save_in_flight_when_it_signs_out_stores_nothing() -> None:
    app = make_app()
    gate = Gate()
    add_slow_page(app, gate)
    async with Client(app) as client:
        slow = await client.get("/slow")
        sid, copy = shown(await client.get("/"), "sid"), _jar(client)
        saving = asyncio.create_task(slow.action("choose", {"theme": "dark"}))
        await gate.read.wait()
        await _sign_out(client, app, sid)
        gate.resume.set()
        assert closed_by_conflict(await saving)
        assert await record_of(manager(app).store, sid) is None
        use_cookie(client, copy)
        assert shown(await client.get("/"), "sid") != sid


async def test_a_guests_sign_in_closes_a_first_save_in_flight() -> None:
    app = make_app()
    gate = Gate()
    add_slow_page(app, gate)
    async with Client(app) as client:
        slow = await client.get("/slow")
        guest = await client.get("/")
        saving = asyncio.create_task(slow.action("choose", {"theme": "dark"}))
        await gate.read.wait()
        assert (await guest.action("sign_in", {"user": "alice"})).status_code == 200
        signed_in = _jar(client)
        gate.resume.set()
        assert closed_by_conflict(await saving)
        assert await record_of(manager(app).store, shown(guest, "sid")) is None
        use_cookie(client, signed_in)
        assert shown(await client.get("/"), "who") == "alice"


@pytest.mark.parametrize(
    ("first", "second", "saved"),
    [
        ("dark", "unchanged", "dark"),  # the second only saves what it read: merged
        ("unchanged", "dark", "dark"),
        ("dark", "dark", "dark"),  # the same change twice
    ],
)
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_concurrent_saves_that_do_not_clash_both_succeed(
    kind: str, first: str, second: str, saved: str, tmp_path: Path
) -> None:
    store: SessionStore = (
        MemorySessionStore() if kind == "memory" else SQLiteSessionStore(tmp_path / "s.db")
    )
    app = make_app(SessionManager(store))
    gate = Gate(readers=2)
    add_slow_page(app, gate)
    async with Client(app) as client:
        await sign_in(client, "alice")
        slow = await client.get("/slow")
        saves = [
            asyncio.create_task(slow.action("choose", {"theme": theme}))
            for theme in (first, second)
        ]
        await gate.read.wait()
        gate.resume.set()
        for response in await asyncio.gather(*saves):
            assert response.status_code == 200
            assert error_of(response) == 0, response.text  # no _error reported
        assert shown(await client.get("/"), "theme") == saved


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_concurrent_saves_that_clash_refuse_the_later_one(kind: str, tmp_path: Path) -> None:
    store: SessionStore = (
        MemorySessionStore() if kind == "memory" else SQLiteSessionStore(tmp_path / "s.db")
    )
    app = make_app(SessionManager(store))
    gate = Gate(readers=2)
    add_slow_page(app, gate)
    async with Client(app) as client:
        await sign_in(client, "alice")
        slow = await client.get("/slow")
        saves = [
            asyncio.create_task(slow.action("choose", {"theme": theme}))
            for theme in ("dark", "blue")
        ]
        await gate.read.wait()
        gate.resume.set()
        responses = await asyncio.gather(*saves)
        refused = [r for r in responses if '"status":409' in r.text]
        assert len(refused) == 1
        assert "changed by another request" in refused[0].text
        assert set_cookies(refused[0]) == []  # the session is fine: it stays
        [won] = [
            theme for theme, r in zip(("dark", "blue"), responses, strict=True) if r not in refused
        ]
        assert shown(await client.get("/"), "theme") == won


# -- store failures ----------------------------------------------------------------


async def closed_memory_store(tmp_path: Path) -> SessionStore:
    store = MemorySessionStore()
    await store.close()
    return store


async def closed_sqlite_store(tmp_path: Path) -> SessionStore:
    store = SQLiteSessionStore(tmp_path / "s.db")
    await store.close()
    return store


async def directory_store(tmp_path: Path) -> SessionStore:
    return SQLiteSessionStore(tmp_path)  # a directory is not a database


FAILING_STORES = pytest.mark.parametrize(
    "make_store", [closed_memory_store, closed_sqlite_store, directory_store]
)


@FAILING_STORES
async def test_a_failing_store_answers_503_and_keeps_the_cookie(
    make_store: Callable[[Path], Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await make_store(tmp_path)
    app = make_app(SessionManager(store))
    cookie = codec(app).encode(SealedToken(generate_token(), stored=True, issued_at=time.time()))
    async with Client(app) as client:
        # A visitor without a cookie needs nothing from the store: a guest, as ever.
        fresh = await client.http.get("/")
        assert fresh.status_code == 200
        assert len(set_cookies(fresh)) == 1
        guest_cookie = _jar(client)

        use_cookie(client, cookie)
        with caplog.at_level(logging.WARNING, logger="livepages"):
            page = await client.get("/")
        assert page.status_code == 503
        assert set_cookies(page.response) == []
        assert "sessions are unavailable" in page.html
        assert any("session store" in r.getMessage() for r in caplog.records)

        # A guest whose session was never stored needs no store either: with the store
        # away it stays the guest its cookie says (once back, a closed one is refused).
        use_cookie(client, guest_cookie)
        guest = await client.http.get("/")
        assert guest.status_code == 200
        assert set_cookies(guest) == []
        use_cookie(client, cookie)

        plain = await client.http.post("/_action/choose", json={"theme": "dark"})
        assert plain.status_code == 503
        assert set_cookies(plain) == []

        datastar = await client.http.post(
            "/_action/choose", json={"theme": "dark"}, headers={"datastar-request": "true"}
        )
        assert datastar.status_code == 200  # Datastar reads only 200s: the error is a patch
        assert '"status":503' in datastar.text
        assert set_cookies(datastar) == []
    for record in caplog.records:
        assert cookie not in record.getMessage()


@FAILING_STORES
async def test_a_failing_store_fails_listing_and_closing_loudly(
    make_store: Callable[[Path], Any], tmp_path: Path
) -> None:
    app = make_app(SessionManager(await make_store(tmp_path)))
    for call in (
        manager(app).list_user("alice"),
        manager(app).close_user("alice"),
        manager(app).close("0" * 64),
    ):
        with pytest.raises(ServiceUnavailable):
            await call


async def test_a_failing_store_asks_live_streams_to_retry() -> None:
    store = MemorySessionStore()
    app = make_app(SessionManager(store))
    async with Client(app) as client:
        page = await client.get("/")
        assert (await page.action("choose", {"theme": "dark"})).status_code == 200  # stored
        page = await client.get("/")
        await store.close()
        async with page.stream() as stream:
            # 503, which Datastar retries (204 would stop the page for good).
            assert stream.status == 503
            assert stream.headers["retry-after"] == "1"
            assert "set-cookie" not in stream.headers


# -- SQLite sessions survive a restart -----------------------------------------------

SERVER = """\
import socket
import sys
from dataclasses import dataclass

import uvicorn

from livepages import App, Page, Settings, action
from livepages.sessions import SQLiteSessionStore
from livepages.sessions.session import Session, SessionManager

store = SQLiteSessionStore(sys.argv[1])
app = App(settings=Settings(secret_key=sys.argv[2]), sessions=SessionManager(store))


@dataclass
class Credentials:
    user: str


@app.page("/")
class Home(Page):
    live = False

    def render(self, session: Session) -> str:
        return f'<p id="who">{session.user_id or "guest"}</p>'

    @action
    async def sign_in(self, session: Session, credentials: Credentials) -> None:
        await session.sign_in(credentials.user)


sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
"""


class ServerProcess:
    """The app above in its own Python process, serving on 127.0.0.1."""

    def __init__(self, script: Path, db: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(db), SECRET],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()
        if not port:
            raise RuntimeError(f"the app process failed: {self.stop()}")
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(500):
            try:
                httpx.get(self.url + "/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.02)
        raise RuntimeError(f"the app process did not answer: {self.stop()}")

    def stop(self) -> str:
        """Stop the process by its PID; its stderr."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        assert self.process.stderr is not None
        return self.process.stderr.read()


def test_sqlite_sessions_survive_a_restart(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER, encoding="utf-8")
    db = tmp_path / "s.db"
    first = ServerProcess(script, db)
    try:
        with httpx.Client(base_url=first.url) as http:
            page = http.get("/")
            assert '<p id="who">guest</p>' in page.text
            csrf = re.search(r"_csrf: &#x27;([^&]+)&#x27;", page.text)
            assert csrf is not None
            response = http.post(
                "/_action/sign_in", json={"user": "alice"}, headers={"X-CSRF-Token": csrf[1]}
            )
            assert response.status_code == 204, response.text
            cookie = http.cookies[NAME]
            assert '<p id="who">alice</p>' in http.get("/").text
    finally:
        first.stop()
    assert first.process.returncode is not None

    second = ServerProcess(script, db)
    try:
        response = httpx.get(second.url + "/", headers={"cookie": f"{NAME}={cookie}"})
        assert '<p id="who">alice</p>' in response.text
        assert set_cookies(response) == []
    finally:
        second.stop()


def error_of(response: httpx.Response) -> int:
    """The ``_error`` status a Datastar action response patches (0: none)."""
    match = re.search(r'"_error":\{"status":(\d+)', response.text)
    return int(match.group(1)) if match else 0


async def test_a_per_session_view_renders_the_data_an_action_just_saved() -> None:
    app = make_app()
    async with Client(app) as client:
        page = await client.get("/")
        assert shown(page, "theme") == "light"
        async with page.stream() as stream:
            assert '<p id="theme">light</p>' in (await stream.next_event()).elements
            response = await page.action("choose", {"theme": "dark"})
            assert response.status_code == 200
            # The caller's view re-renders with the session as saved, not as the stream
            # loaded it when it opened.
            assert '<p id="theme">dark</p>' in (await stream.next_event()).elements
