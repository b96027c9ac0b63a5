"""Serve an ASGI app factory on 127.0.0.1 for the fan-out benchmark.

``python -m benchmarks.fanout.serve --server uvicorn --app module:factory --port PORT``

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


def _serve_uvicorn(app: ASGIApp, port: int) -> None:
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
    )
    uvicorn.Server(config).run()


def _exec_granian(spec: str, port: int, backpressure: int) -> None:
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
        "--log-level",
        "warning",
        "--backpressure",
        str(backpressure),
        "--factory",
        spec,
    ]
    os.execv(granian, args)  # keeps this PID, so the harness still owns the server


def main(argv: list[str] | None = None) -> int:
    """Check the factory, then serve it until the process is stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--app", required=True, help="module:factory")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backpressure", type=int, default=16384, help="granian only")
    args = parser.parse_args(argv)
    try:
        app = load_app(args.app)
    except (ImportError, AttributeError, ValueError, NotImplementedError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return EXIT_UNAVAILABLE
    if args.server == "granian":
        try:
            _exec_granian(args.app, args.port, args.backpressure)
        except OSError as exc:
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return EXIT_UNAVAILABLE
    _serve_uvicorn(app, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
