"""Serving an app: uvicorn for HTTP, hypercorn for HTTPS with HTTP/2.

``livepages run`` and ``livepages dev`` serve through :func:`serve`. The choice of
server was made by measurement (docs/cli.md): uvicorn delivers live patches with the
least CPU over HTTP/1.1; it has no HTTP/2, which a site needs once a visitor opens
more than six tabs, so with a certificate the app is served by hypercorn
(``livepages.http2``). Both end every live stream at once when asked to stop.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TLS", "listening_socket", "serve"]

#: Connections the kernel queues for ``accept``: room for every page of a busy site
#: to reconnect at once after a restart, while the next process starts.
BACKLOG = 2048


@dataclass(frozen=True)
class TLS:
    """A certificate and its private key, PEM files."""

    certfile: str
    keyfile: str

    def check(self) -> None:
        """Raise ``FileNotFoundError`` naming a file that is not there."""
        for path in (self.certfile, self.keyfile):
            if not Path(path).is_file():
                raise FileNotFoundError(f"no such file: {path}")


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host:port``, inheritable by the processes that serve it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def serve(
    app: Any,
    sock: socket.socket,
    *,
    tls: TLS | None = None,
    access_log: bool = True,
    log_level: str = "info",
) -> None:
    """Serve ``app`` on the listening ``sock`` until SIGTERM or SIGINT, then end its
    live streams at once and return."""
    if tls is None:
        from livepages.server import run

        run(app, sock=sock, access_log=access_log, log_level=log_level)
        return
    from livepages.http2 import run_tls  # hypercorn, imported only when serving TLS

    run_tls(
        app,
        certfile=tls.certfile,
        keyfile=tls.keyfile,
        sock=sock,
        access_log=access_log,
        log_level=log_level,
    )
