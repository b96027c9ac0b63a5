"""``Traffic``: every HTTP request of an app, timed, as ``RequestStarted`` and
``RequestDone`` lifecycle events (``livepages.hooks``), for metrics and logs.

It wraps the app only while something listens to those events, so an app without
metrics or logs pays one check per request. A request is labelled with the
template of the route that matched (``/rooms/{room}``), never its raw path, so that
metric labels stay few whatever URLs clients send. A live stream is one request,
done when the stream ends: its bodies bypass the wrapper (only the response start
is watched), so the per-write fan-out costs nothing more.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar

from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from livepages.hooks import Hooks, RequestDone, RequestStarted
from livepages.protocol import SESSION_SCOPE_KEY

__all__ = ["REQUEST_ID_HEADER", "UNMATCHED", "Traffic", "request_id", "request_id_of"]

#: A request id a proxy set is kept (when it looks like one); else one is made.
REQUEST_ID_HEADER = b"x-request-id"
#: The route label of a request that no route matched (a 404 for any path).
UNMATCHED = "<unmatched>"
_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")

#: The id of the request being served in this context (``""`` outside one): error
#: and stream logs carry it too.
request_id: ContextVar[str] = ContextVar("livepages_request_id", default="")

ASGICall = Callable[[Scope, Receive, Send], Awaitable[None]]


class Traffic:
    """Emits a ``RequestStarted`` and a ``RequestDone`` around each HTTP request."""

    def __init__(self, hooks: Hooks, routes: Sequence[BaseRoute]) -> None:
        self.hooks = hooks
        self.routes = routes

    def watched(self) -> bool:
        """Whether anything listens (:meth:`serve` passes the request straight on if not)."""
        return self.hooks.wants(RequestDone) or self.hooks.wants(RequestStarted)

    def serve(self, scope: Scope, receive: Receive, send: Send, app: ASGICall) -> Awaitable[None]:
        """Call ``app``, watching its response start, and report the request (only while
        something listens: otherwise ``app``'s own awaitable, with no frame of this
        method held for as long as the request, a live stream's included)."""
        if not self.watched():
            return app(scope, receive, send)
        return self._watch(scope, receive, send, app)

    async def _watch(self, scope: Scope, receive: Receive, send: Send, app: ASGICall) -> None:
        started = time.perf_counter()
        method = scope.get("method", "GET")
        # Routing rewrites the scope (mounts change root_path): match on a copy.
        probe = {"type": "http", "path": scope["path"], "root_path": scope.get("root_path", "")}
        token = request_id.set(request_id_of(scope))
        if self.hooks.wants(RequestStarted):
            self.hooks.emit(RequestStarted(method))
        status = 500  # unless a response starts: an error no layer answered

        def watch(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await app(scope, receive, watch)
        finally:
            if self.hooks.wants(RequestDone):
                probe["method"] = method
                route, duration = self.route(probe), time.perf_counter() - started
                done = RequestDone(
                    request_id.get(), method, route, status, duration, _user_id(scope)
                )
                self.hooks.emit(done)
            request_id.reset(token)

    def route(self, scope: Scope) -> str:
        """The template of the route that matches ``scope`` (a wrong method still names
        its route), or :data:`UNMATCHED`."""
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return _template(route)
            if match is Match.PARTIAL and partial is None:
                partial = route
        return UNMATCHED if partial is None else _template(partial)


def _template(route: BaseRoute) -> str:
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def request_id_of(scope: Scope) -> str:
    """The request's id: its ``X-Request-ID`` when that is 1 to 64 of ``A-Za-z0-9._-``
    (a proxy's), else 16 random hex digits."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _ID.fullmatch(value):
            return bytes(value).decode("ascii")
    return secrets.token_hex(8)


def _user_id(scope: Scope) -> str | None:
    session = scope.get(SESSION_SCOPE_KEY)
    return None if session is None else session.user_id
