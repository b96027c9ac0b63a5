"""Counter: one number, shared by everyone who has the page open.

The + and - buttons call page actions. Each action changes the count and
publishes ``CountChanged``; the page subscribes to that event with ``@on`` on
its class, so every open counter page re-renders. Nobody renders per viewer:
the page does not depend on who is looking, so all viewers share one view, one
render and one encoded patch per change.

``create_app(settings)`` builds a fresh app with its own count (tests use one
per test, with a local Datastar build); ``app`` is the one ``make run`` serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livepages import App, Page, Settings, action
from livepages.events import Event, on

__all__ = ["CountChanged", "Counter", "app", "create_app"]

TEMPLATES = Path(__file__).parent / "templates"
# No icon: an empty one stops browsers from asking for /favicon.ico (a 404).
HEAD = """<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  .counter { display: flex; gap: 1rem; align-items: center; font-size: 2rem; }
  .counter button { font-size: 2rem; width: 3rem; }
  #count { min-width: 4rem; text-align: center; }
</style>"""


@dataclass
class CountChanged(Event, subject="counter"):
    """The count moved: every open counter page re-renders."""

    value: int


class Counter:
    """The one shared number, in memory."""

    def __init__(self) -> None:
        self.value = 0


def create_app(settings: Settings | None = None) -> App:
    """A counter app whose count starts at 0."""
    app = App(templates=TEMPLATES, settings=settings, head=HEAD)
    counter = Counter()

    async def change(by: int) -> None:
        counter.value += by
        await app.publish(CountChanged(value=counter.value))

    @app.page("/")
    @on(CountChanged)
    class CounterPage(Page):
        """The count and its two buttons."""

        def title(self) -> str:
            return "Counter"

        async def render(self) -> str:
            html: str = self.template("counter.html", count=counter.value)
            return html

        @action
        async def increment(self) -> None:
            await change(+1)

        @action
        async def decrement(self) -> None:
            await change(-1)

    return app


app = create_app()
