"""Aborting a client's connection: what ASGI cannot say.

ASGI lets an application finish a response or return without finishing it; it
has no message that closes the connection at once. A server told nothing more
closes it gracefully, which waits until every byte queued for the client is
written: a client that stopped reading keeps its socket, and the bytes queued
for it, for as long as it stays connected. For a live stream dropped because
its client stopped reading, that is exactly the wrong thing.

``abort_connection`` closes the connection at once where the server makes that
possible, and says whether it could. Measured (see docs/live.md):

- **uvicorn**: its ``send`` is a method of the request's cycle object, which
  holds the connection's asyncio transport; ``transport.abort()`` closes the
  socket and discards the queue. uvicorn then reports a disconnect, so the
  request ends without an error.
- **hypercorn** and **granian** expose no transport: the connection stays until
  the client reads or goes away (or a proxy in front times it out).

The live engine keeps the server's own ``send`` for this (the one it sees may
be wrapped by middleware): ``App`` records it, and so does
``livepages.server.run`` for apps mounted inside others.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope, Send

__all__ = ["SERVER_SEND", "abort_connection", "record_server_send"]

#: The scope key under which the outermost livepages code keeps the server's ``send``.
SERVER_SEND = "livepages.server_send"


def record_server_send(scope: Scope, send: Send) -> None:
    """Remember ``send`` as the server's own, unless an outer layer already did."""
    scope.setdefault(SERVER_SEND, send)


def abort_connection(server_send: Send) -> bool:
    """Close the connection behind the server's ``send`` at once; whether it could."""
    transport: Any = getattr(getattr(server_send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if abort is None or not callable(abort):
        return False
    abort()
    return True
