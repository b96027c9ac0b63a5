"""The NATS KV presence backend against a real nats-server: two backends play two processes.

Each test gets buckets of its own on the shared ``nats_server``. A process that dies
without a word is played by writing its entry straight into the bucket and never
again: nothing deletes it, so only the TTL can take it away.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATSClient

from livepages import App, Member, Members, Page, PresenceChange, PresenceEvent, Settings
from livepages.broker.base import BrokerClosed
from livepages.presence import Entry
from livepages.presence.nats import _WRITE_BATCH, BUCKET, NATSPresence, bucket_name, entry_key
from livepages.presence.wire import encode_entry
from livepages.testing import Client
from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.anyio

#: Short, so that expiry tests are quick: heartbeats every 1/3 s.
TTL = 1.0
#: Long: anything that happens within a test's few seconds is not the TTL's doing.
LONG_TTL = 60.0

ADA = Member("s" + "a" * 32, "Ada")
BOB = Member("s" + "b" * 32, "Bob")


def bucket() -> str:
    """A bucket name no other test uses."""
    return f"test_presence_{uuid.uuid4().hex}"


class Heard:
    """The events that a backend (or an app's presence) hands its listener, to wait for."""

    def __init__(self, listen: Callable[[Callable[[PresenceEvent], None]], object]) -> None:
        self.events: asyncio.Queue[PresenceEvent] = asyncio.Queue()
        listen(self.events.put_nowait)

    async def next(self, wait: float = 5.0) -> PresenceEvent:
        return await asyncio.wait_for(self.events.get(), wait)

    def empty(self) -> bool:
        return self.events.empty()


@pytest.fixture
async def make(nats_server: str) -> AsyncIterator[Callable[..., Any]]:
    """Start backends on the test server; all closed after the test."""
    made: list[NATSPresence] = []

    async def start(name: str, ttl: float = LONG_TTL, **options: Any) -> NATSPresence:
        backend = NATSPresence(options.pop("server", nats_server), ttl=ttl, bucket=name, **options)
        made.append(backend)
        await backend.start()
        return backend

    yield start
    for backend in made:
        await backend.close()


@pytest.fixture
async def nc(nats_server: str) -> AsyncIterator[NATSClient]:
    client = await nats.connect(nats_server)
    yield client
    await client.close()


async def test_a_member_joins_and_leaves_on_the_other_process(make: Any) -> None:
    name = bucket()
    a, b = await make(name), await make(name)
    heard = Heard(b.listen)
    a.join("room", ADA)
    assert list(a.members("room")) == [ADA]  # at once where it joined
    assert await heard.next() == PresenceEvent("room", ADA, PresenceChange.JOINED)
    assert list(b.members("room")) == [ADA]
    a.leave("room", ADA.id)
    # The key's delete reaches B at once: the TTL (a minute) has nothing to do with it.
    assert await heard.next() == PresenceEvent("room", ADA, PresenceChange.LEFT)
    assert list(b.members("room")) == []


async def test_one_member_on_two_processes_counts_once(make: Any) -> None:
    name = bucket()
    a, b = await make(name), await make(name)
    heard = Heard(b.listen)
    a.join("room", ADA)
    b.join("room", ADA)
    assert (await heard.next()).change is PresenceChange.JOINED
    a.leave("room", ADA.id)
    await asyncio.sleep(0.3)
    assert heard.empty()
    assert list(b.members("room")) == [ADA]


async def test_a_process_started_later_loads_who_is_there(make: Any) -> None:
    name = bucket()
    a = await make(name)
    a.join("room", ADA)
    a.join("kitchen", BOB)
    late = await make(name)  # start() returns once the bucket's keys are in its roster
    waited = time.monotonic()
    while list(late.members("kitchen")) != [BOB]:  # its write may still be on its way
        assert time.monotonic() - waited < 5
        await asyncio.sleep(0.01)
    assert list(late.members("room")) == [ADA]


async def test_a_rename_reaches_the_other_process(make: Any) -> None:
    name = bucket()
    a, b = await make(name), await make(name)
    heard = Heard(b.listen)
    a.join("room", ADA)
    await heard.next()
    renamed = Member(ADA.id, "Ada Lovelace")
    a.join("room", renamed)
    assert await heard.next() == PresenceEvent("room", renamed, PresenceChange.RENAMED)


async def test_closing_withdraws_every_member_at_once(make: Any) -> None:
    name = bucket()
    a, b = await make(name), await make(name)
    heard = Heard(b.listen)
    a.join("room", ADA)
    a.join("room", BOB)
    await heard.next()
    await heard.next()
    await a.close()
    left = {(await heard.next()).member.id, (await heard.next()).member.id}
    assert left == {ADA.id, BOB.id}


@pytest.mark.parametrize("turns", [0, 1])
async def test_a_leave_just_before_closing_is_not_lost(make: Any, turns: int) -> None:
    name = bucket()
    a, b = await make(name), await make(name)
    heard = Heard(b.listen)
    a.join("room", ADA)
    await heard.next()
    a.leave("room", ADA.id)
    for _ in range(turns):  # one turn: the delete is on its way when the close cancels it
        await asyncio.sleep(0)
    await a.close()
    assert (await heard.next()).change is PresenceChange.LEFT


async def test_heartbeats_keep_a_member_past_the_ttl(make: Any) -> None:
    name = bucket()
    a, b = await make(name, ttl=TTL), await make(name, ttl=TTL)
    heard = Heard(b.listen)
    a.join("room", ADA)
    await heard.next()
    await asyncio.sleep(3 * TTL)
    assert heard.empty()
    assert list(b.members("room")) == [ADA]


async def test_a_process_that_stops_beating_loses_its_members_within_the_ttl(
    make: Any, nc: NATSClient
) -> None:
    name = bucket()
    b = await make(name, ttl=TTL)
    heard = Heard(b.listen)
    kv = await nc.jetstream().key_value(name)
    dead = "0123456789abcdef"  # a process that wrote once and died: nobody deletes its key
    written = time.monotonic()
    await kv.put(entry_key("room", dead, ADA.id), encode_entry(Entry("room", ADA, time.time())))
    assert await heard.next() == PresenceEvent("room", ADA, PresenceChange.JOINED)
    assert await heard.next(wait=2 * TTL) == PresenceEvent("room", ADA, PresenceChange.LEFT)
    assert time.monotonic() - written <= TTL
    assert list(b.members("room")) == []


async def test_a_dead_processs_member_is_not_loaded_past_its_time(
    make: Any, nc: NATSClient
) -> None:
    name = bucket()
    await make(name, ttl=TTL)  # makes the bucket
    kv = await nc.jetstream().key_value(name)
    written = time.monotonic()
    await kv.put(entry_key("room", "0" * 16, ADA.id), encode_entry(Entry("room", ADA, 0.0)))
    await asyncio.sleep(TTL / 2)
    late = await make(name, ttl=TTL)
    heard = Heard(late.listen)
    assert list(late.members("room")) == [ADA]
    # Loaded with its age: it goes by the TTL after it was written, not after `late` started.
    assert (await heard.next(wait=2 * TTL)).change is PresenceChange.LEFT
    assert time.monotonic() - written <= TTL


async def test_prefixes_keep_apps_apart(make: Any) -> None:
    shop, blog = await make(bucket_name(f"shop{uuid.uuid4().hex}")), await make(bucket())
    shop.join("room", ADA)
    await asyncio.sleep(0.3)
    assert list(blog.members("room")) == []


def test_bucket_names_follow_the_prefix() -> None:
    assert bucket_name("") == BUCKET
    assert bucket_name("shop").startswith(f"{BUCKET}_shop_")
    assert bucket_name("shop.eu") != bucket_name("shop_eu")  # alike, yet two buckets
    assert set(bucket_name("a.b-c*>")) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-")


async def test_two_apps_with_two_prefixes_on_one_nats_do_not_see_each_other(
    nats_server: str,
) -> None:
    def app(prefix: str) -> App:
        made = App(
            settings=Settings(nats_url=nats_server, subject_prefix=prefix, secret_key=prefix * 8)
        )

        @made.page("/rooms/{room}")
        class Room(Page):
            room: str
            presence = "room.{room}"

            def render(self, online: Members) -> str:
                return f"<p>{len(online)}</p>"

        return made

    suffix = uuid.uuid4().hex[:8]
    shop, blog = app(f"shop{suffix}"), app(f"blog{suffix}")
    async with Client(shop) as on_shop, Client(blog):
        page = await on_shop.get("/rooms/lobby")
        async with page.stream() as stream:
            await stream.next_event()
            await asyncio.sleep(0.3)
            assert len(shop.presence.members("room.lobby")) == 1
            assert len(blog.presence.members("room.lobby")) == 0


async def test_the_bucket_takes_the_ttl_of_the_newest_start(make: Any, nc: NATSClient) -> None:
    name = bucket()
    await make(name, ttl=30.0)
    await make(name, ttl=TTL)
    status = await (await nc.jetstream().key_value(name)).status()
    assert status.ttl == pytest.approx(TTL)


async def test_entries_that_do_not_decode_are_ignored(
    make: Any, nc: NATSClient, caplog: pytest.LogCaptureFixture
) -> None:
    name = bucket()
    b = await make(name)
    heard = Heard(b.listen)
    kv = await nc.jetstream().key_value(name)
    await kv.put(entry_key("room", "0" * 16, ADA.id), b"\xff not msgpack")
    # A well-formed entry under a key that does not match it: refused too.
    await kv.put(entry_key("elsewhere", "0" * 16, ADA.id), encode_entry(Entry("room", ADA, 0.0)))
    await kv.put("not.a.presence.key", b"")
    await kv.put(entry_key("room", "0" * 16, BOB.id), encode_entry(Entry("room", BOB, 0.0)))
    assert (await heard.next()).member == BOB  # the good one after the bad ones
    assert heard.empty()
    assert "ignoring the entry" in caplog.text
    assert "its key does not match it" in caplog.text


async def test_without_nats_at_start_it_keeps_trying(
    make: Any, nats_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "livepages.presence")
    name = bucket()
    client = await nats.connect(nats_server)
    ready = False

    def shared() -> NATSClient:
        if not ready:
            raise BrokerClosed("the broker is not started")
        return client

    try:
        a = await make(name, ttl=TTL, server=shared)
        assert "presence: NATS KV bucket" in caplog.text
        a.join("room", ADA)
        assert list(a.members("room")) == [ADA]  # its own members show meanwhile
        ready = True
        b = await make(name)
        heard = Heard(b.listen)
        assert (await heard.next(wait=2 * TTL)).member == ADA  # after a heartbeat
        assert a.connected
    finally:
        await client.close()


def test_the_ttl_must_be_positive() -> None:
    for ttl in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive number of seconds"):
            NATSPresence(ttl=ttl)
    backend = NATSPresence(ttl=9.0)
    assert (backend.heartbeat, backend.stale_after) == (3.0, 7.5)


async def test_members_come_back_after_nats_restarts(tmp_path: Path) -> None:
    process, url = start_nats_server(nats_server_path(), tmp_path)
    port = int(url.rsplit(":", 1)[1])
    name = bucket()
    a = NATSPresence(url, ttl=TTL, bucket=name)
    b = NATSPresence(url, ttl=TTL, bucket=name)
    try:
        await a.start()
        await b.start()
        heard = Heard(b.listen)
        a.join("room", ADA)
        assert (await heard.next()).change is PresenceChange.JOINED
        stop_nats_server(process)
        # Unheard for the TTL: B drops Ada (it cannot tell a dead process from a lost NATS).
        assert (await heard.next(wait=3 * TTL)).change is PresenceChange.LEFT
        process, _ = start_nats_server(nats_server_path(), tmp_path, port=port)
        # Back: A's next heartbeats reach B's watcher again.
        assert (await heard.next(wait=15)).change is PresenceChange.JOINED
        a.join("room", BOB)
        assert await heard.next(wait=5) == PresenceEvent("room", BOB, PresenceChange.JOINED)
    finally:
        await a.close()
        await b.close()
        stop_nats_server(process)


async def test_an_app_that_shuts_down_withdraws_its_members_at_once(nats_server: str) -> None:
    """Through the app's lifecycle: presence stops before the broker's shared connection."""

    def app() -> App:
        settings = Settings(
            nats_url=nats_server, subject_prefix=prefix, presence_ttl=LONG_TTL, secret_key="k" * 32
        )
        made = App(settings=settings)

        @made.page("/rooms/{room}")
        class Room(Page):
            room: str
            presence = "room.{room}"

            def render(self, online: Members) -> str:
                return f"<p>{len(online)}</p>"

        return made

    prefix = f"down{uuid.uuid4().hex[:12]}"
    leaving, staying = app(), app()
    async with Client(staying):
        heard = Heard(staying.presence.listen)
        async with Client(leaving) as client:
            page = await client.get("/rooms/lobby")
            stream = await page.stream().open()
            assert (await heard.next()).change is PresenceChange.JOINED
            await stream.close()
            assert (await heard.next()).change is PresenceChange.LEFT
            await (await page.stream().open()).next_event()
            assert (await heard.next()).change is PresenceChange.JOINED
        # The client's exit shut the app down with the stream still open.
        assert (await heard.next()).change is PresenceChange.LEFT


async def test_more_members_than_one_write_batch_all_arrive(make: Any) -> None:
    name = bucket()
    a, b = await make(name), await make(name)
    members = [Member(f"t{n:032x}", f"m{n}") for n in range(_WRITE_BATCH + 100)]
    for member in members:
        a.join("crowd", member)
    waited = time.monotonic()
    while len(b.members("crowd")) < len(members):
        assert time.monotonic() - waited < 10
        await asyncio.sleep(0.05)
    assert b.members("crowd").ids == {member.id for member in members}


async def test_with_no_nats_there_the_app_still_starts(caplog: pytest.LogCaptureFixture) -> None:
    backend = NATSPresence(f"nats://127.0.0.1:{free_port()}", ttl=TTL, timeout=0.2)
    try:
        await backend.start()  # logged, not raised: it tries again every heartbeat
        assert "presence: NATS KV bucket 'livepages_presence' is unavailable" in caplog.text
        assert not backend.connected
        backend.join("room", ADA)
        assert list(backend.members("room")) == [ADA]
    finally:
        await backend.close()
