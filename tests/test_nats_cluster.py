"""A three-node NATS cluster, configured as docs/scaling.md shows, under two app processes.

Each node runs the doc's configuration block itself (``tests.fixtures.docblocks``),
with its addresses changed to free ports of 127.0.0.1, its ``store_dir`` to a folder
of its own and ``NATS_NAME`` set in its environment. Process A is given node 1's URL,
process B nodes 2 and 3 (comma-separated), so they are never on the same node, and both
``LIVEPAGES_NATS_KV_REPLICAS=3``: events cross the cluster's routes, and sessions live
in a bucket replicated on the three nodes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import nats
import nats.js.errors
import pytest

from livepages.testing import Client
from tests.fixtures.cluster import (
    AppProcess,
    post_on_a_reaches_b,
    session_on_a_is_valid_on_b,
    sign_in,
)
from tests.fixtures.docblocks import doc_block, replaced
from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.anyio

NODES = 3
#: What "at once" means across processes and nodes.
#: How long the nodes may take to elect a JetStream leader (about 1 s here).
ELECTION = 10.0


def node_config(node: int, routes: list[int], directory: str) -> str:
    """The doc's configuration for node ``node`` (1-based) of a cluster on ``routes``."""
    return replaced(
        doc_block("scaling.md", "conf"),
        {
            "0.0.0.0:6222": f"127.0.0.1:{routes[node - 1]}",
            "/var/lib/nats": directory,
            **{f"nats-{n}.internal:6222": f"127.0.0.1:{routes[n - 1]}" for n in (1, 2, 3)},
        },
    )


async def jetstream_ready(url: str, deadline: float) -> None:
    """Wait until the cluster has a JetStream leader (``account_info`` answers)."""
    client = await nats.connect(url)
    try:
        while True:
            try:
                await client.jetstream(timeout=1).account_info()
                return
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
    finally:
        await client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The client URLs of three nodes with routes and JetStream, a leader elected."""
    binary = nats_server_path()
    routes = [free_port() for _ in range(NODES)]
    with ExitStack() as stack:
        urls = []
        started = time.monotonic()
        for node in range(1, NODES + 1):
            directory = tmp_path_factory.mktemp(f"nats-{node}")
            config = directory / "nats.conf"
            config.write_text(node_config(node, routes, str(directory / "jetstream")))
            process, url = start_nats_server(
                binary, directory, config=config, env={"NATS_NAME": f"nats-{node}"}
            )
            stack.callback(stop_nats_server, process)
            urls.append(url)
        asyncio.run(jetstream_ready(urls[0], started + ELECTION))
        yield urls


@pytest.fixture(scope="module")
def pair(cluster: list[str]) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Process A on node 1, process B on node 2 or 3: one app, three replicas for sessions."""
    shared = {
        "LIVEPAGES_SECRET_KEY": f"cluster-{uuid.uuid4().hex}",
        "LIVEPAGES_NATS_KV_REPLICAS": "3",
    }
    a = AppProcess("tests.scaling_app", {**shared, "LIVEPAGES_NATS_URL": cluster[0]}, "/notes")
    b_url = ",".join(cluster[1:])
    b = AppProcess("tests.scaling_app", {**shared, "LIVEPAGES_NATS_URL": b_url}, "/notes")
    with ExitStack() as stack:
        for process in (a, b):
            stack.callback(process.stop)
            process.start()
        yield a, b


async def test_an_action_on_a_patches_a_stream_on_b(pair: tuple[AppProcess, AppProcess]) -> None:
    await post_on_a_reaches_b(*pair, f"across the cluster {uuid.uuid4().hex[:8]}")


async def test_a_session_made_on_a_is_valid_on_b(pair: tuple[AppProcess, AppProcess]) -> None:
    await session_on_a_is_valid_on_b(*pair, "ada")


async def test_the_session_bucket_has_a_replica_on_every_node(
    pair: tuple[AppProcess, AppProcess], cluster: list[str]
) -> None:
    async with Client(pair[0].url) as client:
        await sign_in(client, "grace")  # the bucket exists once a session was written
    connection = await nats.connect(cluster[2])
    try:
        status = await (await connection.jetstream().key_value("livepages_sessions")).status()
    finally:
        await connection.close()
    info = status.stream_info
    assert info.config.num_replicas == 3
    assert info.cluster is not None
    followers = [replica.name for replica in info.cluster.replicas or []]
    assert len(followers) == 2
    assert {info.cluster.leader, *followers} == {"nats-1", "nats-2", "nats-3"}
