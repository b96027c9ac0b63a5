"""Running an app: uvicorn, with live streams ended at once on shutdown.

uvicorn stops by waiting for open responses to finish before it runs the
lifespan shutdown, and a live stream never finishes by itself. ``run`` ends
the streams of every livepages app it serves (mounted ones included) as soon
as the server is asked to stop; browsers then reconnect to the next server.
It also bounds request heads and idle connections (``livepages.limits``).

``run`` also hands every request the server's own ``send`` (before any
middleware wraps it), so that a live stream dropped for a stuck write aborts
its connection at once, mounted apps included (``livepages.abort``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from livepages.abort import record_server_send
from livepages.limits import HTTP, Config, ServerLimits

__all__ = ["livepages_apps", "run", "stream_owners"]


def livepages_apps(app: Any) -> Iterator[Any]:
    """Every livepages ``App`` in an ASGI app tree: the app itself, what it mounts, and
    the app inside a middleware that wraps it (its ``app`` attribute)."""
    from livepages.app import App

    return (node for node in _tree(app) if isinstance(node, App))


def stream_owners(app: Any) -> Iterator[Any]:
    """What a stopping server tells to end its live streams (``close_streams()``): every
    livepages ``App`` in the tree, and any other layer that has the method (the dev
    server's own, ``livepages.dev.child``)."""
    return (node for node in _tree(app) if callable(getattr(node, "close_streams", None)))


def _tree(app: Any) -> Iterator[Any]:
    from livepages.app import App

    yield app
    routes = getattr(getattr(app, "router", None), "routes", None) or getattr(app, "routes", [])
    for route in routes:
        if isinstance(route, Mount):
            yield from _tree(route.app)
    inner = getattr(app, "app", None)
    if inner is not None and inner is not app and not isinstance(app, App):
        yield from _tree(inner)


class _ServerSend:
    """The outermost ASGI layer: records the server's ``send`` for ``abort_connection``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            record_server_send(scope, send)
        await self.app(scope, receive, send)


class _Server(uvicorn.Server):
    """uvicorn's server, ending live streams first when asked to exit.

    Only the streams: each app's broker closes when its lifespan ends, after
    the app's own background tasks (which may still publish) have stopped.
    """

    def __init__(self, config: uvicorn.Config, served: Any) -> None:
        super().__init__(config)
        #: The app being served (``config.app`` is it wrapped in ``_ServerSend``).
        self.served = served

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and not self.should_exit:
            for owner in stream_owners(self.served):
                loop.create_task(owner.close_streams())
        super().handle_exit(sig, frame)


def run(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    http: HTTP = "auto",
    max_header_size: int = ServerLimits.max_header_size,
    header_timeout: float = ServerLimits.header_timeout,
    idle_timeout: float = ServerLimits.idle_timeout,
    sock: socket.socket | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` with uvicorn (uvloop and httptools when installed) until stopped.

    ``http`` picks uvicorn's HTTP/1.1 implementation (``auto``: httptools when
    installed, else h11). Whichever it is, a connection is held to:

    - ``max_header_size`` (64 KiB): request line and headers; past it, 431;
    - ``header_timeout`` (10 s): from a request's first byte to the end of its
      headers; past it, 408;
    - ``idle_timeout`` (5 s): with no request under way, from the moment the
      connection opens and between requests; past it, the connection closes.

    ``sock`` serves a listening socket made elsewhere (``host`` and ``port`` are then
    not used): a supervisor's, which outlives this server (``livepages dev``, ``livepages
    run --workers``). ``options`` go to ``uvicorn.Config`` (``log_level``, ...).
    """
    options.setdefault("timeout_graceful_shutdown", 5)
    limits = ServerLimits(max_header_size, header_timeout, idle_timeout)
    config = Config(_ServerSend(app), host=host, port=port, http=http, limits=limits, **options)
    _Server(config, app).run(sockets=[sock] if sock is not None else None)
