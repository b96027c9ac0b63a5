"""Serve an ASGI app factory on 127.0.0.1 for the fan-out benchmark.

``python -m benchmarks.fanout.serve --server uvicorn --app module:factory --port PORT``

``--server`` is uvicorn (as the benchmark has always served), granian or hypercorn
(``livepages.http2.run_tls``, which needs ``--certfile`` and ``--keyfile``). With a
certificate uvicorn and granian serve TLS too: uvicorn HTTP/1.1 only, granian
HTTP/1.1 or HTTP/2 as the client offers.

The factory is called once here first: if it cannot be imported or raises
``NotImplementedError``, the process prints the reason as its last line and
exits with :data:`EXIT_UNAVAILABLE`, which the harness reports as
"not available" instead of as a failure.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import uvicorn
from starlette.types import ASGIApp

__all__ = ["EXIT_UNAVAILABLE", "load_app", "main"]

# EX_CONFIG from sysexits.h: distinct from uvicorn's own startup failure (3).
EXIT_UNAVAILABLE = 78


def load_app(spec: str) -> ASGIApp:
    """Import ``module:factory`` and call the factory."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected module:factory, got {spec!r}")
    module = importlib.import_module(module_name)
    factory = cast(Callable[[], ASGIApp], getattr(module, attribute))
    return factory()


def _serve_uvicorn(app: ASGIApp, port: int, tls: tuple[str, str] | None) -> None:
    certfile, keyfile = tls or (None, None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="auto",
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_graceful_shutdown=1,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    uvicorn.Server(config).run()


def _serve_hypercorn(app: ASGIApp, port: int, tls: tuple[str, str] | None) -> None:
    from livepages.http2 import run_tls

    if tls is None:
        raise ValueError("hypercorn is measured over TLS: give --certfile and --keyfile")
    run_tls(
        app,
        certfile=tls[0],
        keyfile=tls[1],
        port=port,
        access_log=False,
        log_level="warning",
        max_streams=1000,
    )


def _exec_granian(
    spec: str, port: int, backpressure: int, tls: tuple[str, str] | None, http: str
) -> None:
    granian = shutil.which("granian", path=str(Path(sys.executable).parent)) or shutil.which(
        "granian"
    )
    if granian is None:
        raise FileNotFoundError("the granian command is not installed")
    # Granian answers only backlog/workers requests at once by default and lets
    # the rest hang: raise it above the number of streams.
    args = [
        granian,
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--no-ws",
        "--http",
        http,
        "--log-level",
        "warning",
        "--backpressure",
        str(backpressure),
        "--factory",
        spec,
    ]
    if tls is not None:
        args[-2:-2] = ["--ssl-certificate", tls[0], "--ssl-keyfile", tls[1]]
    os.execv(granian, args)  # keeps this PID, so the harness still owns the server


def main(argv: list[str] | None = None) -> int:
    """Check the factory, then serve it until the process is stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", choices=["uvicorn", "granian", "hypercorn"], default="uvicorn")
    parser.add_argument("--app", required=True, help="module:factory")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backpressure", type=int, default=16384, help="granian only")
    parser.add_argument("--http", choices=["auto", "1", "2"], default="auto", help="granian only")
    parser.add_argument("--certfile", help="serve TLS with this certificate (PEM)")
    parser.add_argument("--keyfile", help="and this key (PEM)")
    args = parser.parse_args(argv)
    tls = (args.certfile, args.keyfile) if args.certfile and args.keyfile else None
    try:
        app = load_app(args.app)
    except (ImportError, AttributeError, ValueError, NotImplementedError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return EXIT_UNAVAILABLE
    if args.server == "granian":
        try:
            _exec_granian(args.app, args.port, args.backpressure, tls, args.http)
        except OSError as exc:
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return EXIT_UNAVAILABLE
    if args.server == "hypercorn":
        _serve_hypercorn(app, args.port, tls)
    else:
        _serve_uvicorn(app, args.port, tls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
