"""The Content-Security-Policy: a fresh nonce per document, on its header and its script."""

from __future__ import annotations

import re

import httpx
import pytest
from jinja2 import DictLoader
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from livepages import App, NotFound, Page, Settings
from livepages.csp import ContentSecurityPolicy, nonce
from livepages.middleware import SecurityHeaders
from livepages.templates import Templates
from livepages.testing import Client

pytestmark = pytest.mark.anyio

SCRIPT_NONCE = re.compile(r'<script type="module" nonce="([^"]+)"')
HEADER_NONCE = re.compile(r"script-src 'nonce-([A-Za-z0-9_-]+)'")


def make_app(**settings: object) -> App:
    page = '<script nonce="{{ csp_nonce() }}" src="/app.js"></script>'
    templates = Templates(loader=DictLoader({"page.html": page}))
    options = Settings(secret_key="csp", **settings)  # type: ignore[arg-type]
    app = App(settings=options, templates=templates)

    @app.page("/")
    class Home(Page):
        def render(self) -> Markup:
            return self.template("page.html")

    @app.page("/broken")
    class Broken(Page):
        def render(self) -> str:
            raise NotFound("no such thing")

    return app


def nonces(response: httpx.Response) -> tuple[str, str]:
    """The nonce of the header and that of the document's Datastar script."""
    header = HEADER_NONCE.search(response.headers["content-security-policy"])
    script = SCRIPT_NONCE.search(response.text)
    assert header is not None
    assert script is not None
    return header.group(1), script.group(1)


async def test_every_page_has_a_fresh_nonce_on_its_header_and_script() -> None:
    async with Client(make_app()) as client:
        seen = set()
        for _ in range(3):
            page = await client.get("/")
            header, script = nonces(page.response)
            assert header == script
            assert len(header) >= 22  # 128 bits
            seen.add(header)
            # The page's own template got the same nonce from csp_nonce().
            assert f'<script nonce="{header}" src="/app.js">' in page.html
        assert len(seen) == 3


async def test_the_policy_is_the_documented_one() -> None:
    async with Client(make_app()) as client:
        policy = (await client.get("/")).response.headers["content-security-policy"]
    assert re.fullmatch(
        r"script-src 'nonce-[A-Za-z0-9_-]+' 'strict-dynamic' 'unsafe-eval'; connect-src 'self'; "
        r"object-src 'none'; base-uri 'self'; frame-ancestors 'self'",
        policy,
    )


async def test_error_pages_carry_the_nonce_too() -> None:
    async with Client(make_app()) as client:
        for path in ("/broken", "/nowhere"):
            response = await client.http.get(path)
            assert response.status_code == 404
            header, script = nonces(response)
            assert header == script


async def test_more_connect_sources_and_the_off_switch() -> None:
    async with Client(make_app(csp_connect_src=("https://api.example.com",))) as client:
        policy = (await client.get("/")).response.headers["content-security-policy"]
    assert "connect-src 'self' https://api.example.com;" in policy
    async with Client(make_app(csp=False)) as client:
        page = await client.get("/")
    assert page.response.headers.get_list("content-security-policy") == ["frame-ancestors 'self'"]
    assert '<script type="module" nonce=' in page.html  # harmless without a policy


async def test_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {"LIVEPAGES_CSP": "0", "LIVEPAGES_CSP_CONNECT_SRC": "https://a.example, wss://b.example"}
    )
    assert settings.csp is False
    assert settings.csp_connect_src == ("https://a.example", "wss://b.example")


async def test_a_policy_the_app_sets_itself_is_kept() -> None:
    async def own(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x", headers={"Content-Security-Policy": "default-src 'none'"})

    policy = ContentSecurityPolicy()
    app = Starlette(
        routes=[Route("/", own)], middleware=[Middleware(SecurityHeaders, policy=policy)]
    )
    async with Client(app) as client:
        response = await client.http.get("/")
    assert response.headers.get_list("content-security-policy") == ["default-src 'none'"]


def test_a_nonce_is_made_once_per_request() -> None:
    scope: dict[str, object] = {}
    first = nonce(scope)
    assert nonce(scope) == first
    assert nonce({}) != first
    assert ContentSecurityPolicy().header(None).startswith(b"script-src 'strict-dynamic'")
