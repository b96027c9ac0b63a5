"""Two app processes and one NATS, as real subprocesses: any process serves any request.

Each process runs ``tests.scaling_app``, configured only by ``LIVEPAGES_NATS_URL`` and a
shared ``LIVEPAGES_SECRET_KEY``: events cross processes on core NATS, sessions live in
JetStream KV. The clients are ``livepages.testing.Client`` over HTTP, one per process,
sharing cookies as one browser behind a load balancer would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

from livepages.testing import Client, DatastarEvent, LiveStream
from tests.fixtures.cluster import AppProcess, app_processes, share_cookies, shown, sign_in

pytestmark = pytest.mark.anyio

#: What "at once" means across processes.
CROSSING = 1.0


@pytest.fixture(scope="module")
def pair(nats_server: str) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Processes A and B of one app on the session's nats-server."""
    key = f"scaling-{uuid.uuid4().hex}"
    with app_processes(2, "tests.scaling_app", nats_server, key, ready_path="/notes") as procs:
        a, b = procs
        yield a, b


def received(stream: LiveStream) -> list[DatastarEvent]:
    """The events a stream has received and nobody has read yet."""
    events = []
    while not stream.events.empty():
        event = stream.events.get_nowait()
        if not event.comment:
            events.append(event)
    return events


async def test_an_action_on_a_patches_a_stream_on_b(pair: tuple[AppProcess, AppProcess]) -> None:
    a, b = pair
    text = f"hello from A {uuid.uuid4().hex[:8]}"
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        page_a, page_b = await on_a.get("/notes"), await on_b.get("/notes")
        async with page_b.stream() as stream:
            await stream.next_event()  # B's first render: its subscriptions are ready
            started = time.monotonic()
            assert (await page_a.action("post", {"text": text})).status_code == 200
            patch = await stream.wait_for(lambda event: text in event.elements, wait=CROSSING)
            elapsed = time.monotonic() - started
    assert patch.elements == f'<p id="note">{text}</p>'
    assert elapsed < CROSSING


async def test_a_session_made_on_a_is_valid_on_b(pair: tuple[AppProcess, AppProcess]) -> None:
    a, b = pair
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        await sign_in(on_a, "ada")
        assert shown(await on_a.get("/notes"), "who") == "ada"
        share_cookies(on_a, on_b)
        assert shown(await on_b.get("/notes"), "who") == "ada"


async def test_signing_out_on_a_ends_the_stream_on_b(pair: tuple[AppProcess, AppProcess]) -> None:
    a, b = pair
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        await sign_in(on_a, "grace")
        share_cookies(on_a, on_b)
        page_b = await on_b.get("/notes")
        assert shown(page_b, "who") == "grace"
        async with page_b.stream() as stream:
            await stream.next_event()
            page_a = await on_a.get("/notes")  # the signed-in session's CSRF token
            started = time.monotonic()
            assert (await page_a.action("sign_out")).status_code == 200
            await asyncio.wait_for(stream.ended.wait(), CROSSING)
            elapsed = time.monotonic() - started
            last = received(stream)[-1]
        # Sent to closed_url (the sign-in URL, "/", by default), then ended.
        assert last.type == "datastar-patch-elements"
        assert 'window.location.href = "/"' in last.elements
        assert elapsed < CROSSING
        share_cookies(on_a, on_b)
        assert shown(await on_b.get("/notes"), "who") == "guest"
