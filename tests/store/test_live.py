"""The store and live pages, in process: a render re-runs when what it read changes."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from livepages import App, MemoryBroker, NotFound, Page, Settings, action
from livepages.broker.base import BrokerUnavailable, Message
from livepages.hooks import Rendered
from livepages.live import View
from livepages.protocol import STORE_CHANGED
from livepages.store import Collection, Store, StoreChanges
from livepages.testing import Client, LiveStream
from tests.broker.wrappers import DelegatingBroker

pytestmark = pytest.mark.anyio


@dataclass
class Todo:
    id: int
    title: str
    done: bool = False


@dataclass
class Pointer:
    """Which todo the ``/current`` page shows."""

    id: str
    todo: int


@dataclass
class Edit:
    """The signals of ``rename``."""

    title: str


class TodoApp:
    """An app over a store: one page per todo, a list, a page that follows a pointer."""

    def __init__(self, store: Store, **app_options: object) -> None:
        self.store = store
        self.todos: Collection[Todo] = store.collection("todos", Todo)
        self.pointers: Collection[Pointer] = store.collection("pointers", Pointer)
        self.app = app = App(store=store, **app_options)  # type: ignore[arg-type]
        #: Live renders by page URL.
        self.renders: Counter[str] = Counter()
        todos, pointers, renders = self.todos, self.pointers, self.renders

        @app.page("/todos/{id}")
        class One(Page):
            id: int

            async def render(self) -> str:
                todo = await todos.get(self.id)
                return f"<p>{todo.title if todo else 'none'}</p>"

            @action
            async def rename(self, edit: Edit) -> None:
                # Reads, then writes: a write by anyone else in between is a conflict.
                async with store.transaction() as tx:
                    todo = await tx.get(todos, self.id)
                    if todo is None:
                        raise NotFound(f"no todo {self.id}")
                    await todos.put(Todo(self.id, "changed meanwhile"))  # someone else
                    todo.title = edit.title
                    tx.put(todos, todo)

        @app.page("/list")
        class All(Page):
            async def render(self) -> str:
                return "".join(f"<li>{todo.title}</li>" for todo in await todos.all())

        @app.page("/current")
        class Current(Page):
            async def render(self) -> str:
                pointer = await pointers.get("current")
                todo = await todos.get(pointer.todo) if pointer else None
                return f"<p>{todo.title if todo else 'none'}</p>"

        @app.page("/static")
        class Static(Page):
            def render(self) -> str:
                return "<p>reads nothing</p>"

        @app.hooks.on(Rendered)
        def count(event: Rendered) -> None:
            renders[event.page] += 1


@pytest.fixture
def made(tmp_path: Path) -> TodoApp:
    return TodoApp(Store(tmp_path / "store.db"))


def view_of(app: App, url: str) -> View:
    """The live view that shows ``url``."""
    return next(view for key, view in app.live.views.items() if key[1] == url)


async def opened(stream: LiveStream) -> str:
    """The first render's HTML: once it arrived, the view's reads are indexed."""
    return (await stream.next_event()).elements


async def test_a_render_that_reads_x_re_renders_when_x_changes_not_y(made: TodoApp) -> None:
    todos = made.todos
    await todos.put(Todo(1, "x"))
    await todos.put(Todo(2, "y"))
    async with Client(made.app) as client:
        page_x, page_y = await client.get("/todos/1"), await client.get("/todos/2")
        async with page_x.stream() as x, page_y.stream() as y:
            assert "<p>x</p>" in await opened(x)
            assert "<p>y</p>" in await opened(y)
            assert made.renders == {"One": 2}

            await todos.put(Todo(1, "x, changed"))
            assert "<p>x, changed</p>" in (await x.next_event()).elements
            assert await y.drain() == []

            await todos.put(Todo(2, "y, changed"))
            assert "<p>y, changed</p>" in (await y.next_event()).elements
            assert await x.drain() == []
            assert made.renders == {"One": 4}  # one render per change, of one view each


async def test_a_render_that_reads_all_re_renders_on_any_write_there(made: TodoApp) -> None:
    todos = made.todos
    async with Client(made.app) as client:
        page = await client.get("/list")
        async with page.stream() as stream:
            await opened(stream)
            await todos.insert(Todo(await todos.next_key(), "a"))
            assert "<li>a</li>" in (await stream.next_event()).elements
            await todos.put(Todo(1, "a, renamed"))
            assert "<li>a, renamed</li>" in (await stream.next_event()).elements
            await todos.delete(1)
            assert (await stream.next_event()).elements.endswith("></main>")
            await made.pointers.put(Pointer("current", 1))  # another collection
            assert await stream.drain() == []


async def test_a_transaction_re_renders_each_view_once(made: TodoApp) -> None:
    todos = made.todos
    async with Client(made.app) as client:
        page = await client.get("/list")
        async with page.stream() as stream:
            await opened(stream)
            renders = made.renders["All"]
            async with made.store.transaction() as tx:
                for key in (1, 2, 3):
                    tx.put(todos, Todo(key, f"t{key}"))
            event = await stream.next_event()
            assert "<li>t1</li><li>t2</li><li>t3</li>" in event.elements
            assert await stream.drain() == []
            assert made.renders["All"] == renders + 1


async def test_what_a_view_depends_on_is_what_its_last_render_read(made: TodoApp) -> None:
    todos, pointers = made.todos, made.pointers
    await todos.put(Todo(1, "first"))
    await todos.put(Todo(2, "second"))
    await pointers.put(Pointer("current", 1))
    async with Client(made.app) as client:
        page = await client.get("/current")
        async with page.stream() as stream:
            assert "<p>first</p>" in await opened(stream)
            await pointers.put(Pointer("current", 2))
            assert "<p>second</p>" in (await stream.next_event()).elements
            await todos.put(Todo(1, "first, no longer shown"))
            assert await stream.drain() == []
            await todos.put(Todo(2, "second, changed"))
            assert "<p>second, changed</p>" in (await stream.next_event()).elements
            view = view_of(made.app, "/current")
            assert set(view.reads) == {("pointers", "current"), ("todos", 2)}


async def test_a_view_nobody_watches_leaves_the_index(made: TodoApp) -> None:
    async with Client(made.app) as client:
        page = await client.get("/list")
        async with page.stream() as stream:
            await opened(stream)
            assert len(made.app.live.reads) == 1
        for _ in range(100):  # the stream's task ends after the client left
            if not made.app.live.views:
                break
            await stream.drain(0.01)
        assert made.app.live.views == {}
        assert len(made.app.live.reads) == 0


async def test_a_render_that_reads_nothing_indexes_nothing(made: TodoApp) -> None:
    async with Client(made.app) as client:
        page = await client.get("/static")
        async with page.stream() as stream:
            await opened(stream)
            assert len(made.app.live.reads) == 0
            await made.todos.put(Todo(1, "a"))
            assert await stream.drain() == []


async def test_a_conflict_in_an_action_is_a_409_and_writes_nothing(made: TodoApp) -> None:
    await made.todos.put(Todo(1, "a"))
    async with Client(made.app) as client:
        page = await client.get("/todos/1")
        response = await page.action("rename", {"title": "mine"})
        assert response.status_code == 200  # a Datastar request: the error is a signal patch
        assert '"_error":{"status":409,"message":"todos 1 was changed' in response.text
        assert await made.todos.get(1) == Todo(1, "changed meanwhile")


async def test_a_store_not_given_to_an_app_warns_when_a_page_reads_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path / "store.db")
    todos = store.collection("todos", Todo)
    app = App()

    @app.page("/")
    class Home(Page):
        async def render(self) -> str:
            return f"<p>{await todos.count()}</p>"

    async with Client(app) as client:
        page = await client.get("/")
        with caplog.at_level(logging.WARNING, logger="livepages.store"):
            async with page.stream() as stream:
                await opened(stream)
    assert "not given to an App" in caplog.text
    await store.close()


async def test_two_apps_on_one_broker_see_each_others_writes(tmp_path: Path) -> None:
    # Two stores on one file and one broker: what two processes on NATS are, in process.
    broker = MemoryBroker()
    one = TodoApp(Store(tmp_path / "store.db"), broker=broker)
    two = TodoApp(Store(tmp_path / "store.db"), broker=broker)
    await one.todos.put(Todo(1, "a"))
    async with Client(one.app) as on_one, Client(two.app) as on_two:
        page = await on_two.get("/todos/1")
        async with page.stream() as stream:
            assert "<p>a</p>" in await opened(stream)
            await on_one.get("/list")  # starts the first app (its broker is shared)
            await one.todos.put(Todo(1, "from one"))
            assert "<p>from one</p>" in (await stream.next_event()).elements
            await one.todos.put(Todo(2, "not shown there"))
            assert await stream.drain() == []


async def test_changes_go_out_under_the_subject_prefix(tmp_path: Path) -> None:
    broker = MemoryBroker()
    made = TodoApp(
        Store(tmp_path / "store.db"), broker=broker, settings=Settings(subject_prefix="shop")
    )
    heard: list[Message] = []
    async with Client(made.app) as client:
        await client.get("/list")
        broker.subscribe("shop." + STORE_CHANGED, heard.append)
        broker.subscribe(STORE_CHANGED, heard.append)  # outside the prefix: never
        await made.todos.put(Todo(7, "a"))
    assert [message.subject for message in heard] == ["shop." + STORE_CHANGED]
    changes = StoreChanges.decode(heard[0].data)
    assert changes.changed == {"todos": [7]}
    assert changes.origin == made.store.origin


async def test_a_malformed_change_message_is_ignored(made: TodoApp, tmp_path: Path) -> None:
    elsewhere = Store(tmp_path / "store.db")  # another process, as far as this app knows
    async with Client(made.app) as client:
        page = await client.get("/list")
        async with page.stream() as stream:
            await opened(stream)
            await elsewhere.collection("todos", Todo).put(Todo(1, "from elsewhere"))
            await made.app.broker.publish(STORE_CHANGED, b"not json")
            other = StoreChanges("another process", {"todos": [1]})
            await made.app.broker.publish(STORE_CHANGED, other.encode())
            # The well-formed one re-renders: nothing broke.
            assert "<li>from elsewhere</li>" in (await stream.next_event()).elements
    await elsewhere.close()


class Unreachable(DelegatingBroker):
    """A broker whose server went away after the app started: publishing fails."""

    async def publish(self, subject: str, data: bytes, headers: object = None) -> None:
        raise BrokerUnavailable("nats: no servers available for connection")


async def test_a_commit_not_announced_still_updates_this_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    made = TodoApp(Store(tmp_path / "store.db"), broker=Unreachable(MemoryBroker()))
    async with Client(made.app) as client:
        page = await client.get("/list")
        async with page.stream() as stream:
            await opened(stream)
            with caplog.at_level(logging.WARNING, logger="livepages.store"):
                await made.todos.put(Todo(1, "kept"))  # does not raise: it is written
            assert "<li>kept</li>" in (await stream.next_event()).elements
    assert "not announced" in caplog.text


def test_a_store_serves_one_app(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    App(store=store)
    with pytest.raises(RuntimeError, match="its own Store"):
        App(store=store)


async def test_records_survive_an_app_restart(tmp_path: Path) -> None:
    first = TodoApp(Store(tmp_path / "store.db"))
    async with Client(first.app) as client:
        await client.get("/list")
        await first.todos.put(Todo(1, "kept"))
    second = TodoApp(Store(tmp_path / "store.db"))
    async with Client(second.app) as client:
        assert "<li>kept</li>" in (await client.get("/list")).html


async def test_a_view_closed_during_its_render_leaves_the_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    todos = store.collection("todos", Todo)
    app = App(store=store)
    waiting, release = asyncio.Event(), asyncio.Event()

    @app.page("/")
    class Slow(Page):
        async def render(self) -> str:
            first = await todos.get(1)
            if first is not None:  # the second render: stop half-way, as a slow one would
                await todos.get(2)
                waiting.set()
                await release.wait()
            return "<p>done</p>"

    async with Client(app) as client:
        page = await client.get("/")
        async with page.stream() as stream:
            await opened(stream)
            await todos.put(Todo(1, "a"))  # re-renders: it reads 1 and 2, then waits
            await asyncio.wait_for(waiting.wait(), 5)
            assert len(app.live.reads) == 2
        for _ in range(100):  # the view is disposed of once its stream's task ends
            if not app.live.views:
                break
            await asyncio.sleep(0.01)
        assert app.live.views == {}
        assert len(app.live.reads) == 0
