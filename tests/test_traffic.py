"""Traffic: requests timed and labelled by route template, with a request id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from livepages import App, Page, Settings
from livepages.hooks import RequestDone, RequestStarted
from livepages.testing import Client
from livepages.traffic import UNMATCHED, request_id_of

pytestmark = pytest.mark.anyio


def test_a_request_id_from_outside_is_kept_only_when_it_looks_like_one() -> None:
    assert request_id_of({"headers": [(b"x-request-id", b"abc-123")]}) == "abc-123"
    made = request_id_of({"headers": [(b"x-request-id", b"bad id\n{json}")]})
    assert len(made) == 16
    assert made != "bad id\n{json}"
    assert len(request_id_of({"headers": [(b"x-request-id", b"x" * 65)]})) == 16
    assert len(request_id_of({"headers": []})) == 16


@given(st.binary(max_size=100))
def test_any_header_value_gives_a_safe_id(value: bytes) -> None:
    made = request_id_of({"headers": [(b"x-request-id", value)]})
    assert 1 <= len(made) <= 64
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in made)


async def test_requests_are_labelled_by_template_mount_and_wrong_method() -> None:
    inner = Starlette(routes=[Route("/x/{id}", lambda r: PlainTextResponse("x"))])
    app = App(settings=Settings(secret_key="k"), routes=[Mount("/api", app=inner)])
    done: list[RequestDone] = []
    started: list[RequestStarted] = []
    app.hooks.add(RequestDone, done.append)
    app.hooks.add(RequestStarted, started.append)

    @app.page("/items/{item}")
    class Item(Page):
        item: str

        def render(self) -> str:
            return "<p>item</p>"

    async with Client(app) as client:
        await client.http.get("/items/1")
        await client.http.get("/api/x/2")
        await client.http.delete("/items/3")
        await client.http.get("/no/such/page")
    seen: list[Any] = [(d.method, d.route, d.status) for d in done]
    assert seen == [
        ("GET", "/items/{item}", 200),
        ("GET", "/api", 200),
        ("DELETE", "/items/{item}", 405),
        ("GET", UNMATCHED, 404),
    ]
    assert len(started) == 4
    assert all(d.duration >= 0 and len(d.request_id) == 16 and d.user_id is None for d in done)


async def test_nothing_wraps_requests_when_nothing_listens() -> None:
    app = App(settings=Settings(secret_key="k"))
    assert not app.traffic.watched()


async def test_a_live_stream_is_done_when_it_ends_not_when_it_leaves_the_middleware() -> None:
    app = App(settings=Settings(secret_key="k"))
    done: list[RequestDone] = []
    app.hooks.add(RequestDone, done.append)

    @app.page("/live")
    class Live(Page):
        def render(self) -> str:
            return "<p>live</p>"

    async with Client(app) as client:
        page = await client.get("/live")
        async with page.stream() as stream:
            await stream.next_event()
            assert [d.route for d in done] == ["/live"]  # the document only, so far
        for _ in range(100):  # the client left: the stream's request ends
            if len(done) == 2:
                break
            await asyncio.sleep(0.01)
    assert [(d.route, d.status) for d in done] == [("/live", 200), ("/live/_live", 200)]
