"""Serving over TLS with HTTP/2: hypercorn, with live streams ended at once on shutdown.

Every open page holds a live stream, and browsers open at most six HTTP/1.1
connections to one host: the seventh tab of a site would wait for one of the others
to close. Over HTTP/2 a browser's tabs share one connection with up to
``max_streams`` streams on it. Browsers speak HTTP/2 only over TLS, so a certificate
and its key are required; clients that offer only HTTP/1.1 (in TLS's ALPN) get it.

uvicorn has no HTTP/2, so :func:`run_tls` serves with hypercorn. As
``livepages.server.run`` does for uvicorn, it ends the live streams of every
livepages app it serves as soon as it is asked to stop (SIGTERM or SIGINT), so that
the stop takes milliseconds, not hypercorn's graceful timeout, and pages reconnect
to the next server. It bounds connections as far as hypercorn allows: request heads
to ``max_header_size`` and idle connections to ``idle_timeout`` (hypercorn has no
timeout on a slow head; put the server behind a proxy that has one if that matters).
"""

from __future__ import annotations

import asyncio
import asyncio.constants
import signal
import socket
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

from livepages.limits import ServerLimits
from livepages.server import stream_owners

__all__ = ["MAX_STREAMS", "TLS_CLOSE_TIMEOUT", "run_tls"]

#: Concurrent streams per HTTP/2 connection: open tabs of one browser, plus their
#: requests. hypercorn's default; browsers' own limits are higher.
MAX_STREAMS = 100
#: Seconds a closing connection waits for the client's TLS ``close_notify``. hypercorn
#: closes each connection gracefully when it stops and waits for that close however
#: long it takes (asyncio's default bound is 30 s), so a client that does not read
#: (or is gone) would hold the stop; a browser answers in milliseconds.
TLS_CLOSE_TIMEOUT = 0.5


def run_tls(
    app: Any,
    *,
    certfile: str,
    keyfile: str,
    host: str = "127.0.0.1",
    port: int = 8443,
    sock: socket.socket | None = None,
    access_log: bool = True,
    max_streams: int = MAX_STREAMS,
    max_header_size: int = ServerLimits.max_header_size,
    idle_timeout: float = ServerLimits.idle_timeout,
    graceful_timeout: float = 1.0,
    log_level: str = "info",
) -> None:
    """Serve ``app`` over HTTPS, HTTP/2 or HTTP/1.1 as each client offers, until stopped.

    ``sock`` serves a listening socket made elsewhere (then ``host`` and ``port`` are
    not used). ``graceful_timeout`` bounds how long requests other than live streams
    (which end at once) may take to finish after a stop.
    """
    config = Config()
    config.certfile, config.keyfile = certfile, keyfile
    config.bind = [f"{host}:{port}"]
    config.h2_max_concurrent_streams = max_streams
    config.h11_max_incomplete_size = max_header_size
    config.h2_max_header_list_size = max_header_size
    config.keep_alive_timeout = idle_timeout
    config.graceful_timeout = graceful_timeout
    config.loglevel = log_level.upper()
    config.accesslog = "-" if access_log else None
    config.errorlog = "-"
    sockets = Sockets([sock], [], []) if sock is not None else None
    asyncio.run(_serve(app, config, sockets))


async def _serve(app: Any, config: Config, sockets: Sockets | None) -> None:
    # hypercorn passes no shutdown timeout to asyncio, which then reads this constant
    # for every TLS connection; this process serves nothing else.
    asyncio.constants.SSL_SHUTDOWN_TIMEOUT = TLS_CLOSE_TIMEOUT
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)

    async def stopping() -> None:
        await stop.wait()
        # Before hypercorn waits for open requests: a live stream never ends by itself.
        await asyncio.gather(*(owner.close_streams() for owner in stream_owners(app)))

    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    await worker_serve(wrapped, config, sockets=sockets, shutdown_trigger=stopping)
