"""The store on its own: collections, transactions, conflicts, restarts, and its decoders."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livepages.errors import Conflict, ServiceUnavailable
from livepages.store import (
    CorruptRecord,
    SQLiteBackend,
    Store,
    StoreBackend,
    StoreChanges,
    StoreConflict,
    StoreUnavailable,
    Write,
)

pytestmark = pytest.mark.anyio


@dataclass
class Todo:
    id: int
    title: str
    done: bool = False


class User(msgspec.Struct):
    name: str
    age: int = 0
    nickname: str | None = msgspec.field(default=None, name="nick")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[Store]:
    made = Store(path)
    await made.start()
    yield made
    await made.close()


def as_protocol(backend: SQLiteBackend) -> StoreBackend:
    return backend  # mypy checks that the SQLite backend implements the protocol


# -- records --------------------------------------------------------------------------------


async def test_put_get_delete(store: Store) -> None:
    todos = store.collection("todos", Todo)
    assert await todos.get(1) is None
    await todos.put(Todo(1, "milk"))
    assert await todos.get(1) == Todo(1, "milk")
    await todos.put(Todo(1, "oat milk", done=True))
    assert await todos.get(1) == Todo(1, "oat milk", done=True)
    assert await todos.delete(1) is True
    assert await todos.get(1) is None
    assert await todos.delete(1) is False


async def test_reads_return_fresh_objects(store: Store) -> None:
    todos = store.collection("todos", Todo)
    await todos.put(Todo(1, "milk"))
    todo = await todos.get(1)
    assert todo is not None
    todo.title = "changed, not put"
    assert await todos.get(1) == Todo(1, "milk")


async def test_all_where_and_count(store: Store) -> None:
    todos = store.collection("todos", Todo)
    for key, title, done in [(3, "c", False), (1, "a", True), (2, "b", False)]:
        await todos.put(Todo(key, title, done))
    assert [t.id for t in await todos.all()] == [1, 2, 3]  # by key
    assert [t.id for t in await todos.where(done=False)] == [2, 3]
    assert [t.id for t in await todos.where(done=True, title="a")] == [1]
    assert await todos.count() == 3
    assert await todos.count(done=False) == 2
    assert await todos.where(title="zzz") == []


async def test_struct_records_with_str_keys_and_renamed_fields(store: Store) -> None:
    users = store.collection("users", User, key="name")
    await users.put(User("ada", 36, nickname="countess"))
    await users.put(User("bob"))
    assert await users.get("ada") == User("ada", 36, nickname="countess")
    assert [u.name for u in await users.where(nickname=None)] == ["bob"]  # JSON name "nick"
    assert [u.name for u in await users.where(nickname="countess")] == ["ada"]
    with pytest.raises(TypeError, match="choose them"):
        await users.next_key()


async def test_int_and_str_keys_stay_distinct(store: Store) -> None:
    todos = store.collection("todos", Todo)
    users = store.collection("users", User, key="name")
    await todos.put(Todo(1, "one"))
    await users.put(User("1"))
    assert await todos.get(1) == Todo(1, "one")
    assert await users.get("1") == User("1")
    assert [t.id for t in await todos.all()] == [1]


async def test_collections_do_not_see_each_other(store: Store) -> None:
    mine = store.collection("mine", Todo)
    yours = store.collection("yours", Todo)
    await mine.put(Todo(1, "mine"))
    assert await yours.get(1) is None
    assert await yours.count() == 0


async def test_wrong_keys_records_and_fields_are_type_errors(store: Store) -> None:
    todos = store.collection("todos", Todo)
    with pytest.raises(TypeError, match="int, not str"):
        await todos.get("1")
    with pytest.raises(TypeError, match="int, not bool"):
        await todos.get(True)
    with pytest.raises(ValueError, match="64 bits"):
        await todos.get(2**63)
    with pytest.raises(TypeError, match="holds Todo"):
        await todos.put(User("ada"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no field 'colour'"):
        await todos.where(colour="red")
    with pytest.raises(TypeError, match="compare with"):
        await todos.where(title=["a"])  # type: ignore[arg-type]


def test_collections_are_checked_when_made(path: Path) -> None:
    store = Store(path)
    store.collection("todos", Todo)
    with pytest.raises(ValueError, match="already"):
        store.collection("todos", Todo)
    with pytest.raises(TypeError, match="no key field 'id'"):
        store.collection("users", User)
    with pytest.raises(TypeError, match="int or a str"):
        store.collection("by-done", Todo, key="done")
    with pytest.raises(TypeError, match="dataclasses or msgspec Structs"):
        store.collection("ints", int)
    with pytest.raises(ValueError, match="needs a name"):
        store.collection("", Todo)


async def test_next_key_never_hands_out_a_key_twice(store: Store) -> None:
    todos = store.collection("todos", Todo)
    assert await todos.next_key() == 1
    await todos.put(Todo(10, "chosen by hand"))
    assert await todos.next_key() == 11  # above every key stored
    key = await todos.next_key()
    await todos.insert(Todo(key, "last"))
    await todos.delete(key)
    assert await todos.next_key() == key + 1  # a deleted record's key is not reused


# -- versions and conflicts -----------------------------------------------------------------


async def test_versions_change_at_every_write(store: Store) -> None:
    todos = store.collection("todos", Todo)
    await todos.put(Todo(1, "a"))
    first = await todos.entry(1)
    await todos.put(Todo(1, "b"))
    second = await todos.entry(1)
    assert first is not None
    assert second is not None
    assert first.version > 0
    assert second.version != first.version
    assert second.record == Todo(1, "b")


async def test_a_put_at_a_stale_version_conflicts_and_writes_nothing(store: Store) -> None:
    todos = store.collection("todos", Todo)
    await todos.put(Todo(1, "a"))
    seen = await todos.entry(1)
    assert seen is not None
    await todos.put(Todo(1, "someone else's"))
    with pytest.raises(StoreConflict, match="todos 1 was changed") as caught:
        await todos.put(Todo(1, "mine"), version=seen.version)
    assert (caught.value.collection, caught.value.key) == ("todos", 1)
    assert isinstance(caught.value, Conflict)  # a 409 if an action lets it through
    assert await todos.get(1) == Todo(1, "someone else's")
    current = await todos.entry(1)
    assert current is not None
    await todos.put(Todo(1, "mine"), version=current.version)
    assert await todos.get(1) == Todo(1, "mine")


async def test_insert_conflicts_on_a_taken_key(store: Store) -> None:
    todos = store.collection("todos", Todo)
    await todos.insert(Todo(1, "first"))
    with pytest.raises(StoreConflict, match="todos 1 already exists"):
        await todos.insert(Todo(1, "second"))
    assert await todos.get(1) == Todo(1, "first")


async def test_delete_at_a_stale_version_conflicts(store: Store) -> None:
    todos = store.collection("todos", Todo)
    await todos.put(Todo(1, "a"))
    seen = await todos.entry(1)
    assert seen is not None
    await todos.put(Todo(1, "b"))
    with pytest.raises(StoreConflict):
        await todos.delete(1, version=seen.version)
    assert await todos.get(1) == Todo(1, "b")


async def test_a_transaction_commits_all_its_writes_together(store: Store) -> None:
    todos = store.collection("todos", Todo)
    await todos.put(Todo(1, "a"))
    async with store.transaction() as tx:
        todo = await tx.get(todos, 1)
        assert todo is not None
        todo.done = True
        tx.put(todos, todo)
        tx.insert(todos, Todo(2, "b"))
        assert await todos.get(2) is None  # not before the commit
        assert await tx.get(todos, 2) == Todo(2, "b")  # but the transaction sees it
        assert [t.id for t in await tx.all(todos)] == [1, 2]
        tx.delete(todos, 1)
        assert await tx.get(todos, 1) is None
        assert [t.id for t in await tx.all(todos)] == [2]
    assert [t.id for t in await todos.all()] == [2]


async def test_a_transaction_that_raises_writes_nothing(store: Store) -> None:
    todos = store.collection("todos", Todo)
    tx = store.transaction()

    async def failing() -> None:
        async with tx:
            tx.put(todos, Todo(1, "a"))
            raise RuntimeError("oops")

    with pytest.raises(RuntimeError, match="oops"):
        await failing()
    assert await todos.count() == 0
    with pytest.raises(RuntimeError, match="over"):
        tx.put(todos, Todo(1, "a"))


async def test_a_conflicting_transaction_raises_and_writes_nothing(path: Path) -> None:
    # Two stores on one file: as two processes would be.
    one, two = Store(path), Store(path)
    try:
        todos_one = one.collection("todos", Todo)
        todos_two = two.collection("todos", Todo)
        await todos_one.put(Todo(1, "a"))

        async def racing() -> None:
            async with one.transaction() as tx:
                todo = await tx.get(todos_one, 1)
                assert todo is not None
                tx.put(todos_one, Todo(1, todo.title + " (one)"))
                tx.put(todos_one, Todo(2, "also from one"))
                await todos_two.put(Todo(1, "a (two)"))  # commits first

        with pytest.raises(StoreConflict, match="todos 1 was changed by another write"):
            await racing()
        assert await todos_two.all() == [Todo(1, "a (two)")]  # nothing of one's
    finally:
        await one.close()
        await two.close()


async def test_a_transaction_that_read_all_conflicts_with_any_write_there(store: Store) -> None:
    todos = store.collection("todos", Todo)
    other = store.collection("other", Todo)
    await todos.put(Todo(1, "a"))
    async with store.transaction() as tx:
        await tx.all(todos)
        await other.put(Todo(9, "elsewhere"))  # another collection: no conflict
        tx.put(todos, Todo(2, "b"))

    async def racing() -> None:
        async with store.transaction() as tx:
            count = len(await tx.all(todos))
            await todos.put(Todo(3, "c"))
            tx.put(todos, Todo(100, f"{count} before"))

    with pytest.raises(StoreConflict, match="todos changed since"):
        await racing()
    assert await todos.get(100) is None


async def test_a_record_deleted_and_made_again_still_conflicts(store: Store) -> None:
    # Versions are never reused, so a transaction cannot miss a delete-and-recreate.
    todos = store.collection("todos", Todo)
    await todos.put(Todo(1, "a"))

    async def racing() -> None:
        async with store.transaction() as tx:
            await tx.get(todos, 1)
            await todos.delete(1)
            await todos.put(Todo(1, "a"))
            tx.put(todos, Todo(1, "mine"))

    with pytest.raises(StoreConflict, match="was changed"):
        await racing()


# -- the database -----------------------------------------------------------------------------


async def test_records_survive_a_restart(path: Path) -> None:
    first = Store(path)
    todos = first.collection("todos", Todo)
    await todos.insert(Todo(await todos.next_key(), "kept"))
    await first.close()
    second = Store(path)
    try:
        again = second.collection("todos", Todo)
        assert await again.all() == [Todo(1, "kept")]
        assert await again.next_key() == 2
    finally:
        await second.close()


async def test_a_write_waits_busy_timeout_for_a_lock_then_fails(path: Path) -> None:
    store = Store(path, busy_timeout=0.2)
    todos = store.collection("todos", Todo)
    await store.start()
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreUnavailable, match="locked") as caught:
            await todos.put(Todo(1, "a"))
        assert isinstance(caught.value, ServiceUnavailable)  # a 503
        other.execute("ROLLBACK")
    await todos.put(Todo(1, "a"))  # the lock is gone: it works
    await store.close()


def test_busy_timeout_defaults_to_five_seconds(path: Path) -> None:
    backend = Store(path).backend
    assert isinstance(backend, SQLiteBackend)
    assert as_protocol(backend) is backend
    assert backend.busy_timeout == 5.0


async def test_a_closed_store_is_unavailable(path: Path) -> None:
    store = Store(path)
    todos = store.collection("todos", Todo)
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await todos.get(1)


async def test_an_unusable_path_is_unavailable(tmp_path: Path) -> None:
    store = Store(tmp_path / "missing" / "store.db")
    with pytest.raises(StoreUnavailable, match="unable to open"):
        await store.start()
    await store.close()


async def test_a_row_that_does_not_decode_is_a_corrupt_record(store: Store, path: Path) -> None:
    todos = store.collection("todos", Todo)
    await todos.put(Todo(1, "a"))
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute('UPDATE livepages_store_records SET data = \'{"id": "one"}\'')
    with pytest.raises(CorruptRecord, match="todos"):
        await todos.get(1)


# -- decoders of outside input ----------------------------------------------------------------


DECODE_STORE = Store(":memory:")
DECODE_TODOS = DECODE_STORE.collection("todos", Todo)


@given(st.binary() | st.text())
def test_stored_data_decodes_to_a_record_or_a_corrupt_record(data: bytes | str) -> None:
    try:
        todo = DECODE_TODOS.decode(data)
    except CorruptRecord:
        return
    assert isinstance(todo, Todo)


@given(st.builds(Todo, st.integers(-(2**63), 2**63 - 1), st.text(), st.booleans()))
def test_records_round_trip(todo: Todo) -> None:
    assert DECODE_TODOS.decode(DECODE_TODOS.encode(todo)) == todo


@given(st.binary())
def test_change_messages_decode_or_raise_value_error(data: bytes) -> None:
    try:
        changes = StoreChanges.decode(data)
    except ValueError:
        return
    assert isinstance(changes, StoreChanges)


keys = st.integers(-(2**63), 2**63 - 1) | st.text()


@given(st.text(), st.dictionaries(st.text(), st.lists(keys)))
def test_change_messages_round_trip(origin: str, changed: dict[str, list[int | str]]) -> None:
    changes = StoreChanges(origin, changed)
    assert StoreChanges.decode(changes.encode()) == changes


def test_change_messages_name_each_record_and_its_collection() -> None:
    changes = StoreChanges.of("me", [Write("todos", 1, "{}"), Write("todos", 2, None)])
    assert changes.changed == {"todos": [1, 2]}
    assert list(changes.dependencies()) == [("todos", None), ("todos", 1), ("todos", 2)]


#: Any text that can be stored: Unicode without lone surrogates (not UTF-8 encodable).
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]))


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(texts, texts, max_size=5))
def test_any_text_round_trips_through_sqlite(notes: dict[str, str]) -> None:
    async def round_trip() -> None:
        store = Store(":memory:")
        users = store.collection("users", User, key="name")
        try:
            for name, note in notes.items():
                await users.put(User(name, nickname=note))
            for name, note in notes.items():
                assert await users.get(name) == User(name, nickname=note)
                if "\x00" not in note:  # SQLite's json_extract stops at a NUL
                    found = await users.where(nickname=note)
                    assert User(name, nickname=note) in found
            assert [u.name for u in await users.all()] == sorted(notes, key=str.encode)
        finally:
            await store.close()

    asyncio.run(round_trip())
