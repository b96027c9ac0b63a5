"""Tab state in NATS JetStream KV, and the registry in front of it, on a real nats-server.

Two registries on one bucket stand for two processes of one app.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from livepages.errors import ServiceUnavailable
from livepages.tabs import TabConflict, TabRegistry, TabStore, TabStoreError
from livepages.tabs.nats import NATSTabStore
from livepages.tabs.store import decode_state, decode_update, encode_state
from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server

pytestmark = pytest.mark.anyio

KEYS = [b"k" * 32]


def bucket() -> str:
    """A bucket name no other test uses."""
    return f"test_tabs_{uuid.uuid4().hex}"


def as_protocol(store: NATSTabStore) -> TabStore:
    return store  # mypy checks that the store implements the protocol


@pytest.fixture
async def store(nats_server: str) -> AsyncIterator[NATSTabStore]:
    made = NATSTabStore(nats_server, bucket=bucket(), grace=60)
    await made.start()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def processes(nats_server: str) -> AsyncIterator[tuple[TabRegistry, TabRegistry]]:
    """Two registries, each with its own store (connection) on one bucket."""
    name = bucket()
    one = TabRegistry(KEYS, 60, NATSTabStore(nats_server, bucket=name, grace=60))
    two = TabRegistry(KEYS, 60, NATSTabStore(nats_server, bucket=name, grace=60))
    await one.start()
    await two.start()
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def test_writes_are_checked_against_the_revision_they_read(store: NATSTabStore) -> None:
    tab = TabRegistry(KEYS, 60).issue()
    assert await store.get(tab) is None
    first = await store.put(tab, encode_state({"q": "a"}), 0)
    assert await store.get(tab) == (encode_state({"q": "a"}), first)
    with pytest.raises(TabConflict):
        await store.put(tab, encode_state({"q": "b"}), 0)  # it exists already
    second = await store.put(tab, encode_state({"q": "b"}), first)
    with pytest.raises(TabConflict):
        await store.put(tab, encode_state({"q": "c"}), first)  # stale
    assert second > first
    assert decode_state((await store.get(tab) or ((), 0))[0]) == {"q": "b"}  # type: ignore[arg-type]


async def test_the_grace_period_is_the_buckets_ttl(nats_server: str) -> None:
    short = NATSTabStore(nats_server, bucket=bucket(), grace=1.0)
    try:
        await short.put("t", encode_state({"q": 1}), 0)
        assert await short.get("t") is not None
        deadline = time.monotonic() + 5
        while await short.get("t") is not None:
            assert time.monotonic() < deadline, "the tab outlived the grace period"
            await asyncio.sleep(0.1)
    finally:
        await short.close()


async def test_a_tab_deleted_by_hand_is_empty_and_can_be_written_again(
    store: NATSTabStore, nats_server: str
) -> None:
    revision = await store.put("t", encode_state({"q": 1}), 0)
    client = await nats.connect(nats_server)
    try:
        kv = await client.jetstream().key_value(store._bucket.name)
        await kv.delete("t")  # as `nats kv del` would
    finally:
        await client.close()
    entry = await store.get("t")
    assert entry is not None
    assert decode_state(entry.state) == {}
    assert entry.revision > revision
    assert await store.put("t", encode_state({"q": 2}), entry.revision) > entry.revision


async def test_an_action_on_one_process_sees_and_changes_state_made_on_another(
    processes: tuple[TabRegistry, TabRegistry],
) -> None:
    a, b = processes
    tab_id = a.issue()
    on_a = await a.load(tab_id)
    on_a.state["query"] = "lamps"
    payload = await a.save(on_a)
    update = decode_update(payload)
    assert update is not None
    assert decode_state(update.state) == {"query": "lamps"}

    on_b = await b.load(tab_id)
    assert on_b.state == {"query": "lamps"}
    on_b.state["page"] = 2
    b_payload = await b.save(on_b)
    # A holds the tab (its stream is there): the refresh brings it B's state.
    a.refreshed(tab_id, b_payload)
    assert on_a.state == {"query": "lamps", "page": 2}
    assert await a.save(on_a) == b""  # nothing changed: nothing written, nothing to say


async def test_two_actions_racing_on_two_processes_merge_key_by_key(
    processes: tuple[TabRegistry, TabRegistry],
) -> None:
    a, b = processes
    tab_id = a.issue()
    first = await a.load(tab_id)
    first.state.update(query="lamps", page=1)
    await a.save(first)
    on_a, on_b = await a.load(tab_id), await b.load(tab_id)
    on_a.state["page"] = 2  # both read the same revision ...
    on_b.state["query"] = "desk lamps"
    await b.save(on_b)
    await a.save(on_a)  # ... so A's write loses the race, and is merged
    assert (await b.load(tab_id)).state == {"query": "desk lamps", "page": 2}


async def test_an_empty_state_is_never_written(processes: tuple[TabRegistry, TabRegistry]) -> None:
    a, _ = processes
    tab = await a.load(a.issue())
    assert await a.save(tab) == b""
    assert a.store is not None
    assert await a.store.get(tab.id) is None


async def test_an_open_tab_outlives_the_grace_period_and_a_closed_one_does_not(
    nats_server: str,
) -> None:
    name, grace = bucket(), 1.5
    registry = TabRegistry(KEYS, grace, NATSTabStore(nats_server, bucket=name, grace=grace))
    reader = NATSTabStore(nats_server, bucket=name, grace=grace)
    try:
        open_tab, closed_tab = await registry.load("open"), await registry.load("closed")
        for tab in (open_tab, closed_tab):
            tab.state["q"] = tab.id
            await registry.save(tab)
        registry.attach(open_tab)  # a stream is open here: the registry keeps it alive
        await asyncio.sleep(grace * 2.5)
        assert await reader.get("open") is not None
        assert await reader.get("closed") is None
        registry.detach(open_tab)
    finally:
        await registry.close()
        await reader.close()


async def test_nats_away_is_a_503_in_time_not_a_hang(tmp_path: Path) -> None:
    process, url = start_nats_server(nats_server_path(), tmp_path)
    registry = TabRegistry(KEYS, 60, NATSTabStore(url, bucket=bucket(), grace=60))
    try:
        await registry.start()
        tab = await registry.load(registry.issue())
        tab.state["q"] = 1
        stop_nats_server(process)
        # (A write already on its way when NATS goes waits for JetStream's ack timeout;
        # once the client has seen the connection go, every call fails at once.)
        await asyncio.sleep(0.5)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await registry.save(tab)
        with pytest.raises(ServiceUnavailable):
            await registry.load(tab.id)
        assert time.monotonic() - started < 0.5
    finally:
        stop_nats_server(process)
        await registry.close()


async def test_an_unreachable_server_is_a_store_error() -> None:
    store = NATSTabStore("nats://127.0.0.1:1", bucket=bucket(), connect_timeout=0.5)
    with pytest.raises(TabStoreError):
        await store.start()
