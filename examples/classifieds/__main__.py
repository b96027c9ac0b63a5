"""``python -m examples.classifieds PORT``: the marketplace on one process, configured by
the environment (``LIVEPAGES_*``, ``CLASSIFIEDS_DB``); the NATS test runs two of them."""

from __future__ import annotations

import sys

from livepages.server import run

from .app import app

if __name__ == "__main__":
    run(app, port=int(sys.argv[1]) if len(sys.argv) > 1 else 8000, log_level="warning")
