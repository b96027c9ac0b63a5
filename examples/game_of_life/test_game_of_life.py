"""The Game of Life example: its app over HTTP, its server loop, and in Chromium."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from examples.game_of_life import app as life
from examples.game_of_life.app import SIZE, CompressionMeter, Game, create_app
from examples.index import create_app as examples_index
from livepages import App, Settings
from livepages.compression import GzipCompressor
from livepages.testing import Client, DatastarEvent, LiveServer, goto_live, watch_console

if TYPE_CHECKING:
    from tests.fixtures.browser import NewContext

DATASTAR = {"Datastar-Request": "true"}


def game_of(app: App) -> Game:
    game = app.state.game
    assert isinstance(game, Game)
    return game


def cells(html: str) -> list[bool]:
    """The board's cells as rendered, row by row: alive or not."""
    start = html.index('<div id="board">') + len('<div id="board">')
    board = html[start : html.index("</div>", start)]
    return [cell.startswith(' class="on"') for cell in board.split("<i")[1:]]


def generation(event: DatastarEvent) -> int:
    text = event.elements
    start = text.index('<span id="generation">') + len('<span id="generation">')
    return int(text[start : text.index("</span>", start)])


@pytest.fixture
def app() -> App:
    return create_app(seed=1)


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan runs under ASGITransport, so the board only moves when a test says so.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


# -- the page and its actions ---------------------------------------------------------------


@pytest.mark.anyio
async def test_page_shows_the_whole_board(app: App, client: httpx.AsyncClient) -> None:
    html = unescape((await client.get("/")).text)
    board = cells(html)
    assert len(board) == SIZE * SIZE
    game = game_of(app)
    assert sum(board) == len(game.board.alive) > 0
    assert board == list(game.board.cells())
    assert '<span id="generation">0</span>' in html
    assert "@post('/_action/paint'" in html
    assert '<button id="pause"' in html
    assert ">Pause</button>" in html


@pytest.mark.anyio
async def test_a_click_paints_a_cell(app: App, client: httpx.AsyncClient) -> None:
    await client.post("/_action/clear")
    response = await client.post("/_action/paint", json={"x": 7, "y": 3}, headers=DATASTAR)
    assert response.status_code == 200
    assert game_of(app).board.alive == {(7, 3)}
    board = cells((await client.get("/")).text)
    assert [i for i, on in enumerate(board) if on] == [3 * SIZE + 7]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "signals",
    [{"x": SIZE, "y": 0}, {"x": 0, "y": -1}, {"x": 1}, {"x": "a", "y": 1}, {"x": 1.5, "y": 1}],
)
async def test_bad_cells_are_400(
    app: App, client: httpx.AsyncClient, signals: dict[str, object]
) -> None:
    before = set(game_of(app).board.alive)
    assert (await client.post("/_action/paint", json=signals)).status_code == 400
    assert game_of(app).board.alive == before


@pytest.mark.anyio
async def test_pause_and_resume(app: App, client: httpx.AsyncClient) -> None:
    assert (await client.post("/_action/pause")).status_code == 204
    assert game_of(app).paused
    assert ">Resume</button>" in (await client.get("/")).text
    await client.post("/_action/pause")
    assert not game_of(app).paused
    assert ">Pause</button>" in (await client.get("/")).text


@pytest.mark.anyio
async def test_clear_and_randomize(app: App, client: httpx.AsyncClient) -> None:
    await client.post("/_action/clear")
    assert not any(cells((await client.get("/")).text))
    await client.post("/_action/randomize")
    assert len(game_of(app).board.alive) > 0


def test_a_stuck_board_is_reseeded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(life, "STALE_STEPS", 3)
    game = Game(CompressionMeter(GzipCompressor()), seed=1)
    block = {(1, 1), (1, 2), (2, 1), (2, 2)}
    game.board.alive = set(block)
    game.changed()
    for _ in range(3):
        game.step()
        assert game.board.alive == block
    game.step()
    assert len(game.board.alive) > 100  # fresh soup


def test_each_state_is_rendered_and_metered_once() -> None:
    meter = CompressionMeter(GzipCompressor())
    game = Game(meter, seed=1)
    assert meter.describe() == "no frame yet"
    first = game.board_html()
    assert game.board_html() is first
    assert meter.frames == 1
    assert meter.raw > 15_000  # 2,500 cells
    game.step()
    game.board_html()
    assert meter.frames == 2
    assert 0 < meter.compressed < meter.raw
    assert meter.ratio == meter.raw / meter.compressed
    assert meter.describe().startswith(f"raw {meter.raw / 1000:.1f} KB → gzip ")


def test_module_app_is_what_make_run_serves() -> None:
    assert isinstance(life.app, App)


# -- the server loop, on a real server --------------------------------------------------------


@pytest.mark.anyio
async def test_the_loop_steps_and_viewers_share_each_render() -> None:
    app = create_app(seed=3)
    with LiveServer(app) as server:
        async with Client(server.url) as client:
            pages = [await client.get("/"), await client.get("/")]
            async with pages[0].stream() as first, pages[1].stream() as second:
                for stream in (first, second):
                    assert stream.status == 200
                    assert stream.headers["content-type"].startswith("text/event-stream")
                start = generation(await first.next_event())
                await second.next_event()
                renders = app.live.stats.renders
                target = start + 3
                frames = [
                    {
                        generation(e): e
                        for e in await stream.until(lambda e: generation(e) >= target)
                    }
                    for stream in (first, second)
                ]
                steps = game_of(app).board.generation - start
                # One render per step for both viewers: with two per-viewer renders it would be 2x.
                assert app.live.stats.renders - renders <= steps + 1
                # ...so each step reached both viewers as the very same bytes.
                assert frames[0].keys() == frames[1].keys()
                for step, frame in frames[0].items():
                    assert frames[1][step] == frame
                    assert "raw " in frame.elements
                    assert " B (" in frame.elements
        stepper = app.state.stepper
    assert isinstance(stepper, asyncio.Task)
    assert stepper.done()  # the lifespan stopped the loop with the server


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture(params=["alone", "mounted"])
def server(request: pytest.FixtureRequest, datastar_js: Path) -> Iterator[tuple[LiveServer, str]]:
    """The game on its own, and mounted in the examples index as ``make run`` serves it.

    Requested before browser_context by the tests, so pages close before the server stops.
    """
    settings = Settings(datastar_file=str(datastar_js))
    if request.param == "alone":
        with LiveServer(create_app(settings, seed=5)) as live:
            yield live, ""
    else:
        with LiveServer(examples_index(settings)) as live:
            yield live, "/game_of_life"


def test_the_board_moves_and_a_click_paints(
    server: tuple[LiveServer, str], browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    live, prefix = server
    page = browser_context(viewport={"width": 900, "height": 900}).new_page()
    problems = watch_console(page)
    answers: list[int] = []
    page.on("response", lambda response: answers.append(response.status))
    goto_live(page, live.url + prefix + "/")
    board, counter = page.locator("#board"), page.locator("#generation")

    shown = counter.inner_text()
    before = board.screenshot()
    expect(counter).not_to_have_text(shown, timeout=2000)
    expect(counter).not_to_have_text(counter.inner_text(), timeout=2000)  # a full step drawn
    after = board.screenshot()
    assert before != after

    page.click("#pause")
    expect(page.locator("#pause")).to_have_text("Resume")
    page.click("#clear")
    expect(page.locator("#board > i.on")).to_have_count(0)
    cell = page.locator("#board > i").nth(20 * SIZE + 10)
    cell.click()
    expect(cell).to_have_class("on")
    expect(page.locator("#board > i.on")).to_have_count(1)
    expect(page.locator("#alive")).to_have_text("1")

    page.click("#pause")
    expect(page.locator("#pause")).to_have_text("Pause")
    expect(cell).not_to_have_class("on")  # alone, it dies on the next step
    assert problems == []
    assert 404 not in answers  # every button posted inside the mount, after many steps
