"""The app that ``tests/test_scaling.py`` runs as several processes against one NATS.

It is configured by the environment alone, as a deployment would be:
``LIVEPAGES_NATS_URL`` puts its broker and its sessions on NATS, and every process
gets the same ``LIVEPAGES_SECRET_KEY`` so that each opens the others' cookies.

``/notes`` shows who is signed in and the latest note; its ``post`` action publishes
the note to every process (a fine-grained patch of ``#note``), ``sign_in`` and
``sign_out`` change the session. ``/process`` answers the serving process's PID, so a
test can see which process a load balancer sent a request to.

``/filter`` shows a search box whose query is kept in ``tab.state`` (its ``search``
action sets it, on whichever process it lands), who is signed in, and the PID of the
process that rendered it. ``/board`` shows a count that each process keeps for
itself; ``bump`` adds one and publishes ``Bumped`` (a 503 while NATS is away, after
the count went up: the view shows it once it renders again). ``/stats`` says how many
renders this process has made.

``python -m tests.scaling_app PORT`` serves it with ``livepages.server.run``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from livepages import (
    SSE,
    App,
    Event,
    Page,
    Redirect,
    Session,
    Settings,
    Tab,
    action,
    invoke,
    on,
    redirect,
)
from livepages.live import LiveStats
from livepages.server import run

__all__ = ["Bumped", "Note", "Posted", "Query", "app"]


@dataclass
class Posted(Event, subject="notes"):
    """A note was posted, on any process."""

    text: str


@dataclass
class Note:
    """The signals of ``post``."""

    text: str


@dataclass
class User:
    """The signals of ``sign_in``."""

    user: str


@dataclass
class Bumped(Event, subject="board"):
    """A process's count went up."""

    count: int


@dataclass
class Query:
    """The signals of ``search``."""

    query: str


async def render_count(request: Request) -> JSONResponse:
    return JSONResponse({"renders": stats.renders})


# Short heartbeats, so a stream that should have ended is noticed quickly.
app = App(
    settings=Settings.from_env(heartbeat=0.5),
    sessions=True,
    routes=[Route("/stats", render_count)],
    head='<link rel="icon" href="data:,">',  # no favicon request to fail
)
stats = LiveStats()
stats.listen(app.hooks)


@app.page("/notes")
class Notes(Page):
    def render(self, session: Session[Any]) -> str:
        who = session.user_id or "guest"
        return f'<p id="who">{who}</p><p id="note">none yet</p>'

    @on(Posted)
    async def posted(self, event: Posted, sse: SSE) -> None:
        await sse.patch_elements(f'<p id="note">{event.text}</p>')

    @action
    async def post(self, note: Note) -> None:
        await app.publish(Posted(note.text))

    @action
    async def sign_in(self, user: User, session: Session[Any]) -> Redirect:
        await session.sign_in(user.user)
        return redirect("/notes")  # the page reloads with the new session's CSRF token

    @action
    async def sign_out(self, session: Session[Any]) -> Redirect:
        await session.sign_out()
        return redirect("/notes")


@app.page("/filter")
class Filter(Page):
    def render(self, tab: Tab, session: Session[Any]) -> str:
        query = escape(tab.state.get("query", ""))
        search = escape(invoke(self.search))
        return (
            f'<input id="search" value="{query}" data-bind:query'
            f' data-on:input__debounce.100ms="{search}">'
            f'<p id="query">{query}</p>'
            f'<p id="who">{escape(session.user_id or "guest")}</p>'
            f'<p id="served">{os.getpid()}</p>'
        )

    @action
    async def search(self, query: Query, tab: Tab) -> None:
        tab.state["query"] = query.query


#: This process's count (each process has its own).
board = {"count": 0}


@app.page("/board")
@on(Bumped)
class Board(Page):
    def render(self) -> str:
        return f'<p id="count">{board["count"]}</p>'

    @action
    async def bump(self) -> None:
        board["count"] += 1
        await app.publish(Bumped(board["count"]))


async def process(request: Request) -> PlainTextResponse:
    """The PID of the process that answers."""
    return PlainTextResponse(str(os.getpid()))


app.add_route("/process", process)


if __name__ == "__main__":
    run(app, port=int(sys.argv[1]), log_level="warning")
