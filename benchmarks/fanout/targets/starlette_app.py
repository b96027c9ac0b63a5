"""The common peer: Starlette + datastar-py with one ``asyncio.Queue`` per client.

This is how the datastar-py examples and most hand-rolled apps fan out: a change
puts the new counter and HTML on every client's queue; each stream's generator
wakes up, takes the HTML (or renders its own), encodes its own event with
datastar-py and yields it through Starlette's ``StreamingResponse``. No compression: Starlette's
``GZipMiddleware`` skips ``text/event-stream`` responses.

``create_app`` renders the page once per change and every stream sends it;
``create_personal_app`` renders it per client, greeting each stream's viewer by
name, as a hand-written app with a signed-in user in the header does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator

from datastar_py.sse import DatastarEvent
from datastar_py.starlette import DatastarResponse, ServerSentEventGenerator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.fanout.page import current_page, renderer, viewer_name

__all__ = ["Board", "Update", "create_app", "create_personal_app"]

#: What a change puts on each queue: the counter, and the shared HTML ("" when personal).
Update = tuple[int, str]


class Board:
    """The shared state: the counter and one queue per open stream.

    With ``personal``, each stream renders its own page for its viewer; otherwise
    a change renders once and every stream sends that HTML.
    """

    def __init__(self, personal: bool = False) -> None:
        self.counter = 0
        self.personal = personal
        self.render = renderer(current_page())
        self.queues: set[asyncio.Queue[Update]] = set()
        self.viewers = itertools.count(1)

    def change(self) -> None:
        """Bump the counter and wake every stream."""
        self.counter += 1
        update = self.update()
        for queue in self.queues:
            queue.put_nowait(update)

    def update(self) -> Update:
        """The counter, and its page rendered once unless each stream renders its own."""
        return (self.counter, "" if self.personal else self.render(self.counter, ""))

    def page(self, update: Update, viewer: str) -> str:
        """The HTML one stream sends for ``update``."""
        counter, shared = update
        return self.render(counter, viewer) if self.personal else shared

    async def events(self, queue: asyncio.Queue[Update]) -> AsyncGenerator[DatastarEvent, None]:
        """One client's stream: the current page, then one event per change."""
        viewer = viewer_name(next(self.viewers)) if self.personal else ""
        try:
            yield ServerSentEventGenerator.patch_elements(self.page(self.update(), viewer))
            while True:
                update = await queue.get()
                yield ServerSentEventGenerator.patch_elements(self.page(update, viewer))
        finally:
            self.queues.discard(queue)


def create_app() -> Starlette:
    """The Starlette app serving the benchmark's HTTP contract, one render per change."""
    return _app(Board())


def create_personal_app() -> Starlette:
    """The same app rendering each client's page for its viewer."""
    return _app(Board(personal=True))


def _app(board: Board) -> Starlette:
    async def stream(request: Request) -> DatastarResponse:
        queue: asyncio.Queue[Update] = asyncio.Queue()
        board.queues.add(queue)
        return DatastarResponse(board.events(queue))

    async def change(request: Request) -> Response:
        board.change()
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/stream", stream),
            Route("/change", change, methods=["POST"]),
        ]
    )
