"""``Handoff``: how a live stream skips the layers between its app and its endpoint.

A live stream is one long request. Inside an app, every layer between the app
and the stream's endpoint (Starlette's error layers, the router, livepages' own
header middleware) only watches the response start; each layer held for the
life of the stream would cost memory (its frame, its closures, the request's
objects: several KiB per stream, measured in benchmarks/fanout/README.md) and
each body write through it would cost time, once per viewer per change.

When every such layer passes bodies through (``live.passes_bodies_through``),
``App`` puts a :class:`Handoff` in the scope under :data:`HANDOFF`. The stream
then writes its bodies through :attr:`Handoff.send`, the ``send`` the app was
called with, and once its response has started it returns through the layers,
leaving the rest of its request (:attr:`Handoff.rest`) for the app's own call
to await. Middleware outside the app sees the whole stream either way; an app
with a layer that may change bodies puts no handoff in the scope, and its streams
take the plain path through every layer.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from starlette.types import Send

__all__ = ["HANDOFF", "Handoff"]

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
