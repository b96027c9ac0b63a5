"""The chat example as one process of a cluster: ``tests/presence/test_cluster.py`` runs it.

Configured by the environment alone (``Settings.from_env``): ``LIVEPAGES_NATS_URL`` and
``LIVEPAGES_SECRET_KEY`` as every process of a deployment, plus what a test chooses
(``LIVEPAGES_PRESENCE_TTL``, ``LIVEPAGES_SUBJECT_PREFIX``, ``LIVEPAGES_DATASTAR_FILE``).

``python -m tests.chat_app PORT`` serves it with ``livepages.server.run``.
"""

from __future__ import annotations

import sys

from examples.chat.app import create_app

from livepages import Settings
from livepages.server import run

__all__ = ["app"]

app = create_app(Settings.from_env())

if __name__ == "__main__":
    run(app, port=int(sys.argv[1]), log_level="warning")
