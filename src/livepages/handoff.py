"""``Handoff``: how a live stream skips the layers between its app and its endpoint.

A live stream is one long request. Inside an app, every layer between the app
and the stream's endpoint (Starlette's error layers, the router, livepages' own
header middleware) only watches the response start; each layer held for the
life of the stream would cost memory (its frame, its closures, the request's
objects: several KiB per stream, measured in benchmarks/fanout/README.md) and
each body write through it would cost time, once per viewer per change.

When every such layer passes bodies through (``live.passes_bodies_through``),
``App`` calls its stack through :func:`handing_off`, which puts a :class:`Handoff`
in the scope under :data:`HANDOFF`. The stream
then writes its bodies through :attr:`Handoff.send`, the ``send`` the app was
called with, and once its response has started it returns through the layers,
leaving the rest of its request (:attr:`Handoff.rest`) for the app's own call
to await. Middleware outside the app sees the whole stream either way; an app
with a layer that may change bodies puts no handoff in the scope, and its streams
take the plain path through every layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HANDOFF", "Handoff", "handing_off"]

#: The scope key of the request's :class:`Handoff`, when its app sets one.
HANDOFF = "livepages.handoff"


class Handoff:
    """What an app offers the live stream it serves: its own ``send``, and a slot for
    the rest of the stream, which the app awaits once the layers have returned."""

    __slots__ = ("rest", "send")

    def __init__(self, send: Send) -> None:
        #: The ``send`` the app was called with: bodies need none of its layers.
        self.send = send
        #: The rest of the stream, left by the live engine; None for any other request.
        self.rest: Coroutine[Any, Any, None] | None = None

    def take(self) -> Coroutine[Any, Any, None] | None:
        """The rest of the stream, once (None if none was left)."""
        rest, self.rest = self.rest, None
        return rest


def handing_off(stack: ASGIApp, bodies_pass_through: bool) -> ASGIApp:
    """``stack`` (an app's middleware around its router) as its app calls it: offering
    its streams a :class:`Handoff` when ``bodies_pass_through``, else taking away an
    outer app's (this app's layers must see its streams whole)."""
    return _Offering(stack) if bodies_pass_through else _Withholding(stack)


class _Offering:
    """Offers each request a handoff; awaits the rest of a stream that took it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handoff = scope[HANDOFF] = Handoff(send)
        try:
            await self.app(scope, receive, send)
        except BaseException:
            rest = handoff.take()
            if rest is not None:
                rest.close()  # a layer failed after the stream left it: never started
            raise
        rest = handoff.take()
        if rest is not None:
            await rest  # a live stream that left the layers: the rest of it


class _Withholding:
    """Takes an outer app's handoff away: no frame of its own (a plain function)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        scope.pop(HANDOFF, None)
        return self.app(scope, receive, send)
