"""Structured logs: one JSON line per request, per stream close and per error, no secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from livepages import App, Page, Session, Settings, action
from livepages.logs import ACCESS_LOGGER, Logs, configure_logging
from livepages.testing import Client

pytestmark = pytest.mark.anyio

SECRET = "a-secret-key-that-must-never-be-logged"
USER = "alice@example.org"


@dataclass
class Credentials:
    user: str


def make_app() -> App:
    app = App(settings=Settings(secret_key=SECRET), sessions=True)

    @app.page("/rooms/{room}")
    class Room(Page):
        room: str

        def render(self) -> str:
            if self.room == "broken":
                raise RuntimeError("broken room")
            return f"<p>{self.room}</p>"

        @action
        async def sign_in(self, session: Session[Any], credentials: Credentials) -> None:
            await session.sign_in(credentials.user)

    return app


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = configure_logging(debug=False, stream=out)
    try:
        yield out
    finally:
        logging.getLogger("livepages").removeHandler(handler)
        logging.getLogger("livepages").setLevel(logging.NOTSET)


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_request_a_stream_close_and_an_error_give_one_json_line_each(
    lines: io.StringIO,
) -> None:
    app = make_app()
    logs = Logs(app)
    async with Client(app) as client:
        guest = await client.get("/rooms/a")
        signed = await guest.action("sign_in", {"user": USER})
        assert signed.status_code == 200
        cookies = [c.value for c in client.http.cookies.jar if c.value]
        page = await client.get("/rooms/a", headers={"x-request-id": "req-42"})
        async with page.stream() as stream:
            await stream.next_event()
        await asyncio.sleep(0.05)
        broken = await client.get("/rooms/broken")
    assert broken.status_code == 500
    text = lines.getvalue()
    got = records(lines)

    requests = [r for r in got if r.get("event") == "request"]
    assert len(requests) == 5  # two GETs, the action, the stream, the 500
    [room] = [r for r in requests if r["request_id"] == "req-42"]
    assert room["method"] == "GET"
    assert room["route"] == "/rooms/{room}"
    assert room["status"] == 200
    assert room["duration_ms"] >= 0
    assert room["user"] == logs.user_hash(USER)
    assert room["logger"] == ACCESS_LOGGER
    assert room["level"] == "info"
    assert {"time", "message"} <= room.keys()

    [closed] = [r for r in got if r.get("event") == "stream_closed"]
    assert (closed["page"], closed["reason"]) == ("Room", "client_left")
    assert closed["duration_ms"] >= 0

    [error] = [r for r in got if r.get("event") == "error"]
    assert (error["method"], error["path"], error["error"]) == (
        "GET",
        "/rooms/broken",
        "RuntimeError",
    )
    assert error["recovered"] is False
    assert error["request_id"]
    assert "broken room" in error["exception"]
    assert next(r for r in requests if r["status"] == 500)["request_id"] == error["request_id"]

    # No secret: the key, the user id in clear, the cookies, the CSRF token.
    assert page.csrf
    assert cookies
    for secret in [SECRET, USER, page.csrf, *cookies]:
        assert secret not in text


async def test_development_lines_are_readable(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    handler = configure_logging(debug=True, stream=out)
    try:
        app = make_app()
        Logs(app)
        async with Client(app) as client:
            await client.get("/rooms/a", headers={"x-request-id": "dev-1"})
    finally:
        logging.getLogger("livepages").removeHandler(handler)
        logging.getLogger("livepages").setLevel(logging.NOTSET)
    [line] = [line for line in out.getvalue().splitlines() if "dev-1" in line]
    assert "INFO" in line
    assert "GET /rooms/{room} 200" in line
    assert line.endswith("[dev-1]")
    assert not line.startswith("{")
