"""An app on a secured NATS, configured by settings alone: TLS, credentials, a name.

Every server here is a real nats-server started on a config file made by the test
(``tests.fixtures.nats_secure``): TLS with a CA and certificates generated for the test,
NATS's decentralised auth with an operator, an account and a user's ``.creds`` file,
and a user with a password. Each refusal must fail the app's start-up at once with a
message that says what is wrong, not hang until a timeout.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from livepages import App, Event, Page, Redirect, Session, Settings, action, on, redirect
from livepages.backends import nats_options
from livepages.broker.base import BrokerError
from livepages.broker.nats import NATSBroker
from livepages.sessions.nats import NATSSessionStore
from livepages.testing import Client
from tests.fixtures.nats_secure import (
    Credentials,
    TLSFiles,
    make_credentials,
    make_tls_files,
    secure_nats_server,
)
from tests.fixtures.servers import ROOT, free_port

pytestmark = pytest.mark.anyio

#: The broker's default connect timeout: a refusal must come well before it, a hang never.
CONNECT_TIMEOUT = 5.0


@dataclass
class Pinged(Event, subject="pinged"):
    """Something happened."""


def make_app(settings: Settings) -> App:
    """A page with a session, an event and a sign-in, all through NATS."""
    app = App(settings=settings, sessions=True)
    pings = [0]

    @app.page("/")
    @on(Pinged)
    class Home(Page):
        def render(self, session: Session[Any]) -> str:
            return f'<p id="who">{session.user_id or "guest"}</p><p>{pings[0]}</p>'

        @action
        async def ping(self) -> None:
            pings[0] += 1
            await app.publish(Pinged())

        @action
        async def enter(self, session: Session[Any]) -> Redirect:
            await session.sign_in("ada")
            return redirect("/")

    return app


async def serves_over_nats(app: App) -> None:
    """Sign in (a KV write), read the session back (a KV read) and publish an event."""
    async with Client(app) as client:
        page = await client.get("/")
        assert (await page.action("enter")).status_code == 200
        page = await client.get("/")
        assert '<p id="who">ada</p>' in page.html
        async with page.stream() as stream:
            await stream.next_event()
            assert (await page.action("ping")).status_code == 200
            await stream.next_event()  # the event came back through NATS: a render


async def refused(settings: Settings, reason: str) -> str:
    """The app's start-up fails with ``reason`` in its message, before the timeout."""
    app = make_app(settings)
    with anyio.fail_after(CONNECT_TIMEOUT), pytest.raises(BrokerError, match=reason) as failed:
        await app.startup()
    await app.shutdown()
    return str(failed.value)


# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TLSFiles]]:
    """A nats-server that speaks TLS only and verifies its clients' certificates."""
    directory = tmp_path_factory.mktemp("nats-tls")
    files = make_tls_files(directory)
    config = (
        "tls {\n"
        f'  cert_file: "{files.server_cert}"\n'
        f'  key_file: "{files.server_key}"\n'
        f'  ca_file: "{files.ca}"\n'
        "  verify: true\n"
        "}\n"
    )
    with secure_nats_server(directory, config) as url:
        yield url, files


def tls_settings(url: str, files: TLSFiles, **overrides: Any) -> Settings:
    values = {
        "nats_url": url,
        "nats_tls_ca": str(files.ca),
        "nats_tls_cert": str(files.client_cert),
        "nats_tls_key": str(files.client_key),
        **overrides,
    }
    return Settings(secret_key="k", **values)


async def test_with_the_ca_and_a_client_certificate_the_app_runs_over_tls(
    tls: tuple[str, TLSFiles],
) -> None:
    url, files = tls
    await serves_over_nats(make_app(tls_settings(url, files)))
    # tls:// says so in the URL: the same.
    await serves_over_nats(make_app(tls_settings(url.replace("nats://", "tls://"), files)))


async def test_without_the_ca_the_servers_certificate_is_not_trusted(
    tls: tuple[str, TLSFiles],
) -> None:
    url, files = tls
    await refused(tls_settings(url, files, nats_tls_ca=None), "certificate is not trusted")


async def test_without_a_client_certificate_the_server_refuses(
    tls: tuple[str, TLSFiles],
) -> None:
    url, files = tls
    settings = tls_settings(url, files, nats_tls_cert=None, nats_tls_key=None)
    await refused(settings, "requires a client certificate")


# -- credentials ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Credentials]]:
    """A nats-server in operator mode: only users of its account's JWTs get in."""
    directory = tmp_path_factory.mktemp("nats-creds")
    credentials = make_credentials(directory)
    with secure_nats_server(directory, credentials.server_config()) as url:
        yield url, credentials


async def test_a_creds_file_lets_the_app_in(operator: tuple[str, Credentials]) -> None:
    url, credentials = operator
    settings = Settings(secret_key="k", nats_url=url, nats_credentials=str(credentials.creds))
    await serves_over_nats(make_app(settings))


@pytest.mark.parametrize("creds", ["forged", "none"])
async def test_a_wrong_or_missing_creds_file_is_refused_at_once(
    operator: tuple[str, Credentials], creds: str
) -> None:
    url, credentials = operator
    path = str(credentials.forged_creds) if creds == "forged" else None
    settings = Settings(secret_key="k", nats_url=url, nats_credentials=path)
    await refused(settings, "refused this client's credentials")


async def test_a_given_broker_leaves_the_store_its_own_secured_connection(
    operator: tuple[str, Credentials],
) -> None:
    # App(broker=...) and sessions on nats_url: the store connects by itself, with the
    # same credentials, under its own name.
    url, credentials = operator
    settings = Settings(secret_key="k", nats_url=url, nats_credentials=str(credentials.creds))
    broker = NATSBroker.from_options(nats_options(settings))
    app = App(settings=settings, broker=broker, sessions=True)
    assert app.sessions is not None
    store = app.sessions.store
    assert isinstance(store, NATSSessionStore)
    await app.startup()
    try:
        await store.start()
        assert store.client.options["name"] == "livepages-sessions"
        assert store.client.is_connected
    finally:
        await app.shutdown()


def test_the_refusal_stops_a_real_process_at_start_up(
    operator: tuple[str, Credentials],
) -> None:
    url, credentials = operator
    env = {
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
        "LIVEPAGES_NATS_URL": url,
        "LIVEPAGES_NATS_CREDENTIALS": str(credentials.forged_creds),
        "LIVEPAGES_SECRET_KEY": "k",
    }
    command = [sys.executable, "-m", "tests.scaling_app", str(free_port())]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode != 0
    assert "refused this client's credentials" in result.stderr, result.stderr


# -- a user and a password in the URL -------------------------------------------------------


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("nats-password")
    with secure_nats_server(directory, "authorization { user: app, password: s3cret }\n") as url:
        yield url


async def test_a_user_and_password_in_the_url(password_server: str) -> None:
    good = password_server.replace("nats://", "nats://app:s3cret@")
    await serves_over_nats(make_app(Settings(secret_key="k", nats_url=good)))
    bad = password_server.replace("nats://", "nats://app:wrong@")
    message = await refused(Settings(secret_key="k", nats_url=bad), "refused this client's")
    assert "nats://app:***@127.0.0.1" in message  # the password is not in the message
    assert "wrong" not in message


# -- settings -------------------------------------------------------------------------------


def test_the_options_come_from_the_environment(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path)
    creds = tmp_path / "app.creds"
    creds.write_text("not read until connecting")
    environ = {
        "LIVEPAGES_NATS_URL": "tls://a:4222,tls://b:4222",
        "LIVEPAGES_NATS_CREDENTIALS": str(creds),
        "LIVEPAGES_NATS_TLS_CA": str(files.ca),
        "LIVEPAGES_NATS_TLS_CERT": str(files.client_cert),
        "LIVEPAGES_NATS_TLS_KEY": str(files.client_key),
        "LIVEPAGES_NATS_NAME": "shop-web-3",
        "LIVEPAGES_NATS_KV_REPLICAS": "3",
    }
    settings = Settings.from_env(environ)
    assert settings.nats_kv_replicas == 3
    options = nats_options(settings)
    assert options.servers == ("tls://a:4222", "tls://b:4222")
    assert options.name == "shop-web-3"
    assert options.credentials == creds
    assert options.tls is not None
    assert options.tls.verify_mode.name == "CERT_REQUIRED"
    app = App(settings=settings, sessions=True)
    assert isinstance(app.sessions and app.sessions.store, NATSSessionStore)
    assert app.sessions is not None
    assert app.sessions.store.replicas == 3  # type: ignore[attr-defined]


def test_by_default_the_connection_is_plain_and_named_livepages() -> None:
    options = nats_options(Settings(nats_url="nats://a:4222"))
    assert options.name == "livepages"
    assert options.credentials is None
    assert options.tls is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nats_credentials": "/nonexistent/app.creds"}, "nats_credentials: no file at"),
        ({"nats_tls_ca": "/nonexistent/ca.pem"}, "nats_tls_ca: no file at"),
        ({"nats_tls_key": "CA"}, "nats_tls_key is set without nats_tls_cert"),
        ({"nats_tls_cert": "CA"}, "cannot load"),  # a CA file holds no private key
        ({"nats_kv_replicas": 0}, "nats_kv_replicas must be 1 to 5"),
    ],
)
def test_a_bad_option_is_an_error_when_the_app_is_made(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    files = make_tls_files(tmp_path)
    values: dict[str, Any] = {k: str(files.ca) if v == "CA" else v for k, v in overrides.items()}
    with pytest.raises(ValueError, match=message):
        App(settings=Settings(secret_key="k", nats_url="nats://127.0.0.1:1", **values))


# -- KV replicas --------------------------------------------------------------------------


async def test_kv_replicas_reach_the_server(
    nats_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    # One server cannot keep three copies: the server says so, so the number got there.
    bucket = f"test_replicas_{uuid.uuid4().hex}"
    store = NATSSessionStore(nats_server, bucket=bucket, replicas=3)
    try:
        with pytest.raises(Exception, match=r"(?i)replica"):
            await store.start()
    finally:
        await store.close()
    # An existing bucket with another count is used as it is, and that is logged.
    made = NATSSessionStore(nats_server, bucket=bucket, replicas=1)
    again = NATSSessionStore(nats_server, bucket=bucket, replicas=3)
    try:
        await made.start()
        with caplog.at_level(logging.WARNING, logger="livepages.nats"):
            await again.start()
        assert f"the KV bucket {bucket!r} has 1 replica(s), not 3" in caplog.text
    finally:
        await made.close()
        await again.close()
