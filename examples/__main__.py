"""Serve every example on 127.0.0.1:8000 (``make run``), the index at ``/``.

Settings come from ``LIVEPAGES_*`` environment variables, so for instance
``LIVEPAGES_DATASTAR_FILE=/path/to/datastar.js`` serves a local Datastar build
instead of the CDN one.
"""

from __future__ import annotations

import argparse

from examples.index import create_app
from livepages import Settings
from livepages.server import run


def main(argv: list[str] | None = None) -> None:
    """Parse ``--host`` and ``--port`` and serve until interrupted."""
    parser = argparse.ArgumentParser(description="Serve the livepages examples.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    run(create_app(Settings.from_env()), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
