"""Todo list: one list shared by everyone, a filter of each tab's own.

Adding, ticking and deleting a todo change the shared list and publish
``TodosChanged``; every open page re-renders. The filter (all, active, done) is
kept in ``tab.state``: the page's ``render`` takes the ``Tab``, so each tab has
its own view, and the ``show`` action, which takes the ``Tab`` too, changes
only the tab that called it. A successful page action re-renders the calling
tab by itself, so ``show`` publishes nothing.

Actions that act on one todo read its id from the ``todo`` signal, which the
button sets just before posting: ``$todo = 3; @post(...)``.

``create_app(settings)`` builds a fresh app with an empty list (tests use one
per test, with a local Datastar build); ``app`` is the one ``make run`` serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from livepages import SSE, App, NotFound, Page, Settings, ValidationError, action
from livepages.events import Event, on
from livepages.tabs import Tab

__all__ = [
    "FILTERS",
    "MAX_TITLE",
    "MAX_TODOS",
    "FilterChoice",
    "NewTodo",
    "Todo",
    "TodoRef",
    "Todos",
    "TodosChanged",
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
#: The list is in memory: a bound keeps one visitor from filling it without end.
MAX_TODOS = 500


@dataclass(slots=True)
class Todo:
    """One thing to do."""

    id: int
    title: str
    done: bool = False


class Todos:
    """The shared list, in memory: a real app would keep it in a database."""

    def __init__(self) -> None:
        self._todos: dict[int, Todo] = {}
        self._next_id = 1

    def __iter__(self) -> Iterator[Todo]:
        return iter(self._todos.values())

    def __len__(self) -> int:
        return len(self._todos)

    def add(self, title: str) -> Todo:
        """Add a todo (the title is already checked)."""
        todo = self._todos[self._next_id] = Todo(self._next_id, title)
        self._next_id += 1
        return todo

    def get(self, todo_id: int) -> Todo:
        """The todo with this id; ``NotFound`` (404) if there is none."""
        todo = self._todos.get(todo_id)
        if todo is None:
            raise NotFound(f"there is no todo {todo_id}")
        return todo

    def delete(self, todo_id: int) -> None:
        """Remove a todo; ``NotFound`` (404) if there is none."""
        self.get(todo_id)
        del self._todos[todo_id]

    def visible(self, shown: Filter) -> list[Todo]:
        """The todos that a filter shows, oldest first."""
        if shown == "all":
            return list(self)
        return [todo for todo in self if todo.done == (shown == "done")]

    @property
    def left(self) -> int:
        """How many todos are not done."""
        return sum(1 for todo in self if not todo.done)


@dataclass
class TodosChanged(Event, subject="todos"):
    """The shared list changed: every open page re-renders."""


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


def checked_title(text: str, todos: Todos) -> str:
    """The title to add, stripped; ``ValidationError`` when it cannot be added."""
    title = text.strip()
    if not title:
        raise ValidationError({"title": "is required"})
    if len(title) > MAX_TITLE:
        raise ValidationError({"title": f"must be at most {MAX_TITLE} characters"})
    if len(todos) >= MAX_TODOS:
        raise ValidationError({"title": f"the list is full ({MAX_TODOS} todos)"})
    return title


def create_app(settings: Settings | None = None) -> App:
    """A todo app with an empty list."""
    app = App(templates=TEMPLATES, settings=settings, head=HEAD)
    todos = Todos()

    async def changed() -> None:
        await app.publish(TodosChanged())

    @app.page("/")
    @on(TodosChanged)
    class TodoList(Page):
        """The list, filtered by this tab's choice."""

        def title(self) -> str:
            return "Todos"

        async def render(self, tab: Tab) -> str:
            shown: Filter = tab.state.get("filter", "all")
            html: str = self.template(
                "todos.html",
                todos=todos.visible(shown),
                shown=shown,
                filters=FILTERS,
                left=todos.left,
                total=len(todos),
                signals={"title": "", "todo": 0, "filter": shown, "errors": {"title": ""}},
            )
            return html

        @action
        async def add(self, new: NewTodo, sse: SSE) -> None:
            todos.add(checked_title(new.title, todos))
            await changed()
            await sse.patch_signals({"title": ""})  # empty the input for the next one

        @action
        async def toggle(self, ref: TodoRef) -> None:
            todo = todos.get(ref.todo)
            todo.done = not todo.done
            await changed()

        @action(method="DELETE")
        async def delete(self, ref: TodoRef) -> None:
            todos.delete(ref.todo)
            await changed()

        @action
        async def show(self, choice: FilterChoice, tab: Tab) -> None:
            # Only this tab's view depends on it, and it re-renders after the action.
            tab.state["filter"] = choice.filter

    return app


app = create_app()
