"""Todo list: one list shared by everyone, in a store, and a filter of each tab's own.

The todos are records of a ``livepages.store`` collection. The page's ``render``
reads them (``await todos.all()``), so the live engine re-renders every open
page when an action adds, ticks or deletes one: nothing is published and no
``@on`` is declared. Ticking is a transaction: a todo deleted or changed by
someone else between its read and its write is a clear 409, never a lost write.

The search box is a query field mirrored by a signal (``Reflect``): typing in it
rewrites the address bar (``/?q=milk``) with no request of its own, the page's
stream reopens with the new query and renders the matching todos, and a reload
or a shared link shows the same search.

The filter (all, active, done) is kept in ``tab.state``: the page's ``render``
takes the ``Tab``, so each tab has its own view, and the ``show`` action, which
takes the ``Tab`` too, changes only the tab that called it. A successful page
action re-renders the calling tab by itself.

Actions that act on one todo read its id from the ``todo`` signal, which the
button sets just before posting: ``$todo = 3; @post(...)``.

``create_app(settings, database)`` builds an app on its own store: a SQLite file,
or ``":memory:"`` (the default unless ``TODOLIST_DB`` names a file); ``app`` is
the one served on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args

from livepages import SSE, App, NotFound, Page, Reflect, Settings, Store, ValidationError, action
from livepages.store import Collection
from livepages.tabs import Tab

__all__ = [
    "FILTERS",
    "MAX_TITLE",
    "MAX_TODOS",
    "FilterChoice",
    "NewTodo",
    "Todo",
    "TodoRef",
    "app",
    "create_app",
]

TEMPLATES = Path(__file__).parent / "templates"
HEAD = """<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #todos { list-style: none; padding: 0; }
  #todos li { display: flex; gap: .5rem; align-items: center; padding: .25rem 0; }
  #todos li.done .title { text-decoration: line-through; color: #888; }
  #filters button[aria-pressed="true"] { font-weight: bold; }
  .error { color: #b00; }
</style>"""

Filter = Literal["all", "active", "done"]
FILTERS: tuple[Filter, ...] = get_args(Filter)
MAX_TITLE = 200
#: Anyone may add: a bound keeps one visitor from filling the store without end.
MAX_TODOS = 500


@dataclass
class Todo:
    """One thing to do, stored in the ``todos`` collection under its ``id``."""

    id: int
    title: str
    done: bool = False


def visible(todos: list[Todo], shown: Filter, search: str = "") -> list[Todo]:
    """The todos that a filter and a search show, in the order given (by id: oldest first)."""
    words = search.casefold().split()
    found = [todo for todo in todos if all(w in todo.title.casefold() for w in words)]
    if shown == "all":
        return found
    return [todo for todo in found if todo.done == (shown == "done")]


@dataclass
class NewTodo:
    """The signals of the add form."""

    title: str = ""


@dataclass
class TodoRef:
    """The ``todo`` signal: the id of the todo a button acts on."""

    todo: int


@dataclass
class FilterChoice:
    """The ``filter`` signal: anything but all, active or done is a 400."""

    filter: Filter


async def checked_title(text: str, todos: Collection[Todo]) -> str:
    """The title to add, stripped; ``ValidationError`` when it cannot be added."""
    title = text.strip()
    if not title:
        raise ValidationError({"title": "is required"})
    if len(title) > MAX_TITLE:
        raise ValidationError({"title": f"must be at most {MAX_TITLE} characters"})
    if await todos.count() >= MAX_TODOS:  # a soft bound: two adds at once may both pass
        raise ValidationError({"title": f"the list is full ({MAX_TODOS} todos)"})
    return title


def create_app(settings: Settings | None = None, database: str | Path | None = None) -> App:
    """A todo app on its own store: ``database`` (a SQLite file, or ``":memory:"``),
    by default ``TODOLIST_DB`` or ``":memory:"``."""
    store = Store(database or os.environ.get("TODOLIST_DB", ":memory:"))
    todos = store.collection("todos", Todo)
    app = App(templates=TEMPLATES, settings=settings, head=HEAD, store=store)

    @app.page("/")
    class TodoList(Page):
        """The list, filtered by this tab's choice and searched by ``?q=``."""

        #: The search box's text, in the URL as ``?q=`` and in the page as ``$q``.
        q: Annotated[str, Reflect()] = ""

        def title(self) -> str:
            return "Todos"

        async def render(self, tab: Tab) -> str:
            shown: Filter = tab.state.get("filter", "all")
            everything = await todos.all()  # the render depends on the whole list
            html: str = self.template(
                "todos.html",
                todos=visible(everything, shown, self.q),
                shown=shown,
                filters=FILTERS,
                left=sum(1 for todo in everything if not todo.done),
                total=len(everything),
                signals={"title": "", "todo": 0, "filter": shown, "errors": {"title": ""}},
            )
            return html

        @action
        async def add(self, new: NewTodo, sse: SSE) -> None:
            title = await checked_title(new.title, todos)
            await todos.insert(Todo(await todos.next_key(), title))
            await sse.patch_signals({"title": ""})  # empty the input for the next one

        @action
        async def toggle(self, ref: TodoRef) -> None:
            async with store.transaction() as tx:
                todo = await tx.get(todos, ref.todo)
                if todo is None:
                    raise NotFound(f"there is no todo {ref.todo}")
                todo.done = not todo.done
                tx.put(todos, todo)

        @action(method="DELETE")
        async def delete(self, ref: TodoRef) -> None:
            if not await todos.delete(ref.todo):
                raise NotFound(f"there is no todo {ref.todo}")

        @action
        async def show(self, choice: FilterChoice, tab: Tab) -> None:
            # Only this tab's view depends on it, and it re-renders after the action.
            tab.state["filter"] = choice.filter

    return app


app = create_app()
