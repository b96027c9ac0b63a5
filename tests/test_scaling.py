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
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from livepages.testing import Client, DatastarEvent, LiveStream, LoadedPage
from tests.fixtures.cluster import (
    CROSSING,
    AppProcess,
    app_processes,
    post_on_a_reaches_b,
    session_on_a_is_valid_on_b,
    share_cookies,
    shown,
    sign_in,
)
from tests.fixtures.nats import nats_server_path, start_nats_server, stop_nats_server

pytestmark = pytest.mark.anyio


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
    await post_on_a_reaches_b(*pair, f"hello from A {uuid.uuid4().hex[:8]}")


async def test_a_session_made_on_a_is_valid_on_b(pair: tuple[AppProcess, AppProcess]) -> None:
    await session_on_a_is_valid_on_b(*pair, "ada")


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


async def search_on(client: Client, process: AppProcess, page: LoadedPage, query: str) -> int:
    """Call ``page``'s ``search`` action on ``process``, with the page's tab and token."""
    response = await client.http.post(
        process.url + "/filter/_action/search", json={"query": query}, headers=page.headers
    )
    return response.status_code


async def test_an_action_on_b_changes_tab_state_made_on_a(
    pair: tuple[AppProcess, AppProcess],
) -> None:
    a, b = pair
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        page = await on_a.get("/filter")
        share_cookies(on_a, on_b)  # one browser: its tab id is bound to its session
        async with page.stream() as stream:
            await stream.next_event()
            assert await search_on(on_a, a, page, "red shoes") == 200  # state made through A
            await stream.wait_for(lambda e: "red shoes" in e.elements, wait=CROSSING)
            # B sees the state A wrote, and changes it; A's stream shows the change.
            started = time.monotonic()
            assert await search_on(on_b, b, page, "red shoes, size 42") == 200
            patch = await stream.wait_for(lambda e: "size 42" in e.elements, wait=CROSSING)
            elapsed = time.monotonic() - started
    assert '<p id="query">red shoes, size 42</p>' in patch.elements
    assert elapsed < CROSSING


async def test_a_stream_that_moves_to_b_finds_its_tab_state(
    pair: tuple[AppProcess, AppProcess],
) -> None:
    a, b = pair
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        page = await on_a.get("/filter")
        assert await search_on(on_a, a, page, "lamps") == 200
        share_cookies(on_a, on_b)
        # The same page's stream, now served by B (A went away, say): B renders it
        # with the state A stored, not an empty one.
        moved = LoadedPage(on_b, page.url, page.response, page.tab, page.csrf, page.live_url)
        url = b.url + str(page.live_url)
        async with on_b.stream(url, headers=moved.headers) as stream:
            first = await stream.next_event()
    assert '<p id="query">lamps</p>' in first.elements


async def renders(client: Client, process: AppProcess) -> int:
    """How many renders ``process`` has made so far."""
    response = await client.http.get(process.url + "/stats")
    count: int = response.json()["renders"]
    return count


async def wait_for_renders(client: Client, process: AppProcess, at_least: int) -> None:
    deadline = time.monotonic() + RECOVERY
    while await renders(client, process) < at_least:
        assert time.monotonic() < deadline, f"{process} did not re-render its views"
        await asyncio.sleep(0.05)


#: How long a process may take to notice that NATS went away (its socket closes).
NOTICE = 0.5
#: How soon after NATS is back events flow again and every open view has re-rendered.
RECOVERY = 5.0


async def test_nats_going_away_and_back_under_open_streams(tmp_path: Path) -> None:
    binary = nats_server_path()
    nats, url = start_nats_server(binary, tmp_path)
    port = int(url.rsplit(":", 1)[1])
    key = f"faults-{uuid.uuid4().hex}"
    try:
        with app_processes(2, "tests.scaling_app", url, key, ready_path="/notes") as (a, b):
            async with AsyncExitStack() as stack:
                on_a = await stack.enter_async_context(Client(a.url))
                on_b = await stack.enter_async_context(Client(b.url))
                member = await stack.enter_async_context(Client(b.url))
                await sign_in(member, "ada")
                notes_a, board_b = await on_a.get("/notes"), await on_b.get("/board")
                views = {
                    "A": [await on_a.get("/board"), notes_a],
                    "B": [board_b, await on_b.get("/filter")],
                }
                streams = {}
                for side, pages in views.items():
                    for page in pages:
                        stream = await stack.enter_async_context(page.stream())
                        await stream.next_event()
                        streams[side, page.url] = stream
                before = {"A": await renders(on_a, a), "B": await renders(on_b, b)}

                stop_nats_server(nats)
                await asyncio.sleep(NOTICE)  # for both processes to see the connection go
                # Actions fail at once with a clear 503, instead of hanging.
                started = time.monotonic()
                failed = await board_b.action("bump")  # the count goes up; its event cannot
                assert time.monotonic() - started < 1.0
                # (a Datastar request gets its error as the page's _error signal)
                assert '"status":503' in failed.text
                assert "try again shortly" in failed.text
                # Guest pages still load; a signed-in visitor's page needs the session
                # store, so it is a 503 that says so.
                async with Client(a.url) as guest:
                    assert (await guest.get("/notes")).status_code == 200
                assert (await member.http.get("/notes")).status_code == 503

                nats, _ = start_nats_server(binary, tmp_path, port=port)
                # Within RECOVERY: every open view renders again, so B's board shows the
                # count whose event was lost while NATS was away ...
                await streams["B", board_b.url].wait_for(
                    lambda e: '<p id="count">1</p>' in e.elements, wait=RECOVERY
                )
                await wait_for_renders(on_a, a, before["A"] + len(views["A"]))
                await wait_for_renders(on_b, b, before["B"] + len(views["B"]))
                # ... and events cross processes again.
                text = f"back {uuid.uuid4().hex[:8]}"
                notes_b = await on_b.get("/notes")
                assert (await notes_b.action("post", {"text": text})).status_code == 200
                await streams["A", notes_a.url].wait_for(
                    lambda e: text in e.elements, wait=CROSSING
                )
                assert (await member.http.get("/notes")).status_code == 200
    finally:
        stop_nats_server(nats)
