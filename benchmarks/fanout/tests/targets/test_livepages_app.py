"""The livepages target serves the harness's contract: GET /stream, POST /change."""

from __future__ import annotations

from html import escape

import pytest

from benchmarks.fanout.page import PAGE_ENV, PageName, find_counter, viewer_name
from benchmarks.fanout.targets.livepages_app import (
    Changed,
    create_app,
    create_nats_app,
    create_per_viewer_app,
    create_personal_app,
)
from livepages import App
from livepages.testing import Client, LiveStream


@pytest.mark.anyio
async def test_a_change_reaches_an_open_stream() -> None:
    app = create_app()
    async with Client(app) as client:
        stream = await client.stream("/stream").open()
        first = await stream.next_event()
        assert find_counter(first.elements.encode()) == 0
        response = await client.http.post("/change")
        assert response.status_code == 204
        second = await stream.next_event()
        assert find_counter(second.elements.encode()) == 1
        await stream.close()


@pytest.mark.anyio
async def test_a_change_from_another_process_brings_its_counter() -> None:
    # What a process on NATS hears from another one: an event with a higher counter.
    app = create_app()
    assert isinstance(app, App)
    async with Client(app) as client:
        stream = await client.stream("/stream").open()
        await stream.next_event()
        await app.publish(Changed(counter=7))
        assert find_counter((await stream.next_event()).elements.encode()) == 7
        assert (await client.http.post("/change")).status_code == 204
        assert find_counter((await stream.next_event()).elements.encode()) == 8
        await stream.close()


def test_the_nats_app_needs_a_nats_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVEPAGES_NATS_URL", raising=False)
    with pytest.raises(NotImplementedError, match="LIVEPAGES_NATS_URL is not set"):
        create_nats_app()


@pytest.mark.anyio
@pytest.mark.parametrize("page", list(PageName))
async def test_the_personal_app_greets_each_stream_by_its_own_name(
    page: PageName, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PAGE_ENV, page.value)
    app = create_personal_app()
    async with Client(app) as client:
        streams = [await client.stream("/stream").open() for _ in range(2)]
        for stream in streams:
            await stream.next_event()
        assert (await client.http.post("/change")).status_code == 204
        for index, stream in enumerate(streams, start=1):
            event = await stream.next_event()
            assert find_counter(event.elements.encode()) == 1
            assert escape(viewer_name(index)) in event.elements
            await stream.close()


@pytest.mark.anyio
@pytest.mark.parametrize("page", list(PageName))
async def test_the_shared_personal_page_sends_each_viewer_what_a_render_for_them_sends(
    page: PageName, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PAGE_ENV, page.value)
    personal, holes = create_per_viewer_app(), create_personal_app()
    async with Client(personal) as reference, Client(holes) as client:
        # Two viewers, a change, then a third viewer joining after it.
        apps: list[tuple[Client, list[LiveStream]]] = [(reference, []), (client, [])]
        for c, streams in apps:
            for _ in range(2):
                streams.append(await c.stream("/stream").open())
        firsts = [[(await s.next_event()).elements for s in streams] for _, streams in apps]
        for c, _ in apps:
            assert (await c.http.post("/change")).status_code == 204
        seconds = [[(await s.next_event()).elements for s in streams] for _, streams in apps]
        for c, streams in apps:
            streams.append(await c.stream("/stream").open())
        late = [(await streams[-1].next_event()).elements for _, streams in apps]
        assert firsts[0] == firsts[1]
        assert seconds[0] == seconds[1]
        assert late[0] == late[1]
        assert escape(viewer_name(3)) in late[1]
        assert "\x1e" not in "".join([*seconds[1], late[1]])
        assert isinstance(holes, App)
        assert isinstance(personal, App)
        assert len(holes.live.views) == 1  # one view, not one per viewer
        assert len(personal.live.views) == 3
        for _, streams in apps:
            for stream in streams:
                await stream.close()
