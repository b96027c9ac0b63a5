"""Which broker and session store an app runs on: ``Settings.nats_url`` switches to NATS."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from livepages import App, Event, Page, Redirect, Session, Settings, action, on, redirect
from livepages.backends import nats_servers
from livepages.broker.memory import MemoryBroker
from livepages.broker.nats import NATSBroker
from livepages.sessions.memory import MemorySessionStore
from livepages.sessions.nats import NATSSessionStore
from livepages.sessions.session import SessionManager
from livepages.tabs.nats import NATSTabStore
from livepages.testing import Client, parse_events
from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server
from tests.fixtures.servers import ROOT

pytestmark = pytest.mark.anyio


@dataclass
class Bumped(Event, subject="bumped"):
    """Something changed."""


@pytest.mark.parametrize("environ", [{}, {"LIVEPAGES_NATS_URL": ""}])
def test_without_nats_url_the_app_stays_in_process(environ: dict[str, str]) -> None:
    app = App(settings=Settings.from_env(environ, secret_key="k"), sessions=True)
    assert isinstance(app.broker, MemoryBroker)
    assert app.sessions is not None
    assert isinstance(app.sessions.store, MemorySessionStore)


def test_livepages_needs_no_nats_py_without_nats_url() -> None:
    # nats-py made unimportable: the app is built and serves a page all the same.
    script = textwrap.dedent("""
        import sys
        sys.modules["nats"] = None
        from livepages import App, Page, Settings
        from livepages.testing import Client, parse_events
        import asyncio
        app = App(settings=Settings(secret_key="k"), sessions=True)
        @app.page("/")
        class Home(Page):
            def render(self) -> str:
                return "<p>hi</p>"
        async def main() -> None:
            async with Client(app) as client:
                assert (await client.get("/")).status_code == 200
        asyncio.run(main())
        assert not any(name.startswith("nats.") for name in sys.modules)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_nats_url_comes_from_the_environment() -> None:
    settings = Settings.from_env({"LIVEPAGES_NATS_URL": "nats://10.0.0.1:4222"})
    assert settings.nats_url == "nats://10.0.0.1:4222"
    assert nats_servers("nats://a:4222, nats://b:4222") == ["nats://a:4222", "nats://b:4222"]


async def test_nats_url_puts_broker_and_sessions_on_one_connection(nats_server: str) -> None:
    app = App(settings=Settings(secret_key="k", nats_url=nats_server), sessions=True)
    broker, sessions = app.broker, app.sessions
    assert isinstance(broker, NATSBroker)
    assert broker.options.servers == (nats_server,)
    assert sessions is not None
    assert isinstance(sessions.store, NATSSessionStore)
    await app.startup()
    try:
        # The store took the broker's client: one connection for both.
        assert sessions.store.client is broker.client
    finally:
        await app.shutdown()
    assert not broker.connected


async def test_a_given_broker_or_manager_is_kept(nats_server: str) -> None:
    given_broker, manager = MemoryBroker(), SessionManager()
    settings = Settings(secret_key="k", nats_url=nats_server)
    app = App(settings=settings, broker=given_broker, sessions=manager)
    assert app.broker is given_broker
    assert app.sessions is manager
    assert isinstance(manager.store, MemorySessionStore)
    # A given broker, sessions=True: the store has a connection of its own to nats_url.
    app = App(settings=settings, broker=MemoryBroker(), sessions=True)
    assert app.sessions is not None
    store = app.sessions.store
    assert isinstance(store, NATSSessionStore)
    await app.startup()
    try:
        assert store.client is not None
        assert store.client.is_connected
    finally:
        await app.shutdown()
    assert store.client.is_closed


def test_the_session_bucket_gets_the_replicas_asked_for() -> None:
    environ = {"LIVEPAGES_NATS_URL": "nats://10.0.0.1:4222", "LIVEPAGES_NATS_KV_REPLICAS": "3"}
    settings = Settings.from_env(environ, secret_key="k")
    assert settings.nats_kv_replicas == 3
    for app in (
        App(settings=settings, sessions=True),
        App(settings=settings, broker=MemoryBroker(), sessions=True),
    ):
        assert app.sessions is not None
        assert isinstance(app.sessions.store, NATSSessionStore)
        assert app.sessions.store.replicas == 3
    # One nats-server: one replica, unless asked (a cluster's bucket is tested in
    # tests/test_nats_cluster.py).
    assert Settings().nats_kv_replicas == 1


@pytest.mark.parametrize("replicas", [0, -1, 6])
def test_replicas_outside_what_nats_allows_are_refused(replicas: int) -> None:
    settings = Settings(secret_key="k", nats_url="nats://10.0.0.1:4222", nats_kv_replicas=replicas)
    with pytest.raises(ValueError, match=f"nats_kv_replicas must be 1 to 5, not {replicas}"):
        App(settings=settings, sessions=True)


def test_no_sessions_means_no_store(nats_server: str) -> None:
    app = App(settings=Settings(secret_key="k", nats_url=nats_server))
    assert isinstance(app.broker, NATSBroker)
    assert app.sessions is None


def error_status(response: httpx.Response) -> int:
    """The status a Datastar action reports in its ``_error`` signal (0: success).

    Datastar reads only 200 responses, so an action's failure comes as a signal patch."""
    assert response.status_code == 200
    events, _ = parse_events(response.text)
    return int(events[-1].signals["_error"]["status"])


async def until_disconnected(app: App) -> None:
    """Wait until the app's connection has seen NATS go (a request sent before that
    goes into a dead socket and waits for its timeout, as any in flight would)."""
    broker = app.broker
    assert isinstance(broker, NATSBroker)
    deadline = time.monotonic() + 5
    while broker.connected:
        assert time.monotonic() < deadline, "the connection did not notice NATS going"
        await asyncio.sleep(0.01)


def make_notes_app(nats_url: str, kv_replicas: int = 1) -> App:
    """A page with a session and two actions, on NATS through ``nats_url`` alone."""
    settings = Settings(secret_key="k", nats_url=nats_url, nats_kv_replicas=kv_replicas)
    app = App(settings=settings, sessions=True)

    @app.page("/")
    @on(Bumped)
    class Home(Page):
        def render(self, session: Session[Any]) -> str:
            return f'<p id="who">{session.user_id or "guest"}</p>'

        @action
        async def bump(self) -> None:
            await app.publish(Bumped())

        @action
        async def enter(self, session: Session[Any]) -> Redirect:
            await session.sign_in("ada")
            return redirect("/")

    return app


async def test_while_nats_is_away_guests_load_and_the_rest_answer_503(tmp_path: Path) -> None:
    binary = nats_server_path()
    process, url = start_nats_server(binary, tmp_path)
    app = make_notes_app(url)
    try:
        async with Client(app) as guest, Client(app) as member, Client(app) as newcomer:
            signed_in = await member.get("/")
            assert (await signed_in.action("enter")).status_code == 200
            page = await guest.get("/")
            stop_nats_server(process)
            await until_disconnected(app)
            started = time.monotonic()
            # A first visit (no cookie yet) needs no store; a publish fails at once.
            assert (await newcomer.get("/")).status_code == 200
            assert error_status(await page.action("bump")) == 503
            # A stored session's cookie needs KV: 503, at once. A guest's session that
            # was never stored needs nothing from it: the page loads.
            assert (await member.get("/")).status_code == 503
            assert (await guest.get("/")).status_code == 200
            assert time.monotonic() - started < 1.0
            process, _ = start_nats_server(binary, tmp_path, port=int(url.rsplit(":", 1)[1]))
            # The one shared connection comes back by itself: sessions and events again.
            deadline = time.monotonic() + 10
            while (await member.get("/")).status_code != 200:
                assert time.monotonic() < deadline, "the session store did not come back"
                await asyncio.sleep(0.1)
            assert '<p id="who">ada</p>' in (await member.get("/")).html
            assert error_status(await (await guest.get("/")).action("bump")) == 0
    finally:
        stop_nats_server(process)


async def test_a_given_nats_broker_puts_sessions_and_tab_state_on_its_connection(
    nats_server: str,
) -> None:
    broker = NATSBroker([nats_server])
    app = App(settings=Settings(secret_key="k"), broker=broker, sessions=True)
    assert app.sessions is not None
    store = app.sessions.store
    tabs = app.live.tabs.store
    assert isinstance(store, NATSSessionStore)
    assert isinstance(tabs, NATSTabStore)
    await app.startup()
    try:
        assert store.client is broker.client
        await tabs.start()  # (bound on first use otherwise)
        assert tabs.client is broker.client
    finally:
        await app.shutdown()


async def test_nats_url_keeps_tab_state_in_kv_and_a_given_tab_store_wins(
    nats_server: str,
) -> None:
    app = App(settings=Settings(secret_key="k", nats_url=nats_server))
    assert isinstance(app.live.tabs.store, NATSTabStore)
    mine = NATSTabStore(nats_server, bucket="mine")
    app = App(settings=Settings(secret_key="k", nats_url=nats_server), tab_store=mine)
    assert app.live.tabs.store is mine
    assert App(settings=Settings(secret_key="k")).live.tabs.store is None


async def test_more_replicas_than_nats_has_nodes_is_a_503_for_sessions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A fresh server: the session bucket must be made here, not found from another test.
    process, url = start_nats_server(nats_server_path(), tmp_path)
    try:
        app = make_notes_app(url, kv_replicas=3)
        async with Client(app) as client:
            page = await client.get("/")  # a first visit needs no store
            assert page.status_code == 200
            # One server cannot hold three replicas: making the bucket fails, and says why.
            with caplog.at_level(logging.ERROR, logger="livepages.sessions"):
                assert error_status(await page.action("enter")) == 503
            assert "replicas > 1 not supported in non-clustered mode" in caplog.text
    finally:
        stop_nats_server(process)
