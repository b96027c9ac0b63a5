"""Responses that depend on who asked: a browser navigation or a Datastar request."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livepages import App, Page, Redirect, redirect, safe_next
from livepages.datastar import events
from livepages.responses import error_event, is_datastar, redirect_response, validation_event


def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"datastar-request", b"true")], True),
        ([(b"datastar-request", b"false")], False),
        ([(b"datastar-request", b"1")], False),
        ([], False),
    ],
)
def test_is_datastar(headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert is_datastar(Request(scope(headers))) is expected
    assert is_datastar(scope(headers)) is expected


app = App()


@app.page("/rooms/{room}")
class Room(Page):
    room: str
    tab: str = "chat"

    async def render(self) -> str:
        return ""


def test_redirect_to_a_url_or_a_page() -> None:
    assert redirect("/x?y=1") == Redirect("/x?y=1")
    assert redirect(Room(room="a b", tab="files")) == Redirect("/rooms/a%20b?tab=files")


async def to(request: Request) -> Response:
    return redirect_response(request, "/next?a=1&b='2'")


plain = Starlette(routes=[Route("/go", to, methods=["POST"])])


@pytest.mark.anyio
async def test_redirect_response_is_303_for_a_browser() -> None:
    transport = httpx.ASGITransport(app=plain)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.post("/go")
    assert response.status_code == 303
    assert response.headers["location"] == "/next?a=1&b='2'"


@pytest.mark.anyio
async def test_redirect_response_is_a_script_patch_for_datastar() -> None:
    # Datastar v1.0 does not follow a 303 from fetch: it needs a 200 event stream.
    transport = httpx.ASGITransport(app=plain)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.post("/go", headers={"datastar-request": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.content == events.redirect("/next?a=1&b='2'")


def test_error_event_wire_format() -> None:
    assert error_event(404, 'no "room"') == (
        b"event: datastar-patch-signals\n"
        b'data: signals {"_error":{"status":404,"message":"no \\"room\\""}}\n'
        b"\n"
    )


def test_validation_event_lists_every_field() -> None:
    event = validation_event({"email": "is taken"}, ("name", "email", "age"))
    assert event == events.patch_signals({"errors": {"name": "", "email": "is taken", "age": ""}})


def test_validation_event_keeps_errors_for_unlisted_fields() -> None:
    event = validation_event({"form": "try again later"})
    assert event == events.patch_signals({"errors": {"form": "try again later"}})


def test_validation_event_with_no_errors_clears_every_field() -> None:
    assert validation_event({}, ("a", "b")) == events.patch_signals({"errors": {"a": "", "b": ""}})


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/notes", True),
        ("/notes?x=1&next=//evil", True),
        ("/%2F/evil.example", True),  # a browser does not decode it: still this site
        ("", False),
        (None, False),
        ("notes", False),
        ("//evil.example", False),
        ("/\\evil.example", False),
        ("http://evil.example", False),
        ("https:evil.example", False),
        ("/\t/evil.example", False),
        ("/notes\n", False),
        ("\x00/notes", False),
    ],
)
def test_safe_next_keeps_paths_of_this_site(target: str | None, safe: bool) -> None:
    assert (safe_next(target, default="/home") == target) is safe
    if not safe:
        assert safe_next(target, default="/home") == "/home"


@given(st.text(max_size=40))
def test_safe_next_never_leaves_the_site(target: str) -> None:
    result = safe_next(target)
    assert result == "/" or result == target
    # What a browser would do with it: drop tabs and newlines, read backslashes as slashes.
    seen = result.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    assert seen.startswith("/")
    assert not seen.startswith("//")
