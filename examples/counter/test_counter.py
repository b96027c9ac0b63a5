"""The counter example: over HTTP (in process and on a real server) and in Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from examples.counter.app import create_app
from livepages import App, Settings
from livepages.testing import Client, DatastarEvent, LiveServer, goto_live, watch_console

if TYPE_CHECKING:
    from tests.fixtures.browser import NewContext


def shows(count: int) -> str:
    return f'<output id="count">{count}</output>'


def patch_showing(count: int) -> Callable[[DatastarEvent], bool]:
    def wanted(event: DatastarEvent) -> bool:
        return event.type == "datastar-patch-elements" and shows(count) in event.elements

    return wanted


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.mark.anyio
async def test_page_shows_the_count_and_wires_the_buttons(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    html = unescape(response.text)
    assert "<title>Counter</title>" in html
    assert shows(0) in html
    assert "data-on:click=\"@post('/_action/increment', {headers: {" in html
    assert "data-on:click=\"@post('/_action/decrement', {headers: {" in html


@pytest.mark.anyio
async def test_actions_change_the_count(client: httpx.AsyncClient) -> None:
    for name in ("increment", "increment", "increment", "decrement"):
        assert (await client.post(f"/_action/{name}")).status_code == 204
    assert shows(2) in (await client.get("/")).text


@pytest.mark.anyio
async def test_the_count_can_go_below_zero(client: httpx.AsyncClient) -> None:
    assert (await client.post("/_action/decrement")).status_code == 204
    assert shows(-1) in (await client.get("/")).text


@pytest.mark.anyio
async def test_unknown_action_and_wrong_method(client: httpx.AsyncClient) -> None:
    assert (await client.post("/_action/reset")).status_code == 404
    assert (await client.get("/_action/increment")).status_code == 405
    assert shows(0) in (await client.get("/")).text


@pytest.mark.anyio
async def test_apps_do_not_share_counts(client: httpx.AsyncClient) -> None:
    await client.post("/_action/increment")
    other = create_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://testserver"
    ) as second:
        assert shows(0) in (await second.get("/")).text
    assert shows(1) in (await client.get("/")).text


@pytest.mark.anyio
async def test_every_viewer_gets_the_same_patch() -> None:
    app = create_app()
    with LiveServer(app) as server:
        async with Client(server.url) as client:
            pages = [await client.get("/"), await client.get("/")]
            async with pages[0].stream() as first, pages[1].stream() as second:
                for stream in (first, second):
                    assert stream.status == 200
                    assert stream.headers["content-type"].startswith("text/event-stream")
                    opening = await stream.next_event()
                    assert opening.type == "datastar-patch-elements"
                    assert shows(0) in opening.elements

                assert (await pages[0].action("increment")).status_code == 200
                seen_first = await first.wait_for(patch_showing(1))
                seen_second = await second.wait_for(patch_showing(1))
                # One render, shared: both viewers get the very same patch.
                assert seen_first == seen_second
                assert seen_first.data["elements"][0].startswith('<main id="lp-root">')


def test_module_app_is_what_make_run_serves() -> None:
    from examples.counter.app import app

    assert isinstance(app, App)


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture
def server(datastar_js: Path) -> Iterator[LiveServer]:
    # Requested before browser_context by the tests, so pages close before the server stops.
    with LiveServer(create_app(Settings(datastar_file=str(datastar_js)))) as live:
        yield live


def test_a_click_in_one_browser_shows_in_another(
    server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    pages = [browser_context().new_page() for _ in range(2)]
    problems = [watch_console(page) for page in pages]
    for page in pages:
        goto_live(page, server.url + "/")
    alice, bob = pages
    for page in pages:
        expect(page.locator("#count")).to_have_text("0")

    alice.click("#increment")
    expect(bob.locator("#count")).to_have_text("1", timeout=1000)
    expect(alice.locator("#count")).to_have_text("1", timeout=1000)

    bob.click("#decrement")
    bob.click("#decrement")
    expect(alice.locator("#count")).to_have_text("-1", timeout=1000)
    expect(bob.locator("#count")).to_have_text("-1", timeout=1000)
    assert problems == [[], []]
