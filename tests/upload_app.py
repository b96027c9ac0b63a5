"""The app that ``tests/uploads/test_browser.py`` runs as a process it can kill mid-upload
(and ``tests/uploads/test_cluster.py`` as two processes on NATS).

Configured by the environment alone (``Settings.from_env``): the secret key and the
upload folder stay the same across a restart, so a page loaded before it keeps its
tab and its upload. ``LIVEPAGES_TEST_CHUNK_DELAY`` (seconds) slows every chunk
down, so a test can stop the process while a 20 MB upload is under way on localhost.

``/`` shows a file input bound to the signal ``photos``, its progress, and the files
that the ``keep`` action received in this tab (name, size, SHA-256 of the bytes); ``bump``
changes the page, so it re-renders.

``python -m tests.upload_app PORT`` serves it with ``livepages.server.run``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from html import escape

from starlette.types import ASGIApp, Receive, Scope, Send

from livepages import App, Page, Settings, Tab, Uploaded, action, invoke
from livepages.protocol import UPLOAD_PATH
from livepages.server import run

DELAY = float(os.environ.get("LIVEPAGES_TEST_CHUNK_DELAY", "0"))

app = App(settings=Settings.from_env())


@app.page("/")
class Home(Page):
    def render(self, tab: Tab) -> str:
        # What ``keep`` received in this tab.
        items = "".join(f"<li>{escape(line)}</li>" for line in tab.state.get("kept", []))
        return (
            f'<input id="file" type="file" multiple {app.uploads.attributes("photos")}>'
            '<p>state <span id="state" data-text="$_uploads.photos.state"></span>'
            ' <span id="percent" data-text="$_uploads.photos.percent"></span>%'
            ' <span id="message" data-text="$_uploads.photos.message"></span></p>'
            '<button id="cancel" data-lp-cancel="photos">Cancel</button>'
            f'<button id="keep" data-on:click="{escape(invoke(self.keep))}">Keep</button>'
            f'<ul id="kept">{items}</ul>'
            f'<button id="bump" data-on:click="{escape(invoke(self.bump))}">Bump</button>'
            f'<p id="bumps">{tab.state.get("bumps", 0)}</p>'
        )

    @action
    async def bump(self, tab: Tab) -> None:
        """Change the page, so that it re-renders (during an upload, say)."""
        tab.state["bumps"] = tab.state.get("bumps", 0) + 1

    @action
    async def keep(self, photos: list[Uploaded], tab: Tab) -> None:
        kept = tab.state.setdefault("kept", [])
        for photo in photos:
            digest = hashlib.sha256(photo.read_bytes()).hexdigest()
            kept.append(f"{photo.name} {photo.size} {digest}")
            photo.discard()


class SlowChunks:
    """Holds every chunk ``DELAY`` seconds before the app reads it."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunk = scope["type"] == "http" and scope["method"] == "PATCH"
        if chunk and scope["path"].startswith(UPLOAD_PATH + "/"):
            await asyncio.sleep(DELAY)
        await self.inner(scope, receive, send)


if __name__ == "__main__":
    run(SlowChunks(app) if DELAY else app, port=int(sys.argv[1]), log_level="warning")
