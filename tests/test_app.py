"""The App: error pages and hooks, debug output, middleware, lifespan, plain routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from markupsafe import Markup
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livepages import App, NotFound, Page, Settings, ValidationError, action
from livepages.datastar import patch_signals
from livepages.testing import LiveServer


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def body_of(document: str) -> str:
    return document.split('<main id="lp-root">', 1)[1].rsplit("</main>", 1)[0]


DATASTAR = {"datastar-request": "true"}
SECRET = "password=hunter2"


def failing_app(**options: Any) -> App:
    app = App(**options)

    @app.page("/boom")
    class Boom(Page):
        async def render(self) -> str:
            raise RuntimeError(SECRET)

        @action
        async def explode(self) -> None:
            raise RuntimeError(SECRET)

    @app.page("/gone/{id}")
    class Gone(Page):
        id: int

        async def render(self) -> str:
            raise NotFound(f"item {self.id} was deleted")

    @app.page("/invalid")
    class Invalid(Page):
        async def render(self) -> str:
            raise ValidationError({"q": "is too short"})

        @action
        async def fine(self) -> None:
            pass

    return app


# -- errors ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_production_500_page_does_not_leak_the_error() -> None:
    async with client(failing_app()) as c:
        response = await c.get("/boom")
    assert response.status_code == 500
    assert body_of(response.text) == "<h1>500</h1><p>Something went wrong</p>"
    assert SECRET not in response.text
    assert "Traceback" not in response.text


@pytest.mark.anyio
async def test_datastar_request_error_is_a_500_signal_patch_without_details() -> None:
    async with client(failing_app()) as c:
        response = await c.post("/boom/_action/explode", headers=DATASTAR)
    assert response.status_code == 200  # Datastar v1.0 reads only 200 bodies
    assert response.content == patch_signals(
        {"_error": {"status": 500, "message": "Something went wrong"}}
    )


@pytest.mark.anyio
async def test_debug_500_shows_the_traceback() -> None:
    app = failing_app(settings=Settings(debug=True))
    async with client(app) as c:
        response = await c.get("/boom")
    assert response.status_code == 500
    assert "Traceback (most recent call last)" in response.text
    assert f"RuntimeError: {SECRET}" in response.text


@pytest.mark.anyio
async def test_debug_mode_uses_the_livepages_error_handling() -> None:
    app = failing_app(settings=Settings(debug=True))
    seen: list[BaseException] = []
    app.on_error(lambda request, exc: seen.append(exc))
    async with client(app) as c:
        page = await c.get("/boom")
        patch = await c.post("/boom/_action/explode", headers=DATASTAR)
    assert [str(e) for e in seen] == [SECRET, SECRET]
    assert body_of(page.text).startswith("<h1>500</h1><p>Something went wrong</p><pre>Traceback")
    assert patch.status_code == 200


@pytest.mark.anyio
async def test_debug_argument_overrides_the_settings() -> None:
    app = failing_app(settings=Settings(title="kept"), debug=True)
    assert app.settings.debug
    assert app.debug
    assert app.settings.title == "kept"


@pytest.mark.anyio
async def test_error_hooks_get_the_request_and_the_exception() -> None:
    app = failing_app()
    seen: list[tuple[str, str, str]] = []

    @app.on_error
    def sync_hook(request: Request, exc: BaseException) -> None:
        seen.append(("sync", request.url.path, str(exc)))

    @app.on_error
    async def async_hook(request: Request, exc: BaseException) -> None:
        seen.append(("async", request.method, type(exc).__name__))

    async with client(app) as c:
        assert (await c.get("/boom")).status_code == 500
        assert (await c.get("/gone/1")).status_code == 404  # HTTP errors are not reported
    assert seen == [("sync", "/boom", SECRET), ("async", "GET", "RuntimeError")]


@pytest.mark.anyio
async def test_a_broken_hook_does_not_hide_the_error() -> None:
    app = failing_app()
    seen: list[str] = []

    @app.on_error
    def broken(request: Request, exc: BaseException) -> None:
        raise ValueError("hook bug")

    @app.on_error
    def after(request: Request, exc: BaseException) -> None:
        seen.append(str(exc))

    async with client(app) as c:
        response = await c.get("/boom")
    assert response.status_code == 500
    assert body_of(response.text) == "<h1>500</h1><p>Something went wrong</p>"
    assert seen == [SECRET]


@pytest.mark.anyio
async def test_custom_error_pages_per_status() -> None:
    app = failing_app()

    @app.error_page(404)
    async def not_found(request: Request, exc: Any) -> Markup:
        return Markup("<p>Lost: {}</p>").format(exc.detail)

    @app.error_page(500)
    def crashed(request: Request, exc: Any) -> str:
        return f"<p>Sorry ({exc.status_code})</p>"

    async with client(app) as c:
        gone = await c.get("/gone/3")
        boom = await c.get("/boom")
        unknown = await c.get("/nowhere")
    assert (gone.status_code, body_of(gone.text)) == (404, "<p>Lost: item 3 was deleted</p>")
    assert "<title>404 item 3 was deleted</title>" in gone.text
    assert (boom.status_code, body_of(boom.text)) == (500, "<p>Sorry (500)</p>")
    assert (unknown.status_code, body_of(unknown.text)) == (404, "<p>Lost: Not Found</p>")


@pytest.mark.anyio
async def test_error_page_for_a_bad_parameter() -> None:
    app = failing_app()
    app.error_page(400)(lambda request, exc: Markup("<p>{}</p>").format(exc.detail))
    async with client(app) as c:
        response = await c.get("/gone/x")
    assert response.status_code == 400
    assert body_of(response.text) == (
        "<p>invalid value for parameter &#39;id&#39;: &#39;x&#39; is not an integer</p>"
    )


@pytest.mark.anyio
@pytest.mark.parametrize("failure", ["raises", "returns-none"])
async def test_a_broken_error_page_falls_back_to_the_default(failure: str) -> None:
    app = failing_app()

    @app.error_page(404)
    def broken(request: Request, exc: Any) -> Any:
        if failure == "raises":
            raise KeyError("error page bug")
        return None

    async with client(app) as c:
        response = await c.get("/gone/3")
    assert response.status_code == 404
    assert body_of(response.text) == "<h1>404</h1><p>item 3 was deleted</p>"


@pytest.mark.anyio
async def test_http_error_from_render_for_datastar() -> None:
    async with client(failing_app()) as c:
        response = await c.get("/gone/3", headers=DATASTAR)
    assert response.status_code == 200
    assert response.content == patch_signals(
        {"_error": {"status": 404, "message": "item 3 was deleted"}}
    )


@pytest.mark.anyio
async def test_validation_error_from_render() -> None:
    async with client(failing_app()) as c:
        page = await c.get("/invalid")
        patch = await c.get("/invalid", headers=DATASTAR)
    assert page.status_code == 422
    assert body_of(page.text) == "<h1>422</h1><p>q: is too short</p>"
    assert patch.content == patch_signals({"errors": {"q": "is too short"}})


# -- Starlette features -------------------------------------------------------------------


class Stamp:
    """Middleware that stamps every response, to show it wraps every route."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-stamp", self.name.encode())]
            await send(message)

        await self.app(scope, receive, stamped)


@pytest.mark.anyio
async def test_middleware_wraps_pages_actions_errors_and_plain_routes() -> None:
    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = failing_app(
        middleware=[Middleware(Stamp, name="outer")], routes=[Route("/health", health)]
    )
    app.add_middleware(Stamp, name="added")
    async with client(app) as c:
        responses = [
            await c.get("/health"),
            await c.get("/gone/1"),
            await c.get("/nowhere"),
            await c.post("/invalid/_action/fine"),
            await c.post("/invalid/_action/fine", headers=DATASTAR),
        ]
        # A 500 is answered by Starlette's ServerErrorMiddleware, outside user middleware.
        crash = await c.post("/boom/_action/explode")
    assert responses[0].text == "ok"
    for response in responses:
        assert response.headers.get_list("x-stamp") == ["outer", "added"], response.url
    assert crash.status_code == 500


def test_lifespan_runs_around_the_server() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("start")
        app.state.greeting = "hello"
        yield
        events.append("stop")

    app = App(lifespan=lifespan)

    @app.page("/")
    class Home(Page):
        async def render(self, request: Request) -> str:
            return str(request.app.state.greeting)

    with LiveServer(app) as server:
        assert events == ["start"]
        response = httpx.get(server.url + "/")
    assert body_of(response.text) == "hello"
    assert events == ["start", "stop"]


def test_lifespan_state_reaches_requests() -> None:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, str]]:
        yield {"db": "connected"}

    app = App(lifespan=lifespan)

    @app.page("/")
    class Home(Page):
        async def render(self, request: Request) -> str:
            return str(getattr(request.state, "db", "missing"))

    with LiveServer(app) as server:
        response = httpx.get(server.url + "/")
    assert body_of(response.text) == "connected"
