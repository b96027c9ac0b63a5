"""The examples index: every example mounted under its prefix, lifespans included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from examples.index import EXAMPLES, create_app, mounted
from examples.testing import SSEEvent, live_stream, parse_events
from livepages.testing import LiveServer


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(create_app()) as live:
        yield live


def links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', html)


def test_the_index_links_every_mounted_example(server: LiveServer) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200
    found = links(page.text)
    expected = [example.prefix + "/" for example, _ in mounted()]
    assert found == expected
    required = [e.prefix + "/" for e in EXAMPLES if not e.optional]
    assert set(required) <= set(found)


def test_every_link_answers(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for link in links(client.get("/").text):
            response = client.get(link)
            assert response.status_code == 200, link
            assert response.headers["content-type"].startswith("text/html"), link


def test_unknown_paths_are_404(server: LiveServer) -> None:
    assert httpx.get(server.url + "/nowhere").status_code == 404
    assert httpx.get(server.url + "/counter/nowhere").status_code == 404


@pytest.mark.anyio
async def test_a_mounted_example_streams_and_acts_under_its_prefix(server: LiveServer) -> None:
    async with (
        httpx.AsyncClient(base_url=server.url) as client,
        live_stream(client, "/counter/") as stream,
    ):
        page = unescape((await client.get("/counter/")).text)
        assert "@get('/counter/_live'" in page
        assert "@post('/counter/_action/increment'" in page
        start = await stream.next()
        shown = re.search(r'<output id="count">(-?\d+)</output>', start.text)
        assert shown is not None
        count = int(shown[1])
        headers = {"X-LP-Tab": stream.tab, "Datastar-Request": "true"}
        response = await client.post("/counter/_action/increment", headers=headers)
        assert response.status_code == 200
        await stream.wait_for(lambda e: f'<output id="count">{count + 1}</output>' in e.text)


def generation(event: SSEEvent) -> int:
    found = re.search(r'<span id="generation">(\d+)</span>', event.text)
    assert found is not None
    return int(found[1])


@pytest.mark.anyio
async def test_mounted_lifespans_run(server: LiveServer) -> None:
    # The Game of Life steps only if its lifespan started the loop.
    async with (
        httpx.AsyncClient(base_url=server.url) as client,
        live_stream(client, "/game_of_life/") as stream,
    ):
        start = generation(await stream.next())
        await stream.wait_for(lambda e: generation(e) >= start + 2)


@pytest.mark.anyio
async def test_the_sdk_demo_works_where_it_is_mounted(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        page = (await client.get("/sdk/")).text
        assert "@get('clock')" in page  # relative: it resolves inside the mount
        echo = await client.post(
            "/sdk/echo", json={"text": "<hi>"}, headers={"Datastar-Request": "true"}
        )
        [event] = parse_events(echo.text)
        assert event.field("elements") == ['<p id="echo">You said: &lt;hi&gt;</p>']
        async with client.stream("GET", "/sdk/clock") as clock:
            async for line in clock.aiter_lines():
                assert line == "event: datastar-patch-elements"
                break
