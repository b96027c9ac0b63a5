"""The app that ``tests/test_metrics.py`` runs as two processes on one NATS.

Configured by its environment (``LIVEPAGES_NATS_URL``, ``LIVEPAGES_SECRET_KEY``), it
serves its own Prometheus series on ``/metrics``: each process its own. ``/board``
shows a count; ``bump`` publishes ``Bumped`` to every process, whose streams re-render.

``python -m tests.metrics_app PORT`` serves it with ``livepages.server.run``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from livepages import App, Event, Metrics, Page, Settings, action, on
from livepages.server import run

__all__ = ["Bumped", "app"]


@dataclass
class Bumped(Event, subject="board.bumped"):
    """The count went up, on some process."""

    count: int


app = App(settings=Settings.from_env())
metrics = Metrics(app)
board = {"count": 0}


@app.page("/board")
@on(Bumped)
class Board(Page):
    @on(Bumped)
    async def changed(self, event: Bumped) -> None:
        # Another process's bump: take its count, then re-render.
        board["count"] = max(board["count"], event.count)

    def render(self) -> str:
        return f'<p id="count">{board["count"]}</p>'

    @action
    async def bump(self) -> None:
        board["count"] += 1
        await app.publish(Bumped(board["count"]))


if __name__ == "__main__":
    run(app, port=int(sys.argv[1]), log_level="warning")
