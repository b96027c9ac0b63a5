"""The live engine: every open page holds a stream; a change re-renders and morphs it.

Concepts:

- A **view** is one distinct rendering of a page: the page's parameters, plus the
  session or the tab when its render (or an event binding) depends on them.
  Viewers of a shared view share one render and one encoded byte string.
- A **connection** is one open stream. It belongs to one view.
- A view's **reads** are what its last render read from the store
  (``livepages.reads``): a commit that changes one of them re-renders the view.

What a change costs: the broker calls the view's callback inline; the view marks
itself dirty and, if no render is running, starts one task. The render runs
once, however many changes arrived meanwhile (latest wins), and an identical
result sends nothing. The encoded event is written to each connection from the
render task, through the ``send`` its endpoint received, started eagerly
(``livepages.eager``): when the socket accepts the bytes at once (the common
case), that is the whole cost per viewer: no queue, no task, no re-encoding.
Only a connection whose write must wait gets a task, which finishes that write
and then sends the latest state (never a backlog). A write stuck past
``write_timeout`` drops the client and aborts its connection where the server
allows (``livepages.abort``).

The response start and every body write go through the middleware, so any
middleware (GZip, logging, anything) sees one whole response. Bodies skip only
the layers known to leave them alone (``passes_bodies_through``). A middleware's
``send`` wrapper may run in the render task rather than the request's.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from livepages.abort import SERVER_SEND, abort_connection
from livepages.broker.base import Broker, BrokerError
from livepages.builds import reload_event as build_reload_event
from livepages.compression import CompressionSettings, StreamCompressor
from livepages.datastar import ServerSentEventGenerator, events
from livepages.datastar.response import sse_headers
from livepages.decoding import DECODE_ERRORS
from livepages.documents import Documents
from livepages.eager import run_eagerly
from livepages.events import TAB, USER, Handler
from livepages.handoff import HANDOFF, Handoff
from livepages.hooks import CloseReason, Hooks, Rendered, StreamClosed, StreamOpened
from livepages.injection import Context, Injector, Plan
from livepages.lists import Lists
from livepages.pages import Page, root_path, within_mount
from livepages.plans import Hook, LiveScope, PagePlan
from livepages.presence import Presence
from livepages.protocol import (
    BUILD_HEADER,
    CSRF_SIGNAL,
    SESSION_CLOSED,
    SESSION_SCOPE_KEY,
    TAB_HEADER,
    TAB_REFRESH,
    ClosedReason,
    SessionNotice,
)
from livepages.reads import ReadIndex
from livepages.reports import Reporter
from livepages.responses import error_event, reload_event
from livepages.sessions.session import SessionEnded
from livepages.settings import Settings
from livepages.shell import root
from livepages.tabs import Tab, TabRegistry
from livepages.visitors import Visitors

if TYPE_CHECKING:
    from livepages.broker.base import Message as BrokerMessage
    from livepages.broker.base import Subscription

__all__ = [
    "Connection",
    "LiveEngine",
    "LiveHost",
    "LiveStats",
    "View",
    "WriteState",
    "passes_bodies_through",
]

log = logging.getLogger("livepages.live")

#: Starlette's own layers: they watch for the response start and pass bodies on as given.
_BODY_TRANSPARENT = (ServerErrorMiddleware, ExceptionMiddleware)
_BODY = "http.response.body"
_HEARTBEAT = b": \n\n"
_NEVER = float("inf")
#: Seconds a client should wait before reopening a stream refused during shutdown.
_RETRY_AFTER = b"1"
#: What viewers see when a live render or an event handler fails (outside debug mode).
_UPDATE_FAILED = "This page failed to update."
#: What decoding an event from the broker raises for bytes that are not that event.
_MALFORMED: tuple[type[Exception], ...] = (*DECODE_ERRORS, msgspec.ValidationError)


#: Makes a view: ``View`` itself, or a kind of its own (``livepages.personal``).
ViewFactory = Callable[["LiveEngine", tuple[Any, ...], PagePlan, Context], "View"]


class LiveHost(Protocol):
    """What the live engine needs of the app that serves it (``App`` is one)."""

    settings: Settings
    broker: Broker
    compression: CompressionSettings
    injector: Injector
    errors: Reporter
    visitors: Visitors
    documents: Documents
    hooks: Hooks
    presence: Presence


class LiveStats:
    """Counters for metrics and tests.

    Renders, dedup skips, render errors and drops come from the lifecycle hooks
    (:meth:`listen`); patches and bytes are counted by each write, which is too
    frequent (once per viewer per change) for an event of its own.
    """

    __slots__ = (
        "bytes",
        "dedup_skips",
        "dropped",
        "patches",
        "payload_bytes",
        "render_errors",
        "renders",
    )

    def __init__(self) -> None:
        self.renders = 0
        self.dedup_skips = 0
        self.render_errors = 0
        self.patches = 0
        #: Bytes written to streams (after compression, where a stream compresses).
        self.bytes = 0
        #: Bytes of the events handed to open streams, before compression.
        self.payload_bytes = 0
        self.dropped = 0

    def listen(self, hooks: Hooks) -> None:
        """Count from the app's lifecycle hooks."""
        hooks.add(Rendered, self._rendered)
        hooks.add(StreamClosed, self._closed)

    def _rendered(self, event: Rendered) -> None:
        self.renders += 1
        self.render_errors += event.failed
        self.dedup_skips += event.dedup

    def _closed(self, event: StreamClosed) -> None:
        self.dropped += event.reason is CloseReason.DROPPED


class WriteState(enum.Enum):
    """Where one connection's writes stand::

        OPEN    --a write must wait for the socket-->   WAITING
        WAITING --a newer state arrives-->              BEHIND
        WAITING, BEHIND --the write finishes-->         OPEN (BEHIND: then writes the latest)
        OPEN    --end(): its last write must wait-->    ENDING
        ENDING  --the write finishes-->                 finishes the response: CLOSED
        WAITING, BEHIND, ENDING --end() or timeout-->   dropped: CLOSED
        any     --finished, dropped or client gone-->   CLOSED

    Only WAITING, BEHIND and ENDING hold a task (the one finishing the write): a
    connection that falls behind keeps one flag, never a backlog. A write that
    waits longer than ``write_timeout`` drops the connection.
    """

    OPEN = "open"
    WAITING = "waiting"
    BEHIND = "behind"
    ENDING = "ending"
    CLOSED = "closed"


_OPEN, _WAITING, _BEHIND, _ENDING, _CLOSED = WriteState


class Connection:
    """One open live stream. Kept small: there may be tens of thousands.

    Every write goes through ``send``: the endpoint's, or the one its app was
    called with when nothing in between touches bodies (``passes_bodies_through``).
    A write starts in the caller's task (``run_eagerly``), and only one that must
    wait for the socket gets a task.
    """

    __slots__ = (
        "compressor",
        "engine",
        "expires_at",
        "opened_at",
        "reason",
        "root",
        "send",
        "server_send",
        "session",
        "state",
        "tab",
        "task",
        "timer",
        "view",
        "viewer",
        "writer",
    )

    def __init__(
        self,
        engine: LiveEngine,
        view: View,
        send: Send,
        tab: Tab | None,
        compressor: StreamCompressor | None,
        task: asyncio.Task[Any] | None,
    ) -> None:
        self.engine = engine
        self.view = view
        self.send = send
        #: The server's own ``send``, only to abort the connection (``abort_connection``).
        self.server_send: Send | None = None
        self.tab = tab
        self.compressor = compressor
        #: The request's task: woken when the stream ends from elsewhere.
        self.task = task
        self.state = _OPEN
        self.session: str | None = None
        #: When the stored session it belongs to expires (Unix time): it ends then.
        self.expires_at = _NEVER
        #: The mount prefix of the app that serves this stream.
        self.root = ""
        self.timer: asyncio.TimerHandle | None = None
        self.writer: asyncio.Task[None] | None = None
        #: Why the stream ended, once the engine or the app ended it.
        self.reason = CloseReason.CLIENT_LEFT
        self.opened_at = 0.0
        #: Its own values, on a personal view (a ``livepages.personal.Viewer``).
        self.viewer: Any = None

    @property
    def ended(self) -> bool:
        """Whether the stream is over: finished, dropped, or its client gone."""
        return self.state is _CLOSED

    @property
    def idle(self) -> bool:
        """Whether a write now goes out at once, in order (``deliver`` would not drop it)."""
        return self.state is _OPEN

    async def drained(self) -> None:
        """Return once no write waits for the socket, or the stream is over."""
        while self.writer is not None and self.state is not _CLOSED:
            await asyncio.wait((self.writer,))

    def deliver(self, payload: bytes) -> None:
        """Write ``payload`` now, or after the write in progress (latest wins)."""
        state = self.state
        if state is _OPEN:
            self.engine.stats.payload_bytes += len(payload)
            if self.compressor is not None:
                payload = self.compressor.compress(payload)
            self._write(payload, True)
        elif state is _WAITING:
            self.state = _BEHIND

    def end(self, final: bytes = b"") -> None:
        """Finish the response (after ``final``); the client then reconnects or leaves."""
        if self.state is _CLOSED:
            return
        if self.reason is CloseReason.CLIENT_LEFT:
            self.reason = CloseReason.ENDED
        if self.state is not _OPEN:
            self.drop()  # stuck on a write: it cannot be finished cleanly
            return
        if final:
            self.deliver(final)
            if self.state is _WAITING:
                self.state = _ENDING  # finish once this write is through
            if self.state is not _OPEN:
                return
        self._finish_response()

    def drop(self) -> None:
        """Drop a stuck or failed client: abandon its write and close its connection now.

        The connection is aborted at the transport where the server allows it
        (``abort_connection``), so neither the socket nor the bytes queued for it
        outlive the stream. The request's task then returns.
        """
        if self.state is _CLOSED:
            return
        self.state = _CLOSED
        if self.writer is not None:
            self.writer.cancel()
        if self.server_send is not None:
            abort_connection(self.server_send)
        self._wake()

    def release(self) -> None:
        """The request is over: stop any write still in flight."""
        self.state = _CLOSED
        if self.writer is not None:
            self.writer.cancel()

    def _finish_response(self) -> None:
        tail = self.compressor.close() if self.compressor is not None else b""
        self._write(tail, False)

    def _write(self, body: bytes, more: bool) -> None:
        # A fresh message per write: middleware may change the one it is given.
        message = {"type": _BODY, "body": body, "more_body": more}
        try:
            rest = run_eagerly(self.send(message))
        except Exception:  # the server refused the write: the client is gone
            self._gone()
            return
        if rest is None:  # the common case, kept short: this runs once per viewer
            stats = self.engine.stats
            stats.patches += 1
            stats.bytes += len(body)
            if not more:
                self._gone()
            return
        # The socket is full: finish this write in a task, with a deadline.
        self.state = _WAITING if more else _ENDING
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.engine.write_timeout, self._timed_out)
        self.writer = loop.create_task(self._finish(rest, len(body), more))

    def _written(self, size: int, more: bool) -> None:
        stats = self.engine.stats
        stats.patches += 1
        stats.bytes += size
        if not more:  # the response is complete: its request has nothing left to wait for
            self._gone()

    async def _finish(self, rest: Awaitable[Any], size: int, more: bool) -> None:
        try:
            await rest
        except asyncio.CancelledError:
            return  # dropped meanwhile
        except Exception:
            self._gone()
            return
        finally:
            self.writer = None
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        state = self.state
        if state is _CLOSED:
            return
        self.state = _OPEN
        self._written(size, more)
        if not more:
            return
        if state is _ENDING:
            self._finish_response()
        elif state is _BEHIND:
            latest = self.view.latest(self)
            if latest is not None:
                self.deliver(latest)

    def _timed_out(self) -> None:
        self.timer = None
        self.reason = CloseReason.DROPPED
        log.info("dropping a live stream stuck on a write for %.1fs", self.engine.write_timeout)
        self.drop()

    def _gone(self) -> None:
        self.state = _CLOSED
        self._wake()

    def _wake(self) -> None:
        """End the request's wait for a disconnect, unless this runs in that very task."""
        task = self.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()


class ViewSSE(ServerSentEventGenerator):
    """What an event handler gets as ``SSE``: sends go to every viewer of the view."""

    __slots__ = ("used", "view")

    def __init__(self, view: View) -> None:
        self.view = view
        self.used = False
        self.started = True
        self.closed = False

    async def start(self) -> None:
        """Nothing to start: the streams are open."""

    async def send(self, event: bytes) -> None:
        """Write the event to every connection of the view."""
        self.used = True
        self.view.broadcast(event)

    async def close(self) -> None:
        """Handlers cannot close the view's streams."""


class View:
    """One distinct rendering of a page and the connections that show it."""

    __slots__ = (
        "connections",
        "ctx",
        "dirty",
        "engine",
        "key",
        "listening",
        "page",
        "payload",
        "plan",
        "reads",
        "reload_session",
        "root",
        "stale",
        "subscriptions",
        "task",
    )

    def __init__(self, engine: LiveEngine, key: tuple[Any, ...], plan: PagePlan, ctx: Context):
        self.engine = engine
        self.key = key
        self.plan = plan
        self.page: Page = ctx.page
        self.ctx = ctx
        #: The mount prefix the view's URLs carry, whoever triggers a render.
        self.root: str = ctx.request.scope.get("root_path", "")
        self.connections: list[Connection] = []
        self.payload: bytes | None = None
        self.dirty = False
        self.stale = False
        self.task: asyncio.Task[None] | None = None
        self.subscriptions: list[Subscription] = []
        #: Whether every subscription is ready, so that no later change can be missed.
        self.listening = False
        #: Read the session afresh at the next render: a request of this view's own
        #: visitor (an action) may have saved, signed in or out since.
        self.reload_session = False
        #: What its last render read (``livepages.reads``): a change to one re-renders it.
        self.reads: tuple[Hashable, ...] = ()

    def invalidate(self) -> None:
        """Something this view depends on changed: render soon, once."""
        self.dirty = True
        if self.task is None and self.connections:
            self.task = asyncio.get_running_loop().create_task(self._render_loop())

    async def _render_loop(self) -> None:
        # A render runs in the task of whoever published (a request of another app,
        # a background loop): its URLs must point inside this view's mount.
        root_path.set(self.root)
        try:
            if not self.listening and not await self._listen():
                return
            # Re-check after each render: a change that arrived during it is never lost.
            while self.dirty and self.connections:
                self.dirty = False
                await self._render_once()
        finally:
            self.task = None

    async def _listen(self) -> bool:
        """Wait until the broker routes every change here: a first render sent before
        that could show a state whose next change never arrives (on a networked broker)."""
        try:
            for subscription in self.subscriptions:
                await subscription.ready()
        except BrokerError:
            log.exception("a view of %s could not subscribe; ending its streams", self.page.url)
            # Their pages reconnect and get a view made afresh; the last one out of this
            # one disposes of it.
            if self.engine.views.get(self.key) is self:
                del self.engine.views[self.key]
            for connection in list(self.connections):
                connection.end()
            return False
        self.listening = True
        return True

    async def _render_once(self) -> None:
        host = self.engine.host
        started = time.perf_counter()
        if self.reload_session:
            # The session as the visitor's action left it, not as the stream's request
            # loaded it: one store read after the visitor's own action, none per event.
            self.reload_session = False
            self.ctx.request.scope.pop(SESSION_SCOPE_KEY, None)
        try:
            with self.engine.reads.recording(self):
                html = await host.documents.body(self.plan, self.page, self.ctx)
        except Exception as exc:
            self._rendered(started, 0, dedup=False, failed=True)
            if isinstance(exc, HTTPException) and exc.status_code < 500:
                # The page's own answer (what it shows is gone, or not this viewer's):
                # the page says so, as a GET or an action would; not an app failure.
                self.broadcast(error_event(exc.status_code, exc.detail))
                return
            await host.errors.report(self.ctx.request, exc)
            self.broadcast(error_event(500, host.errors.message(exc, _UPDATE_FAILED)))
            return
        payload = events.patch_elements(root(html))
        dedup = payload == self.payload
        self.stale = False
        if not dedup:
            self.payload = payload
            self.broadcast(payload)
        self._rendered(started, len(payload), dedup=dedup)

    def _rendered(self, started: float, size: int, *, dedup: bool, failed: bool = False) -> None:
        hooks = self.engine.host.hooks
        if hooks.wants(Rendered):
            page, scope = self.plan.cls.__name__, self.plan.scope.value
            duration = time.perf_counter() - started
            hooks.emit(Rendered(page, scope, duration, size, dedup, failed))

    def broadcast(self, payload: bytes) -> None:
        """Write one encoded event to every connection of this view."""
        for connection in self.connections:
            connection.deliver(payload)

    async def prepare(self, connection: Connection, ctx: Context) -> None:
        """Before ``join``: read what the viewer needs of its own (nothing, here)."""

    def latest(self, connection: Connection) -> bytes | None:
        """The latest event for ``connection``, to send once its stuck write is through."""
        return self.payload

    def refreshed(self, connection: Connection) -> None:
        """The viewer's tab or session changed (its own action): render again, reading
        the session afresh, unless every viewer sees the same render."""
        if self.plan.scope is not LiveScope.SHARED:
            self.reload_session = True
            self.invalidate()

    def reload(self) -> None:
        """Messages may have been lost (the broker reconnected): render again, with
        every viewer's own values read afresh."""
        self.reload_session = self.plan.scope is not LiveScope.SHARED
        self.invalidate()

    def join(self, connection: Connection) -> None:
        """Add a viewer: it gets the current state now, or with the first render."""
        self.connections.append(connection)
        if self.payload is not None and not self.stale:
            connection.deliver(self.payload)
        else:
            self.invalidate()

    def leave(self, connection: Connection) -> None:
        """Remove a viewer; the last one out disposes of the view."""
        try:
            self.connections.remove(connection)
        except ValueError:
            return
        if not self.connections:
            self.engine.dispose(self)

    def on_message(self, handler: Handler, plan: Plan | None, message: BrokerMessage) -> None:
        """The broker's callback: re-render, or run the page's handler for the event."""
        if plan is None:
            self.invalidate()
            return
        try:
            event = handler.event.decode(message.data)
        except _MALFORMED as exc:
            # Anyone who reaches the broker can publish on the subject: a message that
            # is not this event is dropped, never a handler call with garbage.
            log.warning(
                "ignoring a malformed %s on %s: %s", handler.event.__name__, message.subject, exc
            )
            return
        asyncio.get_running_loop().create_task(self._handle(plan, event))

    async def _handle(self, plan: Plan, event: Any) -> None:
        root_path.set(self.root)  # as in a render: this task belongs to the publisher
        sse = ViewSSE(self)
        host = self.engine.host
        ctx = Context(self.ctx.request, self.page, host, sse, dict(self.ctx.extras))
        ctx.extras[type(event)] = event
        try:
            kwargs = await host.injector.arguments(plan, ctx)
            await plan.call(self.page, **kwargs)
        except Exception as exc:
            await host.errors.report(self.ctx.request, exc)
            self.broadcast(error_event(500, host.errors.message(exc, _UPDATE_FAILED)))
            return
        if sse.used:
            self.stale = True  # the DOM moved past the last full render
        else:
            self.invalidate()


class LiveEngine:
    """Owns the views, the connections, the heartbeat, and shutting streams down."""

    def __init__(
        self, host: LiveHost, tabs: TabRegistry, personal: ViewFactory | None = None
    ) -> None:
        self.host = host
        self.views: dict[tuple[Any, ...], View] = {}
        #: Makes the one shared view of a page personal only through its session or
        #: tab (``livepages.personal``); None: such pages get a view per viewer.
        self.personal = personal
        #: What a kind of view keeps per page for the engine's life (``livepages.personal``
        #: keeps what each page's renders read).
        self.page_state: dict[PagePlan, Any] = {}
        self.connections: set[Connection] = set()
        self.stats = LiveStats()
        self.stats.listen(host.hooks)
        #: Which views read what (the store's records) in their last render.
        self.reads = ReadIndex()
        #: The list streams its connections show (``livepages.lists``).
        self.lists = Lists(host)
        self.tabs = tabs
        self.write_timeout = host.settings.write_timeout
        self.heartbeat = host.settings.heartbeat
        self.compression: CompressionSettings = host.compression
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.closing = False
        self.by_tab: dict[str, list[Connection]] = {}
        self._tab_subscription: Subscription | None = None
        self._session_subscription: Subscription | None = None
        self._reconnects = False  # whether _on_reconnect is registered with the broker
        self._watching = False  # whether end_session listens to the session manager
        self._rerenders: set[asyncio.Task[None]] = set()  # after reconnects, under way

    async def start(self) -> None:
        """Subscribe to the engine's own subjects and to the broker's reconnects; return
        once they are ready, so no stream opens before they hear everything. Idempotent."""
        if self.closing:
            return
        broker = self.host.broker
        if not self._reconnects:
            broker.add_reconnect_listener(self._on_reconnect)
            self._reconnects = True
        manager = self.host.visitors.sessions
        if manager is not None and not self._watching:
            # A shared store's watch: closed sessions end here even if a notice is lost.
            manager.add_close_listener(self.end_session)
            self._watching = True
        if self._tab_subscription is not None:
            return
        # (The tab store, if any, binds its bucket on first use: a store that cannot,
        # a misconfigured bucket say, fails only what needs tab state, with a 503.)
        tabs = broker.subscribe(TAB_REFRESH + "*", self._on_tab_refresh)
        sessions = broker.subscribe(SESSION_CLOSED + "*", self._on_session_closed)
        try:
            await tabs.ready()
            await sessions.ready()
        except BaseException:
            tabs.unsubscribe()  # a start tried again subscribes afresh
            sessions.unsubscribe()
            raise
        self._tab_subscription, self._session_subscription = tabs, sessions

    def _on_reconnect(self) -> None:
        # Messages may have been lost while the broker was away (tab refreshes among
        # them): every view renders again, with its tab's state read afresh (an
        # unchanged render sends nothing).
        task = asyncio.get_running_loop().create_task(self._rerender_all())
        self._rerenders.add(task)
        task.add_done_callback(self._rerenders.discard)

    async def _rerender_all(self) -> None:
        try:
            await self.tabs.reload_open()
        except HTTPException as exc:  # the store is still away: render what we have
            log.warning("re-rendering after a reconnect without fresh tab state: %s", exc.detail)
        for view in list(self.views.values()):
            view.reload()

    def _on_session_closed(self, message: BrokerMessage) -> None:
        try:
            notice = SessionNotice.decode(message.data)
        except ValueError:
            log.warning("ignoring a malformed notice on %s", message.subject)
            return
        self.end_session(message.subject[len(SESSION_CLOSED) :], notice)

    def end_session(self, key: str, notice: SessionNotice) -> None:
        """End the streams of the closed session ``key`` as ``notice`` says.

        Heard twice (the broker's notice and the session store's watch), the second
        finds its streams ended or ending and leaves them be.
        """
        for connection in [c for c in self.connections if c.session == key]:
            self._end_one(connection, notice)

    def _end_one(self, connection: Connection, notice: SessionNotice) -> None:
        if connection.state in (_ENDING, _CLOSED):
            return  # ended already: by the other notice, say
        caller = notice.caller_tab
        if notice.reason is ClosedReason.REPLACED or (
            caller and connection.tab and connection.tab.id == caller
        ):
            # It reconnects with the new cookie, or follows its own action's redirect.
            connection.end()
        else:
            target = self.host.visitors.closed_url
            connection.end(events.redirect(within_mount(target, connection.root)))

    def _on_tab_refresh(self, message: BrokerMessage) -> None:
        # Only views that belong to the tab (or its session): a shared view changes
        # when an event says so, not because one viewer acted.
        tab_id = message.subject[len(TAB_REFRESH) :]
        self.tabs.refreshed(tab_id, message.data)  # the state the action stored, if any
        for connection in self.by_tab.get(tab_id, ()):
            connection.view.refreshed(connection)

    # -- views ----------------------------------------------------------------------

    def view_for(self, plan: PagePlan, ctx: Context, tab: Tab | None) -> View:
        """The view this request belongs to, created (and subscribed) on first use."""
        scope = plan.scope
        key: tuple[Any, ...] = (plan, ctx.page.url)
        make: ViewFactory = View
        if plan.personal and self.personal is not None:
            make = self.personal  # one view; each viewer's own text filled in
        elif scope is LiveScope.TAB:
            # The tab id is bound to its session already; keying by both keeps a view
            # private to its visitor even if that binding were ever loosened.
            key += (Visitors.session_id(ctx.request), tab.id if tab else None)
        elif scope is LiveScope.SESSION:
            key += (Visitors.session_id(ctx.request),)
        view = self.views.get(key)
        if view is None:
            view = self.views[key] = make(self, key, plan, ctx)
            self._subscribe(view, tab)
        return view

    def _subscribe(self, view: View, tab: Tab | None) -> None:
        def resolve(source: str) -> Any:
            if source == TAB:
                return tab.id if tab else ""
            if source == USER:
                return Visitors.user_id(view.ctx.request) or ""
            return getattr(view.page, source)

        for subscription in view.plan.subscriptions:
            handler, plan = subscription.handler, subscription.plan
            pattern = handler.pattern(resolve)

            def callback(
                message: BrokerMessage, h: Handler = handler, p: Plan | None = plan
            ) -> None:
                view.on_message(h, p, message)

            view.subscriptions.append(self.host.broker.subscribe(pattern, callback))
        if self.host.presence.watches(view.plan):  # its render shows who is on its topic
            watch = self.host.presence.subscribe(view.plan, view.page, view.invalidate)
            view.subscriptions.append(watch)

    def dispose(self, view: View) -> None:
        """Forget a view nobody watches: unsubscribe, stop its render."""
        if self.views.get(view.key) is view:
            del self.views[view.key]
        self.reads.forget(view)
        for subscription in view.subscriptions:
            subscription.unsubscribe()
        view.subscriptions.clear()
        if view.task is not None:
            view.task.cancel()

    # -- streams --------------------------------------------------------------------

    async def serve(self, plan: PagePlan, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI handler of a page's ``/_live`` endpoint."""
        if self.closing:  # before anything else: the page must retry, not reload or stop
            await _unavailable(send)
            return
        request = Request(scope, receive)
        try:
            page = plan.spec.instance(request.path_params, request.query_params)
            ctx = Context(request, page, self.host)
            await self.host.visitors.admit_stream(ctx)  # loads the session the tab belongs to
        except HTTPException as exc:
            if exc.status_code == 503:  # the session store is away: come back shortly
                await _unavailable(send, exc.detail)
            elif isinstance(exc, SessionEnded):  # to sign in, and back to this page
                await _answer(send, scope, events.redirect(exc.location))
            else:
                await _refuse(send, exc.detail)
            return
        try:
            tab_id = self.tabs.verify(request.headers.get(TAB_HEADER), Visitors.session_id(request))
        except HTTPException:
            # Issued under another secret (a restart without a fixed key) or to another
            # session: this page cannot resume, so it loads afresh instead of going stale.
            await _reload(send, scope)
            return
        try:
            tab = ctx.extras[Tab] = await self._tab(plan, tab_id)
        except HTTPException as exc:  # the tab store is away: come back shortly
            await _unavailable(send, exc.detail)
            return
        encoding = self.compression.negotiate(request.headers.get("accept-encoding"))
        headers = {"vary": "Accept-Encoding"}
        if encoding is not None:
            headers["content-encoding"] = encoding
        await send(
            {"type": "http.response.start", "status": 200, "headers": sse_headers(scope, headers)}
        )
        compressor = self.compression.compressor(encoding) if encoding else None
        view = self.view_for(plan, ctx, tab)
        handoff: Handoff | None = scope.get(HANDOFF)
        body_send = send if handoff is None else handoff.send
        connection = Connection(self, view, body_send, tab, compressor, asyncio.current_task())
        connection.server_send = scope.get(SERVER_SEND)
        connection.session = Visitors.session_id(request)
        connection.expires_at = _session_end(request)
        connection.root = scope.get("root_path", "")
        self._greet(connection, request, plan)
        rest = self._hold(connection, view, ctx, receive)
        if handoff is not None and handoff.rest is None:
            # The layers above only watched the response start: let their frames (and
            # this request's objects) go, and hold the stream from the app's own call.
            handoff.rest = rest
            return
        await rest

    async def _hold(
        self, connection: Connection, view: View, ctx: Context, receive: Receive
    ) -> None:
        """Open the stream, then hold it until its client leaves or the engine ends it."""
        tab = connection.tab
        try:
            await self._open(connection, tab, view, ctx)
            del ctx  # an open stream needs only its connection: let the request go
            while connection.state is not _CLOSED:
                if (await receive())["type"] == "http.disconnect":
                    break
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if connection.state is _CLOSED and task is not None:
                task.uncancel()  # the engine's own wake-up: the stream is over
            else:
                # The server gave up on the request (a graceful-shutdown timeout): end
                # the response if that needs no waiting, so the page reconnects at once.
                connection.end()
                connection.drop()  # a no-op once the response is finished
        finally:
            connection.release()
            await self._close(connection, tab, view)

    def _greet(self, connection: Connection, request: Request, plan: PagePlan) -> None:
        """What a stream says first, when it must: reload a page of another build
        (``livepages.builds``); a fresh CSRF token for a page whose token the current
        key did not sign (a secret rotated since the page was rendered)."""
        build = self.host.documents.build.id
        sent = request.headers.get(BUILD_HEADER)
        if sent is not None and sent != build:
            connection.deliver(build_reload_event(build, plan.cls.kept_signals))
        sessions = self.host.visitors.sessions
        fresh = sessions.fresh_csrf(request) if sessions is not None else None
        if fresh is not None:
            connection.deliver(events.patch_signals({CSRF_SIGNAL: fresh}))

    async def _tab(self, plan: PagePlan, tab_id: str) -> Tab:
        """The stream's tab; its state read from the tab store (with many processes) only
        when the render depends on the tab: the stream may have moved from another process."""
        if plan.scope is LiveScope.TAB and self.tabs.store is not None:
            return await self.tabs.load(tab_id)
        return self.tabs.get(tab_id)

    async def _open(
        self, connection: Connection, tab: Tab | None, view: View, ctx: Context
    ) -> None:
        self.connections.add(connection)
        if tab is not None:
            self.tabs.attach(tab)
            self.by_tab.setdefault(tab.id, []).append(connection)
        self._start_heartbeat()
        connection.opened_at = time.monotonic()
        hooks = self.host.hooks
        if hooks.wants(StreamOpened):
            hooks.emit(StreamOpened(view.plan.cls.__name__))
        await self.host.presence.enter(connection, view.plan, ctx)  # before its first render
        await self._hook(view, Hook.OPENED)
        await view.prepare(connection, ctx)
        view.join(connection)
        self.lists.enter(connection, view.page, ctx.request)  # its own request: its session

    async def _close(self, connection: Connection, tab: Tab | None, view: View) -> None:
        self.connections.discard(connection)
        self.lists.leave(connection)
        view.leave(connection)
        self.host.presence.leave(connection)
        if tab is not None:
            self.tabs.detach(tab)
            mine = self.by_tab.get(tab.id, [])
            if connection in mine:
                mine.remove(connection)
            if not mine:
                self.by_tab.pop(tab.id, None)
        hooks = self.host.hooks
        if hooks.wants(StreamClosed):
            reason = CloseReason.SHUTDOWN if self.closing else connection.reason
            duration = time.monotonic() - connection.opened_at
            hooks.emit(StreamClosed(view.plan.cls.__name__, reason, duration))
        await self._hook(view, Hook.CLOSED)

    async def _hook(self, view: View, hook: Hook) -> None:
        plan = view.plan.hooks.get(hook)
        if plan is None:
            return
        try:
            kwargs = await self.host.injector.arguments(plan, view.ctx)
            await plan.call(view.page, **kwargs)
        except Exception as exc:
            await self.host.errors.report(view.ctx.request, exc)

    def _start_heartbeat(self) -> None:
        if self._heartbeat_task is None and self.heartbeat > 0:
            loop = asyncio.get_running_loop()
            self._heartbeat_task = loop.create_task(self._beat())

    async def _beat(self) -> None:
        try:
            while self.connections:
                await asyncio.sleep(self.heartbeat)
                now = time.time()
                for connection in list(self.connections):
                    if now >= connection.expires_at:
                        # Its session expired, noticed within a heartbeat: to sign in,
                        # then back to the page.
                        self._expire(connection)
                    else:
                        connection.deliver(_HEARTBEAT)
        finally:
            self._heartbeat_task = None

    def _expire(self, connection: Connection) -> None:
        """End the stream of an expired session: its page goes to sign in, and back."""
        if connection.state in (_ENDING, _CLOSED):
            return
        token = root_path.set(connection.root)  # the page's URL within its mount
        try:
            target = self.host.visitors.sign_in_url(connection.view.page.url)
        finally:
            root_path.reset(token)
        connection.end(events.redirect(target))

    def close_where(self, predicate: Callable[[Connection], bool], final: bytes = b"") -> int:
        """End the streams that match, after sending them ``final``; how many."""
        matched = [c for c in self.connections if predicate(c)]
        for connection in matched:
            connection.end(final)
        return len(matched)

    async def shutdown(self) -> None:
        """End every stream (clients reconnect to the next server) and stop renders."""
        self.closing = True
        self.close_where(lambda _: True)
        for view in list(self.views.values()):
            self.dispose(view)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        for subscription in (self._tab_subscription, self._session_subscription):
            if subscription is not None:
                subscription.unsubscribe()
        self._tab_subscription = self._session_subscription = None
        if self._reconnects:
            self.host.broker.remove_reconnect_listener(self._on_reconnect)
            self._reconnects = False
        self.lists.close()
        manager = self.host.visitors.sessions
        if self._watching and manager is not None:
            manager.remove_close_listener(self.end_session)
            self._watching = False
        for _ in range(100):  # let the stream tasks notice and clean up
            if not self.connections:
                break
            await asyncio.sleep(0.01)
        for task in list(self._rerenders):
            task.cancel()
        await self.tabs.close()


def _session_end(request: Request) -> float:
    """When the request's stored session expires; never without one (a guest's draft
    is not a session that can end)."""
    session = request.scope.get(SESSION_SCOPE_KEY)
    if session is None or not session.stored or session.expires_at is None:
        return _NEVER
    return float(session.expires_at)


async def _reload(send: Send, scope: Scope) -> None:
    """Answer a stream that cannot resume with a script that reloads its page."""
    await _answer(send, scope, reload_event())


async def _answer(send: Send, scope: Scope, event: bytes) -> None:
    """Answer a stream with one event, and end it."""
    headers = sse_headers(scope, {})
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": _BODY, "body": event, "more_body": False})


async def _refuse(send: Send, reason: str) -> None:
    """204: Datastar stops retrying a stream that answers No Content."""
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [(b"x-livepages-refused", reason.encode("latin-1", "replace"))],
        }
    )
    await send({"type": _BODY, "body": b"", "more_body": False})


async def _unavailable(send: Send, reason: str = "shutting down") -> None:
    """503 while shutting down (or while the session store is away): Datastar, with
    ``retry: 'always'``, tries again a second later (and keeps trying, without counting
    it towards its retry limit), so the page finds the next server or the store back.
    It never sees 204, which would stop it for good."""
    body = reason.encode("latin-1", "replace")
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"retry-after", _RETRY_AFTER),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"x-livepages-refused", body),
            ],
        }
    )
    await send({"type": _BODY, "body": body, "more_body": False})


def passes_bodies_through(stack: ASGIApp, inner: ASGIApp) -> bool:
    """Whether every layer from ``stack`` down to ``inner`` passes bodies on unchanged.

    Only Starlette's own error layers and livepages' own middleware (a class with
    ``passes_bodies_through = True``) are known to: they touch the response start,
    nothing else; any other middleware, the user's, might change bodies.
    When they all do, a live stream writes its body through the ``send`` its app
    was called with (``livepages.handoff``): each write then skips those per-request
    wrappers, a measurable part of the fan-out's cost per viewer, while every
    middleware outside the app still sees the whole stream. Otherwise bodies take
    the endpoint's own ``send``, through every layer: the plain path.
    """
    layer = stack
    while layer is not inner:
        transparent = getattr(type(layer), "passes_bodies_through", False)
        if not (transparent or type(layer) in _BODY_TRANSPARENT):
            return False
        layer = layer.app  # type: ignore[attr-defined]
    return True
