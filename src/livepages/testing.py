"""Helpers for testing livepages apps.

``LiveServer`` runs any ASGI app under a real uvicorn server on 127.0.0.1 in a
background thread, for tests that need real HTTP (a browser, an SSE client,
the Datastar conformance runner).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LiveServer"]


class LiveServer:
    """Serve an ASGI app on a free port of 127.0.0.1 until the block ends::

    with LiveServer(app) as server:
        httpx.get(server.url + "/")
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        lifespan: Literal["auto", "on", "off"] = "auto",
    ) -> None:
        self.app = app
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, lifespan=lifespan, log_level="warning", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="livepages-test-server", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """The server's base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._server.serve(sockets=[self._socket]))
        finally:
            self.loop.close()

    def start(self) -> None:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        for _ in range(500):
            if self._server.started:
                return
            if not self._thread.is_alive():
                raise RuntimeError("the test server failed to start")
            threading.Event().wait(0.01)
        raise RuntimeError("the test server did not start within 5 s")

    def stop(self) -> None:
        """Ask the server to shut down and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
