"""livepages mounted in FastAPI: every render carries the mount prefix, whoever publishes."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from livepages import App, Event, Page, action, invoke, on
from livepages.testing import Client, LiveStream

pytestmark = pytest.mark.anyio


@dataclass
class Bumped(Event, subject="board.bumped"):
    by: str


def make_site() -> tuple[FastAPI, App, dict[str, int]]:
    board = App()
    counts = {"n": 0}

    @board.page("/board")
    @on(Bumped)
    class Board(Page):
        def render(self) -> str:
            return (
                f'<p id="n">{counts["n"]}</p><button data-on:click="{invoke(self.bump)}">+</button>'
            )

        @action
        async def bump(self) -> None:
            counts["n"] += 1
            await board.publish(Bumped(by="page"))

    api = FastAPI()
    api.mount("/app", board)

    @api.post("/api/bump")
    async def bump_from_api() -> dict[str, int]:
        counts["n"] += 1
        await board.publish(Bumped(by="api"))
        return counts

    return api, board, counts


def action_urls(html: str) -> list[str]:
    return re.findall(r"@post\('([^']+)'", html)


async def next_render(stream: LiveStream, n: int) -> str:
    while True:
        html = (await stream.next_event()).elements
        if f'<p id="n">{n}</p>' in html:
            return html


async def test_a_plain_route_and_a_background_task_render_with_the_prefix() -> None:
    api, board, counts = make_site()
    async with Client(api) as client:
        page = await client.get("/app/board")
        assert action_urls(page.html) == ["/app/board/_action/bump"]
        async with page.stream() as stream:
            assert action_urls(await next_render(stream, 0)) == ["/app/board/_action/bump"]
            # A plain FastAPI route outside the livepages app publishes.
            assert (await client.http.post("/api/bump")).json() == {"n": 1}
            assert action_urls(await next_render(stream, 1)) == ["/app/board/_action/bump"]

            # A task started outside any request publishes.
            async def background() -> None:
                counts["n"] += 1
                await board.publish(Bumped(by="loop"))

            await asyncio.get_running_loop().create_task(background())
            assert action_urls(await next_render(stream, 2)) == ["/app/board/_action/bump"]
            # And the patched page's button works: the action is found under the prefix.
            response = await page.action("bump")
            assert response.status_code == 200
            assert action_urls(await next_render(stream, 3)) == ["/app/board/_action/bump"]
