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
greets the tab's viewer by name, written the natural way:
``tab.state.get("name", "")`` passed to the template, which tests it
(``{% if viewer %}``) and prints it. The shim names each stream's viewer in its
tab's state as it issues its tab id, as a sign-in would. livepages renders it
once per change with a hole for the name (``livepages.personal``).
``create_per_viewer_app`` is the same page with ``personal_holes=False``: one
view, and one render, per viewer, as before.
"""

from __future__ import annotations

import enum
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks.fanout.page import current_page, renderer, viewer_name
from livepages import App, Page, Settings, Tab
from livepages.compression import CompressionSettings
from livepages.events import Event, on

#: The tab id header, written out: this app also runs against older livepages
#: revisions (``--before``), whose modules differ.
TAB_HEADER = "X-LP-Tab"

__all__ = [
    "Mode",
    "create_app",
    "create_nats_app",
    "create_per_viewer_app",
    "create_personal_app",
]


class Mode(enum.Enum):
    """Who a render is for."""

    #: One render for every viewer, greeting nobody.
    SHARED = "shared"
    #: The render takes the ``Tab`` and greets its viewer.
    PERSONAL = "personal"


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


def create_per_viewer_app() -> ASGIApp:
    """The personal page rendered once per viewer (``personal_holes=False``)."""
    return _board(Settings(heartbeat=0, title="board", personal_holes=False), Mode.PERSONAL)


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

    class Board(Page):
        def render(self) -> str:
            return render(state["counter"], "")

        @on(Changed)
        async def changed(self, event: Changed) -> None:
            # Another process's change: take its counter, then re-render (nothing patched).
            state["counter"] = max(state["counter"], event.counter)

    class PersonalBoard(Board):
        def render(self, tab: Tab) -> str:  # type: ignore[override]
            return render(state["counter"], tab.state.get("name", ""))

    page = PersonalBoard if mode is Mode.PERSONAL else Board
    app.page("/")(page)

    async def change(request: Request) -> Response:
        state["counter"] += 1
        await app.publish(Changed(counter=state["counter"]))
        return Response(status_code=204)

    app.add_route("/change", change, methods=["POST"])
    name = f"{page.__name__}.live"
    live = next(r for r in app.router.routes if isinstance(r, Route) and r.name == name)
    shim = _TabShim(app, live, mode is Mode.PERSONAL)
    app.router.routes.append(Route("/stream", shim, methods=["GET"]))
    return app


class _TabShim:
    """Adds the tab header a browser would send, then serves the page's live stream."""

    def __init__(self, app: App, live: Route, named: bool) -> None:
        self.app = app
        self.live = live
        self.named = named
        self.viewers = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        issued = self.app.live.tabs.issue()
        if self.named:  # as a sign-in would: the viewer's name where the page reads it
            self.viewers += 1
            self.app.live.tabs.get(issued).state["name"] = viewer_name(self.viewers)
        headers = [*scope["headers"], (TAB_HEADER.lower().encode(), issued.encode())]
        scope = {**scope, "path": "/_live", "headers": headers}
        await self.live.handle(scope, receive, send)
