"""The examples index: every example mounted under its prefix, lifespans included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from examples.index import EXAMPLES, create_app, mounted
from livepages.testing import Client, DatastarEvent, LiveServer, parse_events


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
    async with Client(server.url) as client:
        page = await client.get("/counter/")
        html = unescape(page.html)
        assert "@get('/counter/_live'" in html
        assert "@post('/counter/_action/increment'" in html
        async with page.stream() as stream:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            start = await stream.next_event()
            shown = re.search(r'<output id="count">(-?\d+)</output>', start.elements)
            assert shown is not None
            count = int(shown[1])
            response = await page.action("increment")
            assert response.status_code == 200
            await stream.wait_for(
                lambda e: f'<output id="count">{count + 1}</output>' in e.elements
            )


def generation(event: DatastarEvent) -> int:
    found = re.search(r'<span id="generation">(\d+)</span>', event.elements)
    assert found is not None
    return int(found[1])


@pytest.mark.anyio
async def test_mounted_lifespans_run(server: LiveServer) -> None:
    # The Game of Life steps only if its lifespan started the loop.
    async with Client(server.url) as client:
        page = await client.get("/game_of_life/")
        async with page.stream() as stream:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            start = generation(await stream.next_event())
            await stream.wait_for(lambda e: generation(e) >= start + 2)


@pytest.mark.anyio
async def test_the_sdk_demo_works_where_it_is_mounted(server: LiveServer) -> None:
    async with Client(server.url) as client:
        page = (await client.get("/sdk/")).html
        assert "@get('clock')" in page  # relative: it resolves inside the mount
        echo = await client.http.post(
            "/sdk/echo", json={"text": "<hi>"}, headers={"Datastar-Request": "true"}
        )
        [event], rest = parse_events(echo.text)
        assert rest == ""
        assert event.data["elements"] == ['<p id="echo">You said: &lt;hi&gt;</p>']
        async with client.stream("/sdk/clock") as clock:
            assert clock.status == 200
            first = await clock.next_event(comments=True)
            assert first.type == "datastar-patch-elements"
