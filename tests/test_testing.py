"""livepages.testing: one Client for an app in process and for a real server.

The scenario tests take ``client``, which is parametrised: the same assertions
run against ``tests.server_apps.make_visits()`` in process and against the same
app served by ``livepages.server.run`` in a subprocess (one for the module, so
counts there go on from test to test: the tests only compare before and after).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.types import ASGIApp

from livepages.shell import Shell
from livepages.testing import Client, DatastarEvent, PageWiring, SSEParser, parse_events
from tests.fixtures.servers import ServerProcess
from tests.server_apps import make_visits

COOKIE = "livepages_session"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess("uvicorn", "visits")
    yield process
    process.stop()
    assert b"Traceback" not in process.log, process.log.decode(errors="replace")


@pytest.fixture(params=["in-process", "server"])
def target(request: pytest.FixtureRequest) -> ASGIApp | str:
    """What the client drives: a fresh app, or the server process's base URL."""
    if request.param == "in-process":
        return make_visits()
    process: ServerProcess = request.getfixturevalue("server")
    return process.url


@pytest.fixture
async def client(target: ASGIApp | str) -> AsyncIterator[Client]:
    async with Client(target) as client:
        yield client


def shown(html: str, element: str) -> str:
    match = re.search(f'<p id="{element}">([^<]*)</p>', html)
    assert match is not None, html[-300:]
    return match.group(1)


# -- the same scenario in process and over HTTP -------------------------------------------


@pytest.mark.anyio
async def test_a_page_its_stream_and_an_action(client: Client) -> None:
    page = await client.get("/visits")
    assert page.status_code == 200
    assert page.tab
    assert page.csrf
    assert page.live_url == "/visits/_live"
    count = int(shown(page.html, "n"))
    async with page.stream() as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = await stream.next_event()
        assert first.type == "datastar-patch-elements"
        assert shown(first.elements, "n") == str(count)

        response = await page.action("visit")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        update = await stream.wait_for(lambda event: shown(event.elements, "n") != str(count))
        assert shown(update.elements, "n") == str(count + 1)
        assert shown(update.elements, "who") == shown(page.html, "who")
        assert not stream.ended.is_set()


@pytest.mark.anyio
async def test_cookies_persist_in_the_clients_jar(client: Client) -> None:
    first = await client.get("/visits")
    cookie = client.http.cookies[COOKIE]
    async with first.stream() as stream:  # the stream belongs to the session: it is sent
        await stream.next_event()
        assert (await first.action("visit")).status_code == 200  # its CSRF token too
        await stream.next_event()
    again = await client.get("/visits")
    assert shown(again.html, "who") == shown(first.html, "who")
    assert client.http.cookies[COOKIE] == cookie

    client.http.cookies.clear()  # a new visitor: the old page's token is no longer theirs
    assert (await first.action("visit")).status_code == 403
    stranger = await client.get("/visits")
    assert shown(stranger.html, "who") != shown(first.html, "who")


@pytest.mark.anyio
async def test_a_stream_the_server_ends(client: Client) -> None:
    page = await client.get("/visits")
    client.http.cookies.clear()  # the tab id belongs to a session this client left
    async with page.stream() as stream:
        assert stream.status == 200
        reload = await stream.next_event()  # the page is told to load afresh...
        await asyncio.wait_for(stream.ended.wait(), 5)  # ...and the response ends
        assert stream.events.empty()
    assert reload.option("selector") == "body"
    assert "window.location.reload()" in reload.elements


@pytest.mark.anyio
async def test_heartbeats_are_skipped_unless_asked_for(client: Client) -> None:
    page = await client.get("/visits")
    async with page.stream() as stream:
        await stream.next_event()
        beat = await stream.next_event(comments=True)
        assert beat.comment
        assert beat.type == ""


@pytest.mark.anyio
async def test_a_stream_can_be_opened_by_path(client: Client) -> None:
    page = await client.get("/visits")
    async with client.stream("/visits/_live", headers=page.headers) as stream:
        assert stream.status == 200
        assert stream.request.headers["x-lp-tab"] == page.tab
        assert stream.request.headers["accept-encoding"] == "identity"
        assert COOKIE in stream.request.headers["cookie"]
        assert shown((await stream.next_event()).elements, "who") == shown(page.html, "who")


# -- the parts --------------------------------------------------------------------------------


def test_one_client_per_target() -> None:
    app = make_visits()
    assert Client(app).in_process
    assert Client(app).app is app
    remote = Client("http://127.0.0.1:9")
    assert not remote.in_process
    assert remote.base_url == "http://127.0.0.1:9"
    with pytest.raises(RuntimeError, match=r"talks to http://127\.0\.0\.1:9"):
        _ = remote.app
    with pytest.raises(TypeError):
        Client("http://127.0.0.1:9", "http://testserver")


BODY = (
    ": a heartbeat\n\n"
    "event: datastar-patch-elements\n"
    "data: selector #x\n"
    "data: elements <p>café ✓</p>\n"
    "data: elements <p>two</p>\n\n"
    "event: datastar-patch-signals\n"
    'data: signals {"a": "b:c"}\n\n'
)


def test_parse_events_reads_every_field() -> None:
    events, rest = parse_events(BODY + "event: unfinished")
    assert rest == "event: unfinished"
    beat, patch, signals = events
    assert beat == DatastarEvent(type="", comment=True)
    assert patch.type == "datastar-patch-elements"
    assert patch.option("selector") == "#x"
    assert patch.elements == "<p>café ✓</p>\n<p>two</p>"
    assert signals.signals == {"a": "b:c"}


def test_the_parser_takes_bytes_split_anywhere() -> None:
    whole, _ = parse_events(BODY)
    data = BODY.encode()
    for cut in range(len(data) + 1):  # inside a character too: ✓ is three bytes
        parser = SSEParser()
        assert parser.feed(data[:cut]) + parser.feed(data[cut:]) == whole


def test_the_wiring_is_read_from_the_document() -> None:
    document = Shell().render(
        "<p>hi</p>",
        datastar_url="/datastar.js",
        title="t",
        live_url="/o'clock/_live?q=<1>",
        csrf_token="token",
        tab_id="tab",
        live_options="retry: 'always'",
    )
    wiring = PageWiring.read(document)
    assert wiring == PageWiring(tab="tab", csrf="token", live_url="/o'clock/_live?q=<1>")
    not_live = Shell().render("<p>hi</p>", datastar_url="/d.js", title="t")
    assert PageWiring.read(not_live) == PageWiring()
    assert PageWiring.read("<h1>Not Found</h1>") == PageWiring()


@pytest.mark.anyio
async def test_a_page_that_is_not_live_has_no_stream() -> None:
    async with Client(make_visits()) as client:
        page = await client.get("/nowhere")
        assert page.status_code == 404
        assert page.live_url is None
        with pytest.raises(ValueError, match="opens no live stream"):
            page.stream()


def test_importing_it_does_not_import_playwright() -> None:
    code = "import sys, livepages.testing; print('playwright' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
