"""Which broker and session store an app runs on: ``Settings.nats_url`` switches to NATS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from livepages import App, Settings
from livepages.backends import nats_servers
from livepages.broker.memory import MemoryBroker
from livepages.broker.nats import NATSBroker
from livepages.sessions.memory import MemorySessionStore
from livepages.sessions.nats import NATSSessionStore
from livepages.sessions.session import SessionManager
from tests.fixtures.servers import ROOT

pytestmark = pytest.mark.anyio


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
        from livepages.testing import Client
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
        assert sessions.store._client is broker.client
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
        assert store._client is not None
        assert store._client.is_connected
    finally:
        await app.shutdown()
    assert store._client.is_closed


def test_no_sessions_means_no_store(nats_server: str) -> None:
    app = App(settings=Settings(secret_key="k", nats_url=nats_server))
    assert isinstance(app.broker, NATSBroker)
    assert app.sessions is None
