"""The trailing-slash redirect: within the site, whatever the Host header says."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Message

from livepages import App, Page

pytestmark = pytest.mark.anyio


def make_app() -> App:
    app = App()

    @app.page("/rooms/{room}")
    class Room(Page):
        room: str

        def render(self) -> str:
            return f"<p>{self.room}</p>"

    @app.page("/about/")
    class About(Page):
        def render(self) -> str:
            return "<p>about</p>"

    return app


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/rooms/42/", "/rooms/42"),
        ("/rooms/42/?x=1&y=%2F", "/rooms/42?x=1&y=%2F"),
        ("/about", "/about/"),
    ],
)
async def test_a_slash_redirect_stays_on_the_site(path: str, location: str) -> None:
    async with client(make_app()) as http:
        response = await http.get(path, headers={"Host": "evil.example"})
        assert response.status_code == 307
        assert response.headers["location"] == location
        assert response.headers["x-frame-options"] == "SAMEORIGIN"


async def test_a_slash_redirect_keeps_the_mount_prefix() -> None:
    outer = Starlette(routes=[Mount("/chat", app=make_app())])
    async with client(outer) as http:
        response = await http.get("/chat/rooms/42/", headers={"Host": "evil.example"})
        assert response.status_code == 307
        assert response.headers["location"] == "/chat/rooms/42"


async def test_a_path_with_leading_slashes_never_redirects_off_site() -> None:
    app = make_app()

    @app.page("/{name:path}.html")
    class Trap(Page):
        name: str

        def render(self) -> str:
            return ""

    # httpx would read "//evil.example/" as a host: send the scope as a server would.
    scope = {
        "type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "//evil.example.html/", "raw_path": b"//evil.example.html/", "root_path": "",
        "query_string": b"", "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    assert start["status"] == 307
    location = dict(start["headers"])[b"location"]
    assert location == b"/evil.example.html"  # not "//evil.example.html": another host


async def test_no_match_either_way_is_the_apps_404() -> None:
    app = make_app()

    @app.error_page(404)
    def not_found(request: object, exc: object) -> str:
        return "<p>nothing here</p>"

    async with client(app) as http:
        response = await http.get("/nowhere/")
        assert response.status_code == 404
        assert "nothing here" in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
