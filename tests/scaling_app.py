"""The app that ``tests/test_scaling.py`` runs as several processes against one NATS.

It is configured by the environment alone, as a deployment would be:
``LIVEPAGES_NATS_URL`` puts its broker and its sessions on NATS, and every process
gets the same ``LIVEPAGES_SECRET_KEY`` so that each opens the others' cookies.

``/notes`` shows who is signed in and the latest note; its ``post`` action publishes
the note to every process (a fine-grained patch of ``#note``), ``sign_in`` and
``sign_out`` change the session. ``/process`` answers the serving process's PID, so a
test can see which process a load balancer sent a request to.

``python -m tests.scaling_app PORT`` serves it with ``livepages.server.run``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse

from livepages import SSE, App, Event, Page, Redirect, Session, Settings, action, on, redirect
from livepages.server import run

__all__ = ["Note", "Posted", "app"]


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


# Short heartbeats, so a stream that should have ended is noticed quickly.
app = App(settings=Settings.from_env(heartbeat=0.5), sessions=True)


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


async def process(request: Request) -> PlainTextResponse:
    """The PID of the process that answers."""
    return PlainTextResponse(str(os.getpid()))


app.add_route("/process", process)


if __name__ == "__main__":
    run(app, port=int(sys.argv[1]), log_level="warning")
