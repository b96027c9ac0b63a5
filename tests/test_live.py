"""The live engine, driven in process with livepages.testing.Client."""

from __future__ import annotations

import asyncio
import gc
import time
import types
import zlib
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livepages import SSE, App, CompressionSettings, NotFound, Page, Session, Settings, action
from livepages.events import TAB, Event, on
from livepages.live import WriteState, passes_bodies_through
from livepages.tabs import Tab
from livepages.testing import Client

pytestmark = pytest.mark.anyio


@dataclass
class Changed(Event, subject="board.{board}"):
    board: str


@dataclass
class Posted(Event, subject="chat.{room}"):
    room: str
    text: str


@dataclass
class Nudged(Event, subject="nudge.{tab}"):
    tab: str


class State:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.renders: dict[str, int] = {}
        self.fail = False


def make_app(state: State, **settings: Any) -> App:
    app = App(settings=Settings(**settings))

    @app.page("/boards/{board}")
    @on(Changed, board="board")
    class Board(Page):
        board: str

        def render(self) -> str:
            state.renders[self.board] = state.renders.get(self.board, 0) + 1
            if state.fail:
                raise RuntimeError("render failed")
            return f'<p id="v">{state.values.get(self.board, 0)}</p>'

        @action
        async def bump(self) -> None:
            state.values[self.board] = state.values.get(self.board, 0) + 1
            await app.publish(Changed(board=self.board))

    @app.page("/mine")
    class Mine(Page):
        def render(self, tab: Tab) -> str:
            state.renders["mine"] = state.renders.get("mine", 0) + 1
            return f'<p id="f">{tab.state.get("filter", "all")}</p>'

        @action
        async def choose(self, tab: Tab, choice: Choice) -> None:
            tab.state["filter"] = choice.filter

        def opened(self, tab: Tab) -> None:
            tab.state["opened"] = tab.state.get("opened", 0) + 1

        def closed(self, tab: Tab) -> None:
            tab.state["closed"] = tab.state.get("closed", 0) + 1

        @on(Nudged, tab=TAB)
        async def nudged(self, event: Nudged, sse: SSE) -> None:
            await sse.patch_signals({"nudged": event.tab})

    @app.page("/rooms/{room}")
    class Room(Page):
        room: str

        def render(self) -> str:
            return '<ul id="messages"></ul>'

        @on(Posted, room="room")
        async def posted(self, event: Posted, sse: SSE) -> None:
            await sse.patch_elements(f"<li>{event.text}</li>", selector="#messages", mode="append")

    return app


@dataclass
class Choice:
    filter: str


@pytest.fixture
def state() -> State:
    return State()


async def test_a_stream_starts_with_the_current_render(state: State) -> None:
    state.values["a"] = 7
    async with Client(make_app(state)) as client:
        page = await client.get("/boards/a")
        assert page.status_code == 200
        assert page.tab
        async with page.stream() as stream:
            assert stream.status == 200
            assert stream.headers["content-type"] == "text/event-stream"
            event = await stream.next_event()
            assert event.type == "datastar-patch-elements"
            assert event.elements == '<main id="lp-root"><p id="v">7</p></main>'


async def test_a_change_reaches_every_viewer_with_one_render(state: State) -> None:
    async with Client(make_app(state)) as client:
        page = await client.get("/boards/a")
        assert state.renders["a"] == 1  # the document
        streams = [await page.stream().open() for _ in range(100)]
        for stream in streams:
            await stream.next_event()
        renders = state.renders["a"]
        assert renders == 2  # 100 viewers share one render of the view
        await page.action("bump")
        for stream in streams:
            assert '<p id="v">1</p>' in (await stream.next_event()).elements
        assert state.renders["a"] == renders + 1


async def test_an_unchanged_render_sends_nothing(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        async with page.stream() as stream:
            await stream.next_event()
            await app.publish(Changed(board="a"))  # nothing really changed
            assert await stream.drain() == []
            assert app.live.stats.dedup_skips >= 1


async def test_a_hundred_quick_changes_coalesce(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        async with page.stream() as stream:
            await stream.next_event()
            before = state.renders["a"]
            for _ in range(100):
                state.values["a"] = state.values.get("a", 0) + 1
                await app.publish(Changed(board="a"))
            events = await stream.drain()
            assert 1 <= len(events) <= 3
            assert events[-1].elements.endswith('<p id="v">100</p></main>')
            assert state.renders["a"] - before <= 3


async def test_events_reach_only_the_bound_view(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        a, b = await client.get("/boards/a"), await client.get("/boards/b")
        async with a.stream() as sa, b.stream() as sb:
            await sa.next_event()
            await sb.next_event()
            await a.action("bump")
            assert '<p id="v">1</p>' in (await sa.next_event()).elements
            assert await sb.drain() == []


async def test_a_per_tab_view_renders_once_per_tab(state: State) -> None:
    async with Client(make_app(state)) as client:
        first, second = await client.get("/mine"), await client.get("/mine")
        async with first.stream() as s1, second.stream() as s2:
            await s1.next_event()
            await s2.next_event()
            assert state.renders["mine"] == 4  # two GETs, two streams
            response = await first.action("choose", {"filter": "done"})
            assert response.status_code == 200  # it clears `_error` and its input's `errors`
            assert '"errors":{"filter":""}}' in response.text
            assert '<p id="f">done</p>' in (await s1.next_event()).elements
            assert await s2.drain() == []  # the other tab keeps its filter


async def test_tab_state_survives_a_reconnect_and_hooks_run(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/mine")
        async with page.stream() as stream:
            await stream.next_event()
            await page.action("choose", {"filter": "active"})
            await stream.next_event()
        async with page.stream() as again:  # the tab was hidden and is shown again
            assert '<p id="f">active</p>' in (await again.next_event()).elements
        tab = app.live.tabs.get(page.tab)
        assert tab.state["opened"] == 2
        assert tab.state["closed"] == 2


async def test_a_forged_tab_id_reloads_the_page_and_renders_nothing(state: State) -> None:
    async with Client(make_app(state)) as client:
        page = await client.get("/boards/a")
        forged = "A" * 32
        for bad in (forged, page.tab[:-2] + "xx", "", "not-a-tab"):
            async with page.stream({"X-LP-Tab": bad}) as stream:
                await asyncio.wait_for(stream.ended.wait(), 2)
                assert stream.status == 200
                event = await stream.next_event()
                assert event.type == "datastar-patch-elements"
                assert "window.location.reload()" in event.elements
                assert stream.events.empty()
        assert state.renders == {"a": 1}  # the page GET's render only


async def test_an_action_with_a_forged_tab_cannot_reach_tab_state(state: State) -> None:
    async with Client(make_app(state)) as client:
        page = await client.get("/mine")
        response = await page.action("choose", {"filter": "x"}, headers={"X-LP-Tab": "A" * 32})
        assert response.status_code == 200  # a Datastar request: the error is a signal patch
        assert '"_error":{"status":400,"message":"forged tab id' in response.text


async def test_a_fine_grained_handler_patches_without_re_rendering(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/rooms/42")
        other = await client.get("/rooms/7")
        async with page.stream() as stream, other.stream() as elsewhere:
            await stream.next_event()
            await elsewhere.next_event()
            renders = app.live.stats.renders
            await app.publish(Posted(room="42", text="hello"))
            event = await stream.next_event()
            assert event.option("selector") == "#messages"
            assert event.option("mode") == "append"
            assert event.elements == "<li>hello</li>"
            assert app.live.stats.renders == renders
            assert await elsewhere.drain() == []


async def test_a_tab_bound_event_reaches_only_that_tab(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        first, second = await client.get("/mine"), await client.get("/mine")
        async with first.stream() as s1, second.stream() as s2:
            await s1.next_event()
            await s2.next_event()
            await app.publish(Nudged(tab=first.tab))
            assert (await s1.next_event()).signals == {"nudged": first.tab}
            assert await s2.drain() == []


async def test_a_render_error_is_reported_and_the_stream_lives_on(state: State) -> None:
    app = make_app(state)
    errors: list[BaseException] = []
    app.on_error(lambda request, exc: errors.append(exc))
    async with Client(app) as client:
        page = await client.get("/boards/a")
        async with page.stream() as stream:
            await stream.next_event()
            state.fail = True
            await page.action("bump")
            event = await stream.next_event()
            assert event.signals == {
                "_error": {"status": 500, "message": "This page failed to update."}
            }
            assert isinstance(errors[-1], RuntimeError)
            state.fail = False
            await page.action("bump")
            assert '<p id="v">2</p>' in (await stream.next_event()).elements


async def test_a_render_that_answers_4xx_tells_the_page_and_reports_nothing() -> None:
    # A render that raises NotFound (what it shows is gone, or not this viewer's) is the
    # page's own answer, as on a GET: its status and message, not a reported failure.
    app = App()
    errors: list[BaseException] = []
    app.on_error(lambda request, exc: errors.append(exc))
    items = {"a": "apple"}

    @app.page("/items/{key}")
    @on(Changed, board="key")
    class Item(Page):
        key: str

        def render(self) -> str:
            if self.key not in items:
                raise NotFound(f"there is no item {self.key}")
            return f"<p>{items[self.key]}</p>"

        @action
        async def remove(self) -> None:
            items.pop(self.key, None)
            await app.publish(Changed(board=self.key))

    async with Client(app) as client:
        page = await client.get("/items/a")
        async with page.stream() as stream:
            assert "<p>apple</p>" in (await stream.next_event()).elements
            await page.action("remove")
            event = await stream.next_event()
            assert event.signals == {"_error": {"status": 404, "message": "there is no item a"}}
    assert errors == []


async def test_heartbeat_comments_keep_idle_streams_alive(state: State) -> None:
    async with Client(make_app(state, heartbeat=0.05)) as client:
        page = await client.get("/boards/a")
        async with page.stream() as stream:
            await stream.next_event()
            beat = await stream.next_event(comments=True)
            assert beat.comment


async def test_a_slow_consumer_neither_delays_others_nor_grows_a_queue(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        slow = await page.stream().open()
        fast = await page.stream().open()
        await slow.next_event()
        await fast.next_event()
        slow.reading.clear()  # its socket is full from now on
        for n in range(1, 51):
            await page.action("bump")
            event = await fast.next_event()
            assert f'<p id="v">{n}</p>' in event.elements
        busy = [c for c in app.live.connections if c.state is not WriteState.OPEN]
        assert len(busy) == 1
        assert busy[0].state is WriteState.BEHIND  # one newer state waits, never a list
        slow.reading.set()
        events = await slow.drain()
        # The blocked write, then straight to the latest state: no backlog of 50.
        assert len(events) <= 2
        assert events[-1].elements.endswith('<p id="v">50</p></main>')


async def test_a_stuck_write_is_dropped_after_the_timeout(state: State) -> None:
    app = make_app(state, write_timeout=0.1)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        stuck = await page.stream().open()
        await stuck.next_event()
        stuck.reading.clear()
        await page.action("bump")
        for _ in range(100):
            if not app.live.connections:
                break
            await asyncio.sleep(0.02)
        assert not app.live.connections
        assert app.live.stats.dropped == 1


async def test_gzip_streams_decode_event_by_event(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        stream = client.stream("/boards/a/_live", "", {**page.headers, "accept-encoding": "gzip"})
        chunks: list[bytes] = []
        original = stream._send

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message["body"])
                return
            await original(message)

        stream._send = capture  # type: ignore[method-assign]
        await stream.open()
        await page.action("bump")
        for _ in range(100):
            if len(chunks) >= 2:
                break
            await asyncio.sleep(0.01)
        assert stream.headers["content-encoding"] == "gzip"
        inflate = zlib.decompressobj(wbits=31)
        first = inflate.decompress(chunks[0]).decode()
        assert first.endswith('<p id="v">0</p></main>\n\n')
        second = inflate.decompress(chunks[1]).decode()
        assert second.endswith('<p id="v">1</p></main>\n\n')
        assert len(chunks[1]) < len(second) / 4
        await stream.close()


async def test_shutdown_ends_a_thousand_streams_promptly(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        streams = [await page.stream().open() for _ in range(1000)]
        await streams[-1].next_event()
        started = time.monotonic()
        await app.shutdown()
        await asyncio.gather(*(asyncio.wait_for(s.ended.wait(), 2) for s in streams))
        elapsed = time.monotonic() - started
        assert not app.live.connections
        assert elapsed < 2.0, f"shutdown took {elapsed:.2f}s"


async def test_new_streams_are_told_to_retry_while_shutting_down(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        await app.shutdown()
        async with page.stream() as stream:
            await asyncio.wait_for(stream.ended.wait(), 2)
            # Datastar retries a 503 (never a 204, which would stop the page for good).
            assert stream.status == 503
            assert stream.headers["retry-after"] == "1"


async def test_a_stream_the_server_gives_up_on_still_ends_its_response(state: State) -> None:
    # uvicorn --timeout-graceful-shutdown cancels open requests: the page should then
    # reconnect at once (a finished response), not after a cut connection's backoff.
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        stream = await page.stream().open()
        await stream.next_event()
        assert stream._task is not None
        stream._task.cancel()
        await asyncio.wait_for(stream.ended.wait(), 2)
        await asyncio.wait_for(asyncio.shield(stream._task), 2)
        assert not app.live.connections


async def test_a_stream_ended_while_its_last_event_waits_finishes_after_it(state: State) -> None:
    app = make_app(state)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        stream = await page.stream().open()
        await stream.next_event()
        stream.reading.clear()  # the client is slow, not gone
        (connection,) = app.live.connections
        connection.end(b'event: datastar-patch-signals\ndata: signals {"bye":1}\n\n')
        assert connection.state is WriteState.ENDING
        stream.reading.set()
        await asyncio.wait_for(stream.ended.wait(), 2)
        assert (await stream.next_event()).signals == {"bye": 1}
        assert app.live.stats.dropped == 0


async def test_a_per_session_view_renders_once_per_session() -> None:
    app = App(sessions=True)
    renders: list[str | None] = []

    @app.page("/me")
    @on(Changed)
    class Me(Page):
        def render(self, session: Session[dict[str, str]]) -> str:
            renders.append(session.id)
            return f"<p>{len(renders)}</p>"

    first, second = Client(app), Client(app)  # two browsers: two sessions
    async with first, second:
        streams = []
        for client in (first, second):
            page = await client.get("/me")
            for _ in range(3):  # three tabs per session
                tab = await client.get("/me")
                streams.append(await tab.stream().open())
            assert page.status_code == 200
        for stream in streams:
            await stream.next_event()
        renders.clear()
        await app.publish(Changed(board="x"))
        for stream in streams:
            await stream.next_event()
        assert len(renders) == 2  # six viewers, two sessions
        assert len(set(renders)) == 2


class Recorder:
    """A pure ASGI middleware that notes every message its app sends on a live stream."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def noting(message: Message) -> None:
            if scope["path"].endswith("/_live"):
                self.seen.append(message["type"])
            await send(message)

        await self.app(scope, receive, noting)


def _gzip_board(state: State, middleware: list[Middleware], *, compress: bool) -> App:
    app = make_app(state)
    app.user_middleware.extend(middleware)
    if not compress:
        app.live.compression = CompressionSettings(encodings=())
    return app


@pytest.mark.parametrize("compress", [False, True], ids=["plain-stream", "livepages-gzip"])
async def test_gzip_middleware_in_the_app_passes_streams_whole(
    state: State, compress: bool
) -> None:
    # Starlette 0.47's GZipMiddleware held the response start of an event stream until
    # the first body came through it; bodies that went around it made every stream a 500.
    app = _gzip_board(state, [Middleware(GZipMiddleware, minimum_size=10)], compress=compress)
    async with Client(app) as client:
        page = await client.get("/boards/a")
        headers = {"accept-encoding": "gzip"}
        stream = client.stream("/boards/a/_live", "", {**page.headers, **headers})
        if compress:  # read the raw body: it must be livepages' own gzip, flushed per event
            inflate = zlib.decompressobj(wbits=31)
            text: list[str] = []
            original = stream._send

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.body":
                    text.append(inflate.decompress(message["body"]).decode())
                    return
                await original(message)

            stream._send = capture  # type: ignore[method-assign]
        async with stream:
            assert stream.status == 200
            if compress:
                assert stream.headers["content-encoding"] == "gzip"
                await page.action("bump")
                for _ in range(100):
                    if len(text) >= 2:
                        break
                    await asyncio.sleep(0.01)
                assert text[1].endswith('<p id="v">1</p></main>\n\n')
            else:
                assert "content-encoding" not in stream.headers
                assert '<p id="v">0</p>' in (await stream.next_event()).elements
                await page.action("bump")
                assert '<p id="v">1</p>' in (await stream.next_event()).elements


async def test_middleware_in_and_around_the_app_sees_every_write(state: State) -> None:
    inside: list[str] = []
    around: list[str] = []
    app = make_app(state)
    app.user_middleware.append(Middleware(Recorder, seen=inside))
    outer = Starlette(
        routes=[Mount("/app", app=app)], middleware=[Middleware(Recorder, seen=around)]
    )
    async with Client(outer) as client:
        await app.startup()
        page = await client.get("/app/boards/a")
        async with page.stream() as stream:
            await stream.next_event()
            await page.action("bump")
            await stream.next_event()
    await app.shutdown()
    body = "http.response.body"
    for seen in (inside, around):  # the start and two events (then the client left)
        assert seen == ["http.response.start", body, body]


def _awaiting(task: asyncio.Task[Any]) -> list[str]:
    """The coroutines ``task`` is suspended in, outermost first."""
    names: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and hasattr(awaited, "cr_code"):
        names.append(awaited.cr_code.co_qualname)
        awaited = awaited.cr_await
    return names


#: The layers between a livepages app and its page's stream endpoint.
_LAYERS = {"ServerErrorMiddleware.__call__", "ExceptionMiddleware.__call__", "Router.app"}


async def test_an_idle_stream_holds_no_middleware_frame(state: State) -> None:
    # The layers only watch the response start: an open stream leaves them (and the
    # request's objects), several KiB per stream, and waits from the app's own call.
    async with Client(make_app(state)) as client:
        page = await client.get("/boards/a")
        stream = await page.stream().open()
        await stream.next_event()
        assert stream._task is not None
        held = _awaiting(stream._task)
        assert "LiveEngine._hold" in held
        assert "LiveEngine.serve" not in held
        assert not _LAYERS & set(held), held
        await page.action("bump")  # and it still gets every change
        assert '<p id="v">1</p>' in (await stream.next_event()).elements
        await stream.close()


async def test_a_stream_of_an_app_mounted_in_another_leaves_the_inner_layers(
    state: State,
) -> None:
    inner = make_app(state)
    outer = App(settings=Settings(), routes=[Mount("/in", app=inner)])
    async with Client(outer) as client:
        await inner.startup()
        page = await client.get("/in/boards/a")
        stream = await page.stream().open()
        await stream.next_event()
        assert stream._task is not None
        held = _awaiting(stream._task)
        assert "LiveEngine._hold" in held
        assert "Router.app" in held  # the outer app's router, down to the mount
        assert held.count("_Offering.__call__") == 2  # each app's own: the inner one holds
        await page.action("bump")
        assert '<p id="v">1</p>' in (await stream.next_event()).elements
        await stream.close()
    await inner.shutdown()


async def _open_one_stream(app: App) -> None:
    async with Client(app) as client:  # leaving waits for the stream's request to end
        page = await client.get("/boards/a")
        await page.stream().open()


def _is_coroutine_of(thing: object, name: str) -> bool:
    return isinstance(thing, types.CoroutineType) and thing.cr_code.co_qualname == name


class FailsAfter:
    """A layer that passes bodies through, then fails once its app has returned."""

    passes_bodies_through = True

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["path"].endswith("/_live"):
            raise RuntimeError("failed after the stream left")


async def test_a_layer_failing_after_the_stream_left_it_leaves_no_stream(state: State) -> None:
    app = make_app(state)
    app.user_middleware.append(Middleware(FailsAfter))
    with pytest.raises(RuntimeError, match="failed after the stream left"):
        await _open_one_stream(app)
    assert not app.live.connections
    # Its rest (still referenced by the error's traceback) never ran, and was closed:
    # not left for the collector to find unawaited.
    rests = [o for o in gc.get_objects() if _is_coroutine_of(o, "LiveEngine._hold")]
    assert rests
    assert all(rest.cr_frame is None for rest in rests)


async def test_a_stream_behind_a_body_changing_middleware_stays_inside_it(state: State) -> None:
    app = make_app(state)
    app.user_middleware.append(Middleware(Recorder, seen=[]))
    async with Client(app) as client:
        page = await client.get("/boards/a")
        stream = await page.stream().open()
        await stream.next_event()
        assert stream._task is not None
        held = _awaiting(stream._task)
        assert {"Recorder.__call__", "LiveEngine.serve", "LiveEngine._hold"} <= set(held)
        await stream.close()


def test_only_starlettes_own_layers_count_as_passing_bodies_through() -> None:
    router = Router()
    plain = ServerErrorMiddleware(ExceptionMiddleware(router))
    assert passes_bodies_through(plain, router)
    gzip = ServerErrorMiddleware(GZipMiddleware(ExceptionMiddleware(router)))
    assert not passes_bodies_through(gzip, router)
    assert not passes_bodies_through(Recorder(router, []), router)
