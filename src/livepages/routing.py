"""Routing: the routes of a page, and the trailing-slash redirect.

:class:`PageRoutes` turns one planned page into its Starlette routes.
:class:`SlashRedirect` answers a path that matches only with (or without) a
trailing slash. Starlette does this too, but writes the client's ``Host`` header
into ``Location``, which lets anyone who controls that header (a cache poisoned
with it, a misrouted proxy) send the visitor elsewhere; this one redirects
within the site: a path, never a host.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

from livepages.dispatch import ACTION_METHODS, Dispatcher
from livepages.documents import Documents
from livepages.live import LiveEngine
from livepages.plans import PagePlan
from livepages.protocol import ACTION_PREFIX, LIVE_PATH

__all__ = ["PageHost", "PageRoutes", "SlashRedirect"]


class SlashRedirect:
    """A router's ``default``: redirect ``/a/`` to ``/a`` (or back) if that matches.

    Install with ``router.redirect_slashes = False; router.default = SlashRedirect(router)``.
    Anything else is a 404 through the app's error handling.
    """

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = self._other_path(scope)
            if target is not None:
                response = RedirectResponse(target, status_code=307)
                await response(scope, receive, send)
                return
        if scope["type"] == "websocket":
            await self.router.not_found(scope, receive, send)
            return
        raise HTTPException(status_code=404)

    def _other_path(self, scope: Scope) -> str | None:
        """The path-only URL with the slash toggled, if a route matches it."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        route_path = path.removeprefix(root) if path.startswith(root) else path
        if route_path in ("", "/"):
            return None
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        moved = {**scope, "path": other}
        if not any(route.matches(moved)[0] is not Match.NONE for route in self.router.routes):
            return None
        # "//host/x" in Location would be a link to another site: one leading slash.
        location = "/" + other.lstrip("/")
        query: bytes = scope.get("query_string", b"")
        return location + ("?" + query.decode("latin-1") if query else "")


class PageHost(Protocol):
    """What a page's routes need of the app that serves them (``App`` is one)."""

    documents: Documents
    dispatcher: Dispatcher
    live: LiveEngine

    async def startup(self) -> None:
        """Start the app's broker and stores, once."""
        ...


class PageRoutes:
    """The routes of one page: its document, its live stream, and its actions::

    GET  /rooms/{room}                   the full document
    GET  /rooms/{room}/_live             its live stream (live pages only)
    POST /rooms/{room}/_action/{name}    its actions (PUT, PATCH, DELETE too)
    """

    def __init__(self, plan: PagePlan, host: PageHost) -> None:
        self.plan = plan
        self.host = host

    def routes(self) -> list[BaseRoute]:
        """The Starlette routes, most specific first."""
        base, name = self.plan.spec.path.rstrip("/"), self.plan.cls.__name__
        found: list[BaseRoute] = []
        if self.plan.cls.live:
            stream = _Stream(self)  # an ASGI app, not a function: the stream owns its response
            found.append(Route(base + LIVE_PATH, stream, methods=["GET"], name=name + ".live"))
        found.append(
            Route(
                base + ACTION_PREFIX + "{_action}",
                self.action,
                methods=list(ACTION_METHODS),
                name=name + ".action",
            )
        )
        found.append(Route(self.plan.spec.path, self.document, methods=["GET", "HEAD"], name=name))
        return found

    async def document(self, request: Request) -> Response:
        """GET: the page's whole document."""
        return await self.host.documents.page(self.plan, request, self.host)

    async def action(self, request: Request) -> Response:
        """POST (PUT, PATCH, DELETE): one of the page's actions."""
        return await self.host.dispatcher.page_action(self.plan, request, self.host)

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET ``/_live``: the page's live stream."""
        await self.host.startup()
        await self.host.live.serve(self.plan, scope, receive, send)


class _Stream:
    """A page's ``/_live`` route as a plain ASGI app (Starlette wraps functions as
    request-response endpoints; a stream writes its own response)."""

    def __init__(self, routes: PageRoutes) -> None:
        self.routes = routes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Hands back the stream's coroutine: one frame fewer held per open stream.
        return self.routes.stream(scope, receive, send)
