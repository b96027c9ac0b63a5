"""The livepages target: the board as a livepages page, streamed by the live engine.

A real browser opens the page, gets a signed tab id in the document, and sends
it with its stream request. The load client does not parse the document, so
``/stream`` is a thin shim that issues a tab id per connection (as the page GET
would) and hands the request to the page's ``/_live`` endpoint unchanged.

``create_app`` runs on the in-process broker; ``create_nats_app`` is the same
app on the NATS server at ``$LIVEPAGES_NATS_URL``, so that several processes of
it share their changes. Each process keeps its own counter and takes the
counter an event carries, so a change made on one process renders the same
board on all.

``create_personal_app`` is the page whose render also takes the ``Tab`` and
greets the tab's viewer by name (the shim names each stream's viewer as it
issues its tab id, as a sign-in would): one view, and one render, per viewer.

``create_holes_app`` measures one design for making that cheap, outside the
library: the page is rendered once for everyone with a marker where the
viewer's name goes (:data:`HOLE`), and each stream's bytes get the viewer's
escaped name put in place of the marker as they are sent. It is a prototype to
measure what that costs, not a livepages feature: it serves identity only (the
substitution needs the plain bytes), and it is only right for a page that uses
the name as text (not in a condition or a filter).
"""

from __future__ import annotations

import enum
import gc
import importlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from markupsafe import escape
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from benchmarks.fanout.page import current_page, renderer, viewer_name
from livepages import App, Page, Settings, Tab
from livepages.compression import CompressionSettings
from livepages.events import Event, on

#: The tab id header, written out: this app also runs against older livepages
#: revisions (``--before``), whose modules differ.
TAB_HEADER = "X-LP-Tab"

__all__ = [
    "HOLE",
    "Mode",
    "create_app",
    "create_holes_app",
    "create_nats_app",
    "create_personal_app",
]

#: What the holes prototype renders where the viewer's name goes: a control character
#: that autoescape leaves alone and that a page's text does not hold.
HOLE = "\x1eviewer\x1e"


class Mode(enum.Enum):
    """Who a render is for."""

    #: One render for every viewer, greeting nobody.
    SHARED = "shared"
    #: One render per viewer (the render takes the ``Tab``).
    PERSONAL = "personal"
    #: One render for every viewer with a hole for the name, filled per stream.
    HOLES = "holes"


@dataclass
class Changed(Event, subject="board"):
    """The counter changed."""

    counter: int


def create_app() -> ASGIApp:
    """The livepages app under the harness's contract (``GET /stream``, ``POST /change``)."""
    return _board(Settings(heartbeat=0, title="board"))


def create_personal_app() -> ASGIApp:
    """The same app whose page greets each stream's viewer: its render takes the ``Tab``."""
    return _board(Settings(heartbeat=0, title="board"), Mode.PERSONAL)


def create_holes_app() -> ASGIApp:
    """The page rendered once with a hole for the name, each stream filling in its viewer's."""
    return _board(Settings(heartbeat=0, title="board"), Mode.HOLES)


def create_nats_app() -> ASGIApp:
    """The same app on the NATS server(s) at ``$LIVEPAGES_NATS_URL``."""
    url = os.environ.get("LIVEPAGES_NATS_URL")
    if not url:
        raise NotImplementedError("LIVEPAGES_NATS_URL is not set")
    # Processes on one NATS share one key (livepages refuses to start otherwise).
    settings = Settings(heartbeat=0, title="board", nats_url=url, secret_key="fanout-benchmark")
    return _board(settings)


def _board(settings: Settings, mode: Mode = Mode.SHARED) -> App:
    state = {"counter": 0}
    render = renderer(current_page())
    viewers: dict[str, str] = {}  # tab id -> the viewer's name: the "user table"

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        # Everything built at start-up lives as long as the process: move it out of
        # the collector's way so that full collections stay short (DESIGN.md).
        gc.collect()
        gc.freeze()
        yield

    app = App(
        settings=settings,
        compression=CompressionSettings(encodings=("gzip",)),
        lifespan=lifespan,
    )

    shared_viewer = HOLE if mode is Mode.HOLES else ""

    class Board(Page):
        def render(self) -> str:
            return render(state["counter"], shared_viewer)

        @on(Changed)
        async def changed(self, event: Changed) -> None:
            # Another process's change: take its counter, then re-render (nothing patched).
            state["counter"] = max(state["counter"], event.counter)

    class PersonalBoard(Board):
        def render(self, tab: Tab) -> str:  # type: ignore[override]
            return render(state["counter"], viewers.get(tab.id, ""))

    page = PersonalBoard if mode is Mode.PERSONAL else Board
    app.page("/")(page)

    async def change(request: Request) -> Response:
        state["counter"] += 1
        await app.publish(Changed(counter=state["counter"]))
        return Response(status_code=204)

    app.add_route("/change", change, methods=["POST"])
    name = f"{page.__name__}.live"
    live = next(r for r in app.router.routes if isinstance(r, Route) and r.name == name)
    shim = _TabShim(app, live, None if mode is Mode.SHARED else viewers, mode is Mode.HOLES)
    app.router.routes.append(Route("/stream", shim, methods=["GET"]))
    return app


class _TabShim:
    """Adds the tab header a browser would send, then serves the page's live stream."""

    def __init__(
        self, app: App, live: Route, viewers: dict[str, str] | None, holes: bool = False
    ) -> None:
        self.app = app
        self.live = live
        self.viewers = viewers
        self.holes = holes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        issued = self.app.live.tabs.issue()
        name = ""
        if self.viewers is not None:
            name = self.viewers[issued] = viewer_name(len(self.viewers) + 1)
        headers = [*scope["headers"], (TAB_HEADER.lower().encode(), issued.encode())]
        scope = {**scope, "path": "/_live", "headers": headers}
        if self.holes:
            scope["headers"] = [(k, v) for k, v in headers if k != b"accept-encoding"]
            _fill_bodies(scope, send, name)
            send = _filled(send, name)
        await self.live.handle(scope, receive, send)


def _fill_bodies(scope: Scope, send: Send, name: str) -> None:
    """Fill the holes of the bodies a stream writes past the app's layers, if it does."""
    # Imported here: the other apps also run against older revisions (--before), whose
    # streams took that ``send`` from the scope key BODY_SEND.
    try:
        from livepages.handoff import HANDOFF
    except ImportError:
        key = importlib.import_module("livepages.live").BODY_SEND
        scope[key] = _filled(scope.get(key, send), name)
        return
    handoff = scope.get(HANDOFF)
    if handoff is not None:
        handoff.send = _filled(handoff.send, name)


def _filled(send: Send, name: str) -> Send:
    """``send`` with the viewer's escaped ``name`` in every hole of the bodies it sends."""
    hole, value = HOLE.encode(), str(escape(name)).encode()

    async def fill(message: Message) -> None:
        body = message.get("body")
        if message["type"] == "http.response.body" and body and hole in body:
            message = {**message, "body": body.replace(hole, value)}
        await send(message)

    return fill
