"""Helpers shared by the examples' tests: read a page's live stream, watch a browser's console.

``live_stream`` does over real HTTP what the browser does: GET the page, take the
tab id and stream URL that the shell wrote into it, and open the stream. The
events it reads are parsed into ``SSEEvent`` so a test can look for the patch it
expects::

    async with httpx.AsyncClient(base_url=server.url) as client:
        async with live_stream(client, "/") as stream:
            first = await stream.next()
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from html import unescape
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Error
    from playwright.sync_api import Page as BrowserPage

__all__ = [
    "LiveStream",
    "SSEEvent",
    "goto_live",
    "live_stream",
    "page_wiring",
    "parse_events",
    "watch_console",
]

_TAB = re.compile(r"_tab: '([^']+)'")
_LIVE = re.compile(r"@get\('([^']*/_live[^']*)'")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event: its type and its ``data:`` lines."""

    type: str
    data: tuple[str, ...]

    def field(self, name: str) -> list[str]:
        """The values of the data lines that start with ``name`` (``elements``, ``mode``)."""
        prefix = name + " "
        return [line[len(prefix) :] for line in self.data if line.startswith(prefix)]

    @property
    def text(self) -> str:
        """All data lines joined, to search for a snippet of HTML."""
        return "\n".join(self.data)


def parse_events(body: str) -> list[SSEEvent]:
    """The events of an SSE body (heartbeat comments and retry-only blocks left out)."""
    parsed = []
    for block in body.split("\n\n"):
        event = _parse_block(block.splitlines())
        if event is not None:
            parsed.append(event)
    return parsed


def _parse_block(lines: list[str]) -> SSEEvent | None:
    kind = next((line[len("event: ") :] for line in lines if line.startswith("event: ")), None)
    if kind is None:
        return None
    data = tuple(line[len("data: ") :] for line in lines if line.startswith("data: "))
    return SSEEvent(kind, data)


def page_wiring(html: str) -> tuple[str, str]:
    """The tab id and live stream URL that a page's shell carries."""
    text = unescape(html)
    tab, live = _TAB.search(text), _LIVE.search(text)
    assert tab is not None, "the page has no tab id"
    assert live is not None, "the page opens no live stream"
    return tab.group(1), live.group(1)


class LiveStream:
    """The events of one open live stream, in the order they arrived."""

    def __init__(self, tab: str) -> None:
        #: The tab id of the page load: actions send it as ``X-LP-Tab``.
        self.tab = tab
        self._events: asyncio.Queue[SSEEvent] = asyncio.Queue()

    async def next(self, within: float = 5.0) -> SSEEvent:
        """The next event; ``TimeoutError`` if none comes ``within`` seconds."""
        return await asyncio.wait_for(self._events.get(), within)

    async def wait_for(self, wanted: Callable[[SSEEvent], bool], within: float = 5.0) -> SSEEvent:
        """Skip events until a ``wanted`` one; ``TimeoutError`` if none comes ``within`` seconds."""
        return (await self.until(wanted, within))[-1]

    async def until(
        self, wanted: Callable[[SSEEvent], bool], within: float = 5.0
    ) -> list[SSEEvent]:
        """The events up to and including a ``wanted`` one (``TimeoutError`` after ``within``)."""

        async def scan() -> list[SSEEvent]:
            seen = [await self._events.get()]
            while not wanted(seen[-1]):
                seen.append(await self._events.get())
            return seen

        return await asyncio.wait_for(scan(), within)

    async def _read(self, response: httpx.Response) -> None:
        lines: list[str] = []
        async for line in response.aiter_lines():
            if line:
                lines.append(line)
                continue
            event = _parse_block(lines)
            lines = []
            if event is not None:
                self._events.put_nowait(event)


@asynccontextmanager
async def live_stream(client: httpx.AsyncClient, path: str) -> AsyncIterator[LiveStream]:
    """Load the page at ``path`` and hold its live stream open for the block."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    tab, url = page_wiring(page.text)
    headers = {"X-LP-Tab": tab, "Datastar-Request": "true"}
    stream = LiveStream(tab)
    # No read timeout: an idle stream is quiet until the next change or heartbeat.
    timeout = httpx.Timeout(5.0, read=None)
    async with client.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(stream._read(response))
        try:
            yield stream
        finally:
            reader.cancel()
            with suppress(asyncio.CancelledError):
                await reader


def watch_console(page: BrowserPage) -> list[str]:
    """Collect the page's console errors and uncaught exceptions into the returned list."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    def on_page_error(error: Error) -> None:
        problems.append(f"page error: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return problems


def goto_live(page: BrowserPage, url: str) -> None:
    """Load ``url`` in the browser and return once the page's live stream has answered."""
    live_path = urlsplit(url).path.rstrip("/") + "/_live"
    with page.expect_response(lambda response: urlsplit(response.url).path == live_path) as live:
        page.goto(url)
    assert live.value.status == 200
