"""The common peer: Starlette + datastar-py with one ``asyncio.Queue`` per client.

This is how the datastar-py examples and most hand-rolled apps fan out: a change
renders the HTML once and puts it on every client's queue; each stream's
generator wakes up, encodes its own event with datastar-py and yields it
through Starlette's ``StreamingResponse``. No compression: Starlette's
``GZipMiddleware`` skips ``text/event-stream`` responses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from datastar_py.sse import DatastarEvent
from datastar_py.starlette import DatastarResponse, ServerSentEventGenerator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.fanout.page import render

__all__ = ["Board", "create_app"]


class Board:
    """The shared state: the counter and one queue per open stream."""

    def __init__(self) -> None:
        self.counter = 0
        self.queues: set[asyncio.Queue[str]] = set()

    def change(self) -> None:
        """Bump the counter and hand the new HTML to every stream."""
        self.counter += 1
        html = render(self.counter)
        for queue in self.queues:
            queue.put_nowait(html)

    async def events(self, queue: asyncio.Queue[str]) -> AsyncGenerator[DatastarEvent, None]:
        """One client's stream: the current board, then one event per change."""
        try:
            yield ServerSentEventGenerator.patch_elements(render(self.counter))
            while True:
                yield ServerSentEventGenerator.patch_elements(await queue.get())
        finally:
            self.queues.discard(queue)


def create_app() -> Starlette:
    """The Starlette app serving the benchmark's HTTP contract."""
    board = Board()

    async def stream(request: Request) -> DatastarResponse:
        queue: asyncio.Queue[str] = asyncio.Queue()
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
