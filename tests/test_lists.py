"""List streams: chunked loads, one small patch per change, flat memory, the join race."""

from __future__ import annotations

import asyncio
import bisect
import gc
import re
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages import App, ListStream, MemoryBroker, Page, Settings
from livepages.lists import ListOp
from livepages.testing import Client, DatastarEvent, LiveStream

pytestmark = pytest.mark.anyio

LONG = 100_000
_ID = re.compile(r'<li id="rows-(-?\d+)"')


@dataclass
class Row:
    id: int
    text: str


@dataclass
class Source:
    """The app's own data: rows in key order; a delay makes a slow reader."""

    rows: dict[int, Row] = field(default_factory=dict)
    keys: list[int] = field(default_factory=list)
    delay: float = 0.0

    def fill(self, count: int) -> None:
        self.rows = {i: Row(i, f"row {i}") for i in range(count)}
        self.keys = list(range(count))

    def put(self, row: Row) -> Row:
        if row.id not in self.rows:
            bisect.insort(self.keys, row.id)
        self.rows[row.id] = row
        return row

    def remove(self, key: int) -> None:
        del self.rows[key]
        self.keys.pop(bisect.bisect_left(self.keys, key))

    async def read(self) -> AsyncIterator[Row]:
        # Keyset pages of 10 read as they are now, as a database cursor would: rows
        # added or changed while a viewer loads may or may not be in what it reads.
        last = -1
        while True:
            start = bisect.bisect_right(self.keys, last)
            page = self.keys[start : start + 10]
            if not page:
                return
            for key in page:
                yield self.rows[key]
            last = page[-1]
            if self.delay:
                await asyncio.sleep(self.delay)


def render_row(row: Row) -> str:
    return f'<li id="rows-{row.id}">{row.text}</li>'


def make_app(
    source: Source, settings: Settings | None = None, **options: Any
) -> tuple[App, ListStream[Row]]:
    app = App(settings=settings)
    rows: ListStream[Row] = ListStream(app, "rows", render=render_row, **options)

    @app.page("/")
    class Rows(Page):
        async def render(self) -> str:
            return f"<h1>Rows</h1><ol {rows.attrs}></ol>"

        @rows.source()
        async def items(self) -> AsyncIterator[Row]:
            async for row in source.read():
                yield row

    return app, rows


class Model:
    """What a browser's list holds after applying the patches, as Datastar would."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        #: Ids inserted while already there: a browser would show them twice.
        self.duplicates: list[str] = []

    def apply(self, event: DatastarEvent) -> None:
        if event.type != "datastar-patch-elements":
            return
        selector, mode = event.option("selector"), event.option("mode") or "outer"
        html = event.elements
        if selector == "#rows":
            new = dict(_split(html))
            if mode != "inner":
                self.duplicates += [key for key in new if key in self.items]
            if mode == "inner":
                self.items = new
            elif mode == "append":
                self.items.update(new)
            elif mode == "prepend":
                self.items = {**new, **self.items}
        elif selector is not None and selector.startswith("#rows-"):
            key = selector[1:]
            if mode == "remove":
                self.items.pop(key, None)
            elif mode == "replace" and key in self.items:
                self.items = {k: (html if k == key else v) for k, v in self.items.items()}

    def ids(self) -> list[str]:
        assert self.duplicates == []
        return list(self.items)


def _split(html: str) -> Iterator[tuple[str, str]]:
    for part in html.split("</li>"):
        match = _ID.search(part)
        if match:
            yield f"rows-{match.group(1)}", part.strip() + "</li>"


def expected(source: Source) -> list[str]:
    return [f"rows-{key}" for key in sorted(source.rows)]


async def load(stream: LiveStream, model: Model, count: int) -> list[DatastarEvent]:
    """Read events until the model holds ``count`` rows; the list patches among them."""
    patches: list[DatastarEvent] = []
    while len(model.items) < count or not patches:
        event = await stream.next_event(wait=30)
        model.apply(event)
        if event.option("selector") == "#rows":
            patches.append(event)
    return patches


async def settle(stream: LiveStream, model: Model) -> list[DatastarEvent]:
    events = await stream.drain(quiet=0.2)
    for event in events:
        model.apply(event)
    return events


def size(event: DatastarEvent) -> int:
    return sum(len(line) for lines in event.data.values() for line in lines) + len(event.type)


async def test_a_long_list_loads_in_chunks_then_each_change_is_one_small_patch() -> None:
    source = Source()
    source.fill(LONG)
    app, rows = make_app(source)
    async with Client(app) as client:
        page = await client.get("/")
        assert '<ol id="rows" data-ignore-morph></ol>' in page.html  # no items in the page
        first, second = Model(), Model()
        async with page.stream() as a, page.stream() as b:
            chunks = await load(a, first, LONG)
            await load(b, second, LONG)
            # 100,000 rows in 200 patches of 500: none holds the whole list.
            assert len(chunks) == LONG // 500
            assert chunks[0].option("mode") == "inner"  # a reconnecting page starts afresh
            assert {c.option("mode") for c in chunks[1:]} == {"append"}
            assert max(size(c) for c in chunks) < 20_000
            assert first.ids() == expected(source)
            await settle(a, first)
            await settle(b, second)

            for i in range(100):
                row = source.put(Row(LONG + i, f"new {i}"))
                await rows.append(row)
                source.remove(i)
                await rows.delete(i)
            for stream, model in ((a, first), (b, second)):
                events = await settle(stream, model)
                patches = [e for e in events if not e.comment]
                assert len(patches) == 200  # one patch per change, per viewer
                assert max(size(e) for e in patches) < 120
                assert model.ids() == expected(source)
            await rows.update(Row(500, "changed"))
            (patch,) = await settle(a, first)
            assert patch.option("mode") == "replace"
            assert patch.option("selector") == "#rows-500"
            assert first.items["rows-500"] == '<li id="rows-500">changed</li>'


async def memory_per_viewer(count: int, viewers: int = 2) -> float:
    """Bytes allocated and still held per viewer that opened a ``count``-row list."""
    source = Source()
    source.fill(count)
    app, _ = make_app(source)
    tracemalloc.start()
    try:
        async with Client(app) as client:
            page = await client.get("/")
            streams = []

            async def open_one() -> None:
                stream = await page.stream().open()
                streams.append(stream)
                await load(stream, Model(), count)
                await stream.drain(quiet=0.05)  # the client keeps nothing it has read

            await open_one()  # warm: the subscription, caches
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(viewers):
                await open_one()
            gc.collect()
            held = (tracemalloc.get_traced_memory()[0] - before) / viewers
            for stream in streams:
                await stream.close()
            return held
    finally:
        tracemalloc.stop()


async def test_memory_per_viewer_stays_flat_however_long_the_list() -> None:
    short, long = await memory_per_viewer(10), await memory_per_viewer(LONG, viewers=1)
    print(f"memory per viewer: {short / 1024:.1f} KiB (10 rows), {long / 1024:.1f} KiB ({LONG})")
    # The long list's HTML is about 3 MB: a viewer keeps none of it, only its stream
    # (the test client's side included), the same as with 10 rows.
    assert long < 48 * 1024
    assert long - short < 4 * 1024


async def test_a_viewer_joining_mid_change_ends_with_what_the_others_have() -> None:
    source = Source()
    source.fill(2_000)
    app, rows = make_app(source, chunk=100)
    async with Client(app) as client:
        page = await client.get("/")
        steady = Model()
        async with page.stream() as old:
            await load(old, steady, 2_000)
            await settle(old, steady)
            source.delay = 0.001  # the newcomer reads slowly, while rows change
            joiner = Model()
            async with page.stream() as new:
                for i in range(0, 2_000, 40):
                    await asyncio.sleep(0.002)
                    row = source.put(Row(10_000 + i, f"late {i}"))
                    await rows.append(row)
                    source.remove(i)
                    await rows.delete(i)
                    row = source.put(Row(i + 1, f"edited {i}"))
                    await rows.update(row)
                await settle(new, joiner)
            await settle(old, steady)
    assert steady.ids() == expected(source)
    assert joiner.items == steady.items
    assert joiner.duplicates == []


async def test_a_viewer_whose_socket_is_full_loads_its_list_again() -> None:
    source = Source()
    source.fill(1_000)
    app, rows = make_app(source, chunk=100)
    async with Client(app) as client:
        page = await client.get("/")
        model = Model()
        async with page.stream() as stream:
            await load(stream, model, 1_000)
            await settle(stream, model)
            stream.reading.clear()  # a slow client: the next write waits
            for i in range(3):
                row = source.put(Row(5_000 + i, "x"))
                await rows.append(row)  # the first fills it, the next ones would be lost
            stream.reading.set()
            events = await settle(stream, model)
            assert any(e.option("mode") == "inner" for e in events)  # loaded afresh
            assert model.ids() == expected(source)


async def test_too_many_changes_while_loading_start_the_load_again() -> None:
    source = Source(delay=0.005)
    source.fill(500)
    app, rows = make_app(source, chunk=50, max_pending=2)
    async with Client(app) as client:
        page = await client.get("/")
        model = Model()
        async with page.stream() as stream:
            await load(stream, model, 50)  # its first chunk: it is loading
            for i in range(5):  # more than max_pending while it loads
                row = source.put(Row(900 + i, "x"))
                await rows.append(row)
            source.delay = 0
            events = await settle(stream, model)
            assert any(e.option("mode") == "inner" for e in events)  # loaded again
            assert model.ids() == expected(source)


async def test_a_page_re_render_and_a_list_are_independent() -> None:
    source = Source()
    source.fill(10)
    app, _ = make_app(source)
    async with Client(app) as client:
        page = await client.get("/")
        async with page.stream() as stream:
            model = Model()
            await load(stream, model, 10)
            events = await settle(stream, model)
            bodies = [e for e in events if e.option("selector") is None and not e.comment]
            for event in bodies:  # the page's own render keeps the container, empty
                assert '<ol id="rows" data-ignore-morph></ol>' in event.elements


def test_keys_and_names_are_checked() -> None:
    app = App()
    with pytest.raises(ValueError, match="list name"):
        ListStream(app, "no spaces", render=render_row)
    with pytest.raises(ValueError, match="chunk must be"):
        ListStream(app, "rows", render=render_row, chunk=0)
    with pytest.raises(ValueError, match="chunk must be"):
        ListStream(app, "rows", render=render_row, max_pending=-1)
    rows: ListStream[Row] = ListStream(app, "rows", render=render_row)
    assert (rows.chunk, rows.max_pending) == (500, 1000)  # the documented defaults
    assert rows.dom_id(3) == "rows-3"
    for bad in ("a b", "", "x" * 200, True, 1.5, "a\nb", "#x"):
        with pytest.raises(ValueError, match="item keys"):
            rows.dom_id(bad)
    bare: ListStream[Row] = ListStream(app, "bare", render=lambda row: f"<li>{row.text}</li>")
    with pytest.raises(ValueError, match='id="bare-1"'):
        bare.html(Row(1, "no id"))


async def test_a_failing_source_reports_and_tells_the_page() -> None:
    app = App()
    rows: ListStream[Row] = ListStream(app, "rows", render=render_row)

    @app.page("/")
    class Broken(Page):
        async def render(self) -> str:
            return f"<ol {rows.attrs}></ol>"

        @rows.source()
        def items(self) -> list[Row]:
            raise RuntimeError("the database is away")

    async with Client(app) as client:
        page = await client.get("/")
        async with page.stream() as stream:
            event = await stream.wait_for(lambda e: e.type == "datastar-patch-signals")
            assert event.signals["_error"]["status"] == 500


async def test_topics_keep_lists_apart() -> None:
    app = App()
    messages: ListStream[Row] = ListStream(app, "rows", render=render_row)
    rooms: dict[str, list[Row]] = {"a": [Row(1, "in a")], "b": [Row(2, "in b")]}

    @app.page("/rooms/{room}")
    class Room(Page):
        room: str

        async def render(self) -> str:
            return f"<ol {messages.attrs}></ol>"

        @messages.source(topic="{room}")
        def items(self) -> list[Row]:
            return rooms[self.room]

    async with Client(app) as client:
        a, b = await client.get("/rooms/a"), await client.get("/rooms/b")
        async with a.stream() as in_a, b.stream() as in_b:
            model_a, model_b = Model(), Model()
            await load(in_a, model_a, 1)
            await load(in_b, model_b, 1)
            await settle(in_a, model_a)
            await settle(in_b, model_b)
            await messages.append(Row(3, "to a"), topic="a")
            await settle(in_a, model_a)
            assert [e for e in await settle(in_b, model_b) if not e.comment] == []
            assert model_a.ids() == ["rows-1", "rows-3"]
            assert model_b.ids() == ["rows-2"]


@given(st.binary())
def test_decoding_arbitrary_bytes_gives_an_operation_or_a_clean_error(data: bytes) -> None:
    try:
        op = ListOp.decode(data)
    except ValueError:
        return
    assert re.fullmatch(r"[A-Za-z0-9_-]+", op.key)


@given(st.text(max_size=20), st.sampled_from([1, 2, 3, 4]), st.text(max_size=40))
def test_decoding_round_trips_and_rejects_unsafe_keys(key: str, kind: int, html: str) -> None:
    data = b'[%d, "%s", "%s"]' % (kind, key.encode("unicode_escape"), html.encode("unicode_escape"))
    try:
        op = ListOp.decode(data)
    except ValueError:
        return
    assert re.fullmatch(r"[A-Za-z0-9_-]+", op.key)
    assert ListOp.decode(op.encode()) == op


async def test_every_viewer_loads_again_when_the_broker_reconnects() -> None:
    source = Source()
    source.fill(20)
    app, _ = make_app(source)
    async with Client(app) as client:
        page = await client.get("/")
        model = Model()
        async with page.stream() as stream:
            await load(stream, model, 20)
            await settle(stream, model)
            source.put(Row(99, "sent while the broker was away"))  # its operation is lost
            assert isinstance(app.broker, MemoryBroker)
            app.broker.simulate_reconnect()  # as NATS does once it is back
            events = await settle(stream, model)
            assert [e.option("mode") for e in events if e.option("selector") == "#rows"] == [
                "inner"
            ]
            assert model.ids() == expected(source)
        assert app.live.lists.viewers == 0  # the stream ended: nothing is kept


async def test_an_operation_on_one_process_reaches_viewers_on_another(nats_server: str) -> None:
    source = Source()
    source.fill(1_000)
    prefix = f"lists{uuid.uuid4().hex[:8]}"
    settings = Settings(secret_key="lists", nats_url=nats_server, subject_prefix=prefix)
    app_a, rows_a = make_app(source, settings)
    app_b, _ = make_app(source, settings)
    async with Client(app_a) as on_a, Client(app_b) as on_b:
        page_a, page_b = await on_a.get("/"), await on_b.get("/")
        model_a, model_b = Model(), Model()
        async with page_a.stream() as stream_a, page_b.stream() as stream_b:
            await load(stream_a, model_a, 1_000)
            await load(stream_b, model_b, 1_000)
            await settle(stream_a, model_a)
            await settle(stream_b, model_b)
            await rows_a.prepend(source.put(Row(-1, "from a")))
            source.remove(7)
            await rows_a.delete(7)
            for stream, model in ((stream_a, model_a), (stream_b, model_b)):
                events = [e for e in await settle(stream, model) if not e.comment]
                assert [e.option("mode") for e in events] == ["prepend", "remove"]
                assert model.ids() == expected(source)
