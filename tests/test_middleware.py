"""Security headers on every response, for livepages apps and for any ASGI app."""

from __future__ import annotations

import httpx
import pytest
from examples.index import create_app as examples_index
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from livepages.datastar.conformance import create_app as sdk_demo
from livepages.middleware import SECURITY_HEADERS, SecurityHeaders

pytestmark = pytest.mark.anyio


def assert_secured(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS:
        assert response.headers[name.decode()] == value.decode(), name


async def get(app: ASGIApp, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.get(path)


async def test_a_plain_starlette_app_gets_the_headers_and_keeps_its_own() -> None:
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi", headers={"X-Frame-Options": "DENY"})

    app = Starlette(routes=[Route("/", page)], middleware=[Middleware(SecurityHeaders)])
    response = await get(app, "/")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert_secured(await get(app, "/missing"))


async def test_the_examples_index_and_the_sdk_demo_send_them() -> None:
    assert_secured(await get(examples_index(), "/"))
    demo = await get(sdk_demo(), "/test")
    assert demo.status_code == 400  # no signals: a clear 400, with the headers
    assert_secured(demo)
