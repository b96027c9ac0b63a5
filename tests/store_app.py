"""The app that ``tests/store/test_cluster.py`` runs as several processes on one NATS.

Configured by its environment, as a deployment is: ``LIVEPAGES_NATS_URL`` puts its
broker on NATS, and ``STORE_APP_DB`` is the SQLite file that every process shares.

``/todos/{id}`` shows one todo (its render reads that record), ``/list`` all of them
(its render reads the collection); nothing declares ``@on``: the store's commits
re-render them, on every process. ``save`` puts a todo, ``add`` inserts one with a
new key. ``/renders`` says how many renders of each URL this process made (page
GETs and live renders).

``python -m tests.store_app PORT`` serves it with ``livepages.server.run``.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from html import escape

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from livepages import App, Page, Settings, action
from livepages.server import run
from livepages.store import Store

__all__ = ["Title", "Todo", "app"]


@dataclass
class Todo:
    id: int
    title: str


@dataclass
class Title:
    """The signals of ``save`` and ``add``."""

    title: str


store = Store(os.environ.get("STORE_APP_DB", "store_app.db"))
todos = store.collection("todos", Todo)
#: Renders by page URL, in this process.
renders: Counter[str] = Counter()


async def render_counts(request: Request) -> JSONResponse:
    return JSONResponse(renders)


app = App(
    settings=Settings.from_env(),
    store=store,
    routes=[Route("/renders", render_counts)],
    head='<link rel="icon" href="data:,">',  # no favicon request to fail
)


@app.page("/todos/{id}")
class One(Page):
    id: int

    async def render(self) -> str:
        renders[self.url] += 1
        todo = await todos.get(self.id)
        return f'<p id="title">{escape(todo.title) if todo else "none"}</p>'

    @action
    async def save(self, edit: Title) -> None:
        await todos.put(Todo(self.id, edit.title))


@app.page("/list")
class All(Page):
    async def render(self) -> str:
        renders[self.url] += 1
        items = "".join(f"<li>{escape(todo.title)}</li>" for todo in await todos.all())
        return f'<ul id="todos">{items}</ul>'

    @action
    async def add(self, new: Title) -> None:
        await todos.insert(Todo(await todos.next_key(), new.title))


if __name__ == "__main__":
    run(app, port=int(sys.argv[1]), log_level="warning")
