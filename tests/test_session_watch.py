"""A session closed on one process ends its streams on every process, even when the
broker's notice is lost: the session store's watch carries the deletion and its reason.

Apps A and B share one session store (a NATS KV bucket on a real nats-server) and one
secret key, but each has its own in-memory broker: no notice of A's ever reaches B, as
when core NATS (at most once) drops one. A client of A and a client of B share cookies,
as one browser behind a load balancer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from livepages import App, Page, Redirect, Session, Settings, action, redirect
from livepages.broker.memory import MemoryBroker
from livepages.sessions.nats import NATSSessionStore
from livepages.sessions.session import SessionManager
from livepages.testing import Client, DatastarEvent, LiveStream
from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.anyio

#: How long a watch may take to carry a deletion to another app: functional, not a benchmark.
CROSSING = 2.0


@dataclass
class User:
    user: str


def make_app(nats_url: str, bucket: str, connect_timeout: float = 5.0) -> App:
    store = NATSSessionStore(nats_url, bucket=bucket, connect_timeout=connect_timeout)
    app = App(
        settings=Settings(secret_key="watch-test", heartbeat=0.5),
        sessions=SessionManager(store=store, closed_url="/bye"),
    )

    @app.page("/")
    class Home(Page):
        def render(self, session: Session[Any]) -> str:
            return f'<p id="who">{session.user_id or "guest"}</p>'

        @action
        async def enter(self, user: User, session: Session[Any]) -> Redirect:
            await session.sign_in(user.user)
            return redirect("/")

        @action
        async def leave(self, session: Session[Any]) -> Redirect:
            await session.sign_out()
            return redirect("/")

        @action
        async def everywhere(self, session: Session[Any]) -> None:
            assert session.user_id is not None
            assert app.sessions is not None
            await app.sessions.close_user(session.user_id)

    return app


@pytest.fixture
async def pair(nats_server: str) -> AsyncIterator[tuple[Client, Client]]:
    """Clients of A and of B: one store, two separate brokers."""
    bucket = f"test_watch_{uuid.uuid4().hex}"
    a, b = make_app(nats_server, bucket), make_app(nats_server, bucket)
    assert isinstance(a.broker, MemoryBroker)
    assert a.broker is not b.broker
    async with Client(a) as on_a, Client(b) as on_b:
        yield on_a, on_b


def share_cookies(source: Client, target: Client) -> None:
    target.http.cookies.clear()
    for cookie in source.http.cookies.jar:
        target.http.cookies.jar.set_cookie(cookie)


async def signed_in(on_a: Client, on_b: Client, user: str) -> None:
    page = await on_a.get("/")
    assert (await page.action("enter", {"user": user})).status_code == 200
    share_cookies(on_a, on_b)


def received(stream: LiveStream) -> list[DatastarEvent]:
    """The events a stream has received and nobody has read yet (comments left out)."""
    events = []
    while not stream.events.empty():
        event = stream.events.get_nowait()
        if not event.comment:
            events.append(event)
    return events


async def last_event(stream: LiveStream) -> DatastarEvent | None:
    """The last event of a stream that must end within ``CROSSING``."""
    await asyncio.wait_for(stream.ended.wait(), CROSSING)
    events = received(stream)
    return events[-1] if events else None


def is_redirect(event: DatastarEvent | None, target: str) -> bool:
    return (
        event is not None
        and event.type == "datastar-patch-elements"
        and f'window.location.href = "{target}"' in event.elements
    )


async def test_signing_out_on_a_sends_bs_stream_to_closed_url(pair: tuple[Client, Client]) -> None:
    on_a, on_b = pair
    await signed_in(on_a, on_b, "ada")
    page_b = await on_b.get("/")
    assert '<p id="who">ada</p>' in page_b.html
    async with page_b.stream() as stream:
        await stream.next_event()
        assert (await (await on_a.get("/")).action("leave")).status_code == 200
        assert is_redirect(await last_event(stream), "/bye")


async def test_a_sign_in_that_replaces_the_session_only_ends_bs_stream(
    pair: tuple[Client, Client],
) -> None:
    on_a, on_b = pair
    await signed_in(on_a, on_b, "ada")
    async with (await on_b.get("/")).stream() as stream:
        await stream.next_event()
        page_a = await on_a.get("/")
        assert (await page_a.action("enter", {"user": "grace"})).status_code == 200
        last = await last_event(stream)
        # It reconnects with the new cookie: no trip to closed_url.
        assert not is_redirect(last, "/bye")


async def test_the_tab_that_signed_out_is_not_sent_away_on_b(pair: tuple[Client, Client]) -> None:
    on_a, on_b = pair
    await signed_in(on_a, on_b, "ada")
    page_a = await on_a.get("/")
    assert page_a.live_url is not None
    # The same tab's stream landed on B; another tab of the session is on B too.
    own = on_b.stream(str(page_a.response.url.join(page_a.live_url)), headers=page_a.headers)
    other = (await on_b.get("/")).stream()
    async with own, other:
        await own.next_event()
        await other.next_event()
        assert (await page_a.action("leave")).status_code == 200
        assert not is_redirect(await last_event(own), "/bye")  # follows its own redirect
        assert is_redirect(await last_event(other), "/bye")


async def test_closing_all_of_a_users_sessions_on_a_reaches_b(
    pair: tuple[Client, Client],
) -> None:
    on_a, on_b = pair
    await signed_in(on_a, on_b, "ada")
    async with (await on_b.get("/")).stream() as stream:
        await stream.next_event()
        assert (await (await on_a.get("/")).action("everywhere")).status_code == 200
        assert is_redirect(await last_event(stream), "/bye")


async def test_the_notice_and_the_watch_together_end_a_stream_once(
    pair: tuple[Client, Client],
) -> None:
    # On A itself both arrive: the broker's notice and the store's watch.
    on_a, on_b = pair
    await signed_in(on_a, on_b, "ada")
    page_a = await on_a.get("/")
    other_tab = await on_a.get("/")
    async with other_tab.stream() as stream:
        await stream.next_event()
        assert (await page_a.action("leave")).status_code == 200
        await asyncio.wait_for(stream.ended.wait(), CROSSING)
        await asyncio.sleep(0.3)  # time for the second of the two to arrive
        events = received(stream)
    assert [is_redirect(event, "/bye") for event in events] == [True]


# -- expiry ---------------------------------------------------------------------------------


async def test_a_session_that_expires_ends_its_streams_at_the_next_heartbeat() -> None:
    # Expiry is known to every process (it is in the record): no notice is needed. The
    # page goes to sign in again, and back (not to closed_url: nobody closed it).
    max_age, heartbeat = 1.0, 0.2
    app = App(
        settings=Settings(secret_key="expiry-test", heartbeat=heartbeat),
        sessions=SessionManager(max_age=max_age, sign_in_url="/signin", closed_url="/bye"),
    )

    @app.page("/")
    class Home(Page):
        def render(self, session: Session[Any]) -> str:
            return f'<p id="who">{session.user_id or "guest"}</p>'

        @action
        async def enter(self, session: Session[Any]) -> Redirect:
            await session.sign_in("ada")
            return redirect("/")

    async with Client(app) as client:
        assert (await (await client.get("/")).action("enter")).status_code == 200
        signed_in = asyncio.get_running_loop().time()
        guest = Client(app)  # a guest's stream has no session to expire
        async with (
            (await client.get("/")).stream() as stream,
            (await guest.get("/")).stream() as guest_stream,
        ):
            await stream.next_event()
            await guest_stream.next_event()
            await asyncio.wait_for(stream.ended.wait(), max_age + 2 * heartbeat + 1.0)
            assert asyncio.get_running_loop().time() - signed_in >= max_age - heartbeat
            assert is_redirect(received(stream)[-1], "/signin?next=%2F")
            assert not guest_stream.ended.is_set()
        await guest.http.aclose()


async def test_a_store_away_at_start_up_watches_once_it_answers(
    nats_server: str, tmp_path: Path
) -> None:
    # B starts while its NATS is not there yet: its store and its watch cannot start.
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    bucket = f"test_watch_{uuid.uuid4().hex}"
    b = make_app(url, bucket, connect_timeout=0.5)
    async with Client(b) as on_b:
        nats, _ = start_nats_server(nats_server_path(), tmp_path, port=port)
        try:
            a = make_app(url, bucket)
            async with Client(a) as on_a:
                await signed_in(on_a, on_b, "ada")
                page_b = await on_b.get("/")  # B's store answers now: its watch starts
                assert '<p id="who">ada</p>' in page_b.html
                async with page_b.stream() as stream:
                    await stream.next_event()
                    page_a = await on_a.get("/")
                    assert (await page_a.action("leave")).status_code == 200
                    # No notice crosses the separate brokers: only the late watch can.
                    assert is_redirect(await last_event(stream), "/bye")
        finally:
            stop_nats_server(nats)
