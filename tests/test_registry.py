"""Processes on one NATS whose secret keys disagree refuse to start: real processes.

Each test runs ``tests.scaling_app`` processes on the session's nats-server, configured
by the environment alone, under a subject prefix of its own (so it is an app of its own
in the registry). A process whose keys and a running one's do not open each other's
cookies must exit at start-up saying so; one that agrees must serve.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import nats
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages import App, Settings, StartupRefused
from livepages.keys import Keys
from livepages.registry import BUCKET, ProcessEntry, ProcessRegistry, compatible
from tests.fixtures.cluster import AppProcess
from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server

pytestmark = pytest.mark.anyio


class Fleet:
    """The processes of one app (one subject prefix) that a test starts."""

    def __init__(self, nats_url: str, **env: str) -> None:
        self.env = {
            "LIVEPAGES_NATS_URL": nats_url,
            "LIVEPAGES_SUBJECT_PREFIX": f"t{uuid.uuid4().hex[:12]}",
            **env,
        }
        self.processes: list[AppProcess] = []

    def start(self, key: str, previous: str = "") -> AppProcess:
        """A process with secret ``key`` (and ``previous`` keys, comma-separated), serving."""
        env = {**self.env, "LIVEPAGES_SECRET_KEY": key, "LIVEPAGES_PREVIOUS_SECRET_KEYS": previous}
        process = AppProcess("tests.scaling_app", env, ready_path="/notes")
        self.processes.append(process)
        process.start()
        return process

    def refused(self, key: str, previous: str = "") -> str:
        """Start a process that must exit at start-up; what it said."""
        with pytest.raises(RuntimeError, match="exited") as failed:
            self.start(key, previous)
        return str(failed.value)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def fleet(nats_server: str) -> Iterator[Fleet]:
    made = Fleet(nats_server)
    yield made
    made.stop()


def test_a_process_with_another_key_refuses_to_start(fleet: Fleet) -> None:
    first = fleet.start("key-one")
    message = fleet.refused("key-two")
    assert "do not open each other's cookies" in message
    assert first.process is not None
    assert f"pid {first.process.pid} on " in message
    assert "key-one" not in message
    assert "key-two" not in message
    fleet.start("key-one")  # the same key: welcome


def test_a_key_rotation_in_two_steps_passes_and_in_one_step_is_refused(fleet: Fleet) -> None:
    old = fleet.start("old")
    # One step, while an old process runs: its cookies would not open on the old one.
    assert "do not open each other's cookies" in fleet.refused("new", previous="old")
    # Step 1, rolled out: the new key is accepted everywhere, the old one still signs.
    step_one = fleet.start("old", previous="new")
    old.stop()
    # Step 2, rolled out beside step 1: the new key signs, the old one still opens.
    fleet.start("new", previous="old")
    step_one.stop()
    fleet.start("new")  # the old key dropped, once no process signs with it


def test_a_process_that_stopped_leaves_no_entry(fleet: Fleet) -> None:
    fleet.start("key-one").stop()  # SIGTERM: its shutdown withdraws the entry
    fleet.start("key-two")


def test_a_killed_process_counts_until_its_entry_ages_out(nats_server: str) -> None:
    ttl = 1.5
    fleet = Fleet(nats_server, LIVEPAGES_NATS_REGISTRY_TTL=str(ttl))
    try:
        killed = fleet.start("key-one")
        assert killed.process is not None
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait()
        gone = time.monotonic()
        assert "do not open each other's cookies" in fleet.refused("key-two")
        # The entry was renewed at most a third of the TTL before the kill; it is gone
        # by the TTL after it (and a little for the server's expiry timer).
        time.sleep(max(0.0, gone + ttl + 0.5 - time.monotonic()))
        fleet.start("key-two")
    finally:
        fleet.stop()


def test_apps_under_other_subject_prefixes_are_other_apps(nats_server: str) -> None:
    one, two = Fleet(nats_server), Fleet(nats_server)
    try:
        one.start("key-one")
        two.start("key-two")
    finally:
        one.stop()
        two.stop()


# -- in one process -------------------------------------------------------------------------


async def test_on_nats_without_a_secret_key_the_app_refuses_to_start(nats_server: str) -> None:
    app = App(settings=Settings(nats_url=nats_server))
    with pytest.raises(StartupRefused, match=r"Settings\.secret_key is not set"):
        await app.startup()
    await app.shutdown()
    # In debug mode the development secret is shared by the processes of one folder.
    debug = App(settings=Settings(nats_url=nats_server, debug=True, subject_prefix="dbg"))
    await debug.startup()
    await debug.shutdown()


async def test_the_registry_holds_fingerprints_never_keys(nats_server: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    settings = Settings(
        secret_key="the-key", previous_secret_keys=("an-old-key",), nats_url=nats_server
    )
    app = App(settings=msgspec.structs.replace(settings, subject_prefix=prefix))
    registry = app.lifecycle.guards[0]
    assert isinstance(registry, ProcessRegistry)
    await app.startup()
    client = await nats.connect(nats_server)
    try:
        kv = await client.jetstream().key_value(BUCKET)
        raw = (await kv.get(registry.key)).value or b""
        assert b"the-key" not in raw
        assert b"an-old-key" not in raw
        entry = msgspec.msgpack.decode(raw, type=ProcessEntry)
        assert [entry.current, *entry.previous] == Keys("the-key", ("an-old-key",)).fingerprints()
        assert entry.ttl == settings.nats_registry_ttl == 30.0  # the documented default
    finally:
        await app.shutdown()
        await client.close()
    # Withdrawn at shutdown.
    client = await nats.connect(nats_server)
    try:
        kv = await client.jetstream().key_value(BUCKET)
        with pytest.raises(nats.js.errors.KeyNotFoundError):
            await kv.get(registry.key)
    finally:
        await client.close()


async def test_the_entry_is_renewed_within_the_ttl(nats_server: str) -> None:
    # An entry that counts 1.5 s after each renewal: still counts after three times that.
    prefix = f"t{uuid.uuid4().hex[:12]}"
    settings = Settings(
        secret_key="k", nats_url=nats_server, subject_prefix=prefix, nats_registry_ttl=1.5
    )
    app = App(settings=settings)
    registry = app.lifecycle.guards[0]
    assert isinstance(registry, ProcessRegistry)
    await app.startup()
    client = await nats.connect(nats_server)
    try:
        other = ProcessRegistry(lambda: client, registry.entry, app=prefix)
        await asyncio.sleep(4.5)
        assert [e.pid for e in await other.others()] == [registry.entry.pid]
    finally:
        await app.shutdown()
        await client.close()


def entry(current: str, *previous: str) -> ProcessEntry:
    return ProcessEntry(current=current, previous=previous)


@pytest.mark.parametrize(
    ("one", "other", "agree"),
    [
        (entry("a"), entry("a"), True),
        (entry("a"), entry("b"), False),
        (entry("a", "b"), entry("a"), True),  # step 1 beside the old
        (entry("b", "a"), entry("a", "b"), True),  # step 2 beside step 1
        (entry("b", "a"), entry("a"), False),  # step 2 beside the old: b opens not on it
        (entry("b"), entry("a", "b"), False),  # the old key dropped too soon
    ],
)
def test_compatible(one: ProcessEntry, other: ProcessEntry, agree: bool) -> None:
    assert compatible(one, other) is agree
    assert compatible(other, one) is agree


async def test_a_registry_nats_cannot_keep_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # As for the session store: three replicas on one server cannot be made (on a
    # server of its own, where no test made the bucket before). The app starts (its
    # session requests answer 503) and says it could not check the keys.
    process, url = start_nats_server(nats_server_path(), tmp_path)
    app = App(settings=Settings(secret_key="k", nats_url=url, nats_kv_replicas=3))
    try:
        with caplog.at_level(logging.ERROR, logger="livepages"):
            await app.startup()
        assert "could not check the other processes' secret keys" in caplog.text
        assert "replicas > 1 not supported" in caplog.text
    finally:
        await app.shutdown()
        stop_nats_server(process)


@given(st.binary(max_size=256))
def test_an_entry_from_the_registry_decodes_or_fails_cleanly(data: bytes) -> None:
    # Entries come from other processes (or from whoever can write the bucket).
    try:
        decoded = msgspec.msgpack.decode(data, type=ProcessEntry)
    except msgspec.DecodeError:
        return
    assert isinstance(decoded, ProcessEntry)
