"""The app that the server matrix serves in a real server process.

``plain`` is a livepages app; ``mounted`` is the same app mounted at ``/app``
inside a Starlette app, wrapped in ``GZipMiddleware``, so that middleware sees
every live stream. Each board is its own view with its own counter, so tests
sharing one server process do not see each other's changes.

``visits`` is a page with a session and an action: the tests of
``livepages.testing.Client`` drive it in process and in a server process.

``python -m tests.server_apps plain|mounted|visits PORT`` serves one of them with
``livepages.server.run`` (uvicorn); hypercorn and granian import them by name.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from livepages import App, CompressionSettings, Event, Page, Session, Settings, action, on
from livepages.server import run

__all__ = [
    "HEARTBEAT",
    "WRITE_TIMEOUT",
    "make_app",
    "make_mounted",
    "make_visits",
    "mounted",
    "plain",
    "visits",
]

#: Short, so a test sees a heartbeat and a dropped writer quickly.
HEARTBEAT = 0.5
WRITE_TIMEOUT = 2.0


@dataclass
class Changed(Event, subject="board.{board}"):
    """One board's counter changed."""

    board: str


def make_app(*, compress: bool = True) -> App:
    """Boards at ``/boards/{board}?pad=N`` (N random filler bytes), changed by
    ``POST /change/{board}``."""
    counters: dict[str, int] = {}
    compression = CompressionSettings() if compress else CompressionSettings(encodings=())
    app = App(
        settings=Settings(
            secret_key="server-matrix", heartbeat=HEARTBEAT, write_timeout=WRITE_TIMEOUT
        ),
        compression=compression,
    )

    @app.page("/boards/{board}")
    @on(Changed, board="board")
    class Board(Page):
        board: str
        pad: int = 0

        def render(self) -> str:
            # Random filler: it must not compress away, or no buffer would ever fill.
            filler = os.urandom(self.pad // 2).hex()
            return f'<p id="n">{counters.get(self.board, 0)}</p><div>{filler}</div>'

    async def change(request: Request) -> Response:
        board = request.path_params["board"]
        counters[board] = counters.get(board, 0) + 1
        await app.publish(Changed(board=board))
        return Response(str(counters[board]))

    app.add_route("/change/{board}", change, methods=["POST"])
    return app


def make_mounted() -> Starlette:
    """The app at ``/app`` inside Starlette with GZip; the outer lifespan closes it."""
    inner = make_app(compress=False)  # plain event streams reach GZipMiddleware

    @contextlib.asynccontextmanager
    async def lifespan(outer: Starlette) -> AsyncIterator[None]:
        await inner.startup()
        try:
            yield
        finally:
            await inner.shutdown()

    return Starlette(
        routes=[Mount("/app", app=inner)],
        middleware=[Middleware(GZipMiddleware, minimum_size=10)],
        lifespan=lifespan,
    )


@dataclass
class Visited(Event, subject="visits"):
    """Someone called the ``visit`` action."""


def make_visits() -> App:
    """``/visits`` shows a count that its ``visit`` action raises, and the session's id."""
    visits = {"count": 0}
    app = App(settings=Settings(secret_key="client-tests", heartbeat=HEARTBEAT), sessions=True)

    @app.page("/visits")
    @on(Visited)
    class Counter(Page):
        def render(self, session: Session[dict[str, str]]) -> str:
            return f'<p id="n">{visits["count"]}</p><p id="who">{session.id}</p>'

        @action
        async def visit(self) -> None:
            visits["count"] += 1
            await app.publish(Visited())

    return app


plain = make_app()
mounted = make_mounted()
visits = make_visits()

if __name__ == "__main__":
    run(
        {"plain": plain, "mounted": mounted, "visits": visits}[sys.argv[1]],
        port=int(sys.argv[2]),
        log_level="warning",
    )
