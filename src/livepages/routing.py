"""Routing pieces of a livepages app beyond Starlette's own.

:class:`SlashRedirect` answers a path that matches only with (or without) a
trailing slash. Starlette does this too, but writes the client's ``Host`` header
into ``Location``, which lets anyone who controls that header (a cache poisoned
with it, a misrouted proxy) send the visitor elsewhere; this one redirects
within the site: a path, never a host.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import Receive, Scope, Send

__all__ = ["SlashRedirect"]


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
