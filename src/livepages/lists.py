"""List streams: long keyed lists that pages show without the server holding them.

::

    posts = ListStream(app, "posts", render="post.html")     # items keyed by .id

    @app.page("/")
    class Feed(Page):
        async def render(self) -> str:
            return self.template("feed.html", posts=posts)   # <ol {{ posts.attrs }}></ol>

        @posts.source()                      # what a new viewer is sent: the app's own data
        async def items(self) -> AsyncIterator[Post]:
            async for post in db.posts():
                yield post

    await posts.prepend(post)                # one small patch to every viewer, everywhere
    await posts.update(post)
    await posts.delete(post.id)

How it works, and why:

- The page renders only the list's **container** (``posts.attrs``: its id and
  ``data-ignore-morph``), so a re-render of the page morphs around the items and
  never touches them, and the server never renders the list as part of a page.
- Each new **viewer** (one open stream of a page with a source) gets the items
  from the page's source, in chunks of ``chunk`` items, one patch each: the first
  replaces whatever the container held (a reconnecting page starts afresh), the
  rest append. Each chunk waits until the viewer's socket took the one before,
  so one viewer holds at most one chunk, however long the list.
- An **operation** (``append``, ``prepend``, ``update``, ``delete``) renders its
  item once, is published once on the app's broker (so it reaches every process
  on NATS), and each process encodes one patch and writes it to every viewer of
  that list: no per-viewer state beyond a few slots, no list in memory.
- The **race** between a new viewer's read of the source and the operations
  under way: the list's subscription is ready before the source is read, and
  operations that arrive while a viewer loads wait in its ``pending`` list (at
  most ``max_pending``), then are replayed after the last chunk so that each is
  safe to apply whether the source read already saw it or not: an insert first
  removes an element with the same key (in that case the browser logs a warning
  that nothing matched), an update replaces, a delete removes. So a viewer that
  joins mid-change ends up with what every other viewer has.
- A viewer that **misses** an operation (its socket was full, its pending list
  overflowed, the broker reconnected and may have lost messages) loads its list
  again from the source: it never drifts silently.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import msgspec
from markupsafe import Markup
from starlette.requests import Request

from livepages.datastar import events
from livepages.events import subject_token
from livepages.pages import root_path
from livepages.responses import error_event

if TYPE_CHECKING:
    from livepages.broker.base import Broker, Subscription
    from livepages.broker.base import Message as BrokerMessage
    from livepages.reports import Reporter
    from livepages.templates import Templates

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_MAX_PENDING",
    "ListOp",
    "ListSource",
    "ListStream",
    "Lists",
    "OpKind",
]

log = logging.getLogger("livepages.lists")

T = TypeVar("T")
#: Items per patch while a new viewer loads a list.
DEFAULT_CHUNK = 500
#: Operations kept for a viewer that is still loading; one more and it loads again.
DEFAULT_MAX_PENDING = 1000
#: List names and item keys: they become element ids and CSS selectors as they are.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SUBJECT = "livepages.list."


class OpKind(enum.IntEnum):
    """What an operation does to a list."""

    APPEND = 1
    PREPEND = 2
    UPDATE = 3
    DELETE = 4


class ListOp(msgspec.Struct, array_like=True, frozen=True):
    """One operation on a list, as published: its item already rendered."""

    kind: OpKind
    key: str
    html: str = ""

    def encode(self) -> bytes:
        """The operation as broker bytes."""
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, data: bytes) -> ListOp:
        """An operation from broker bytes; ``ValueError`` for anything else."""
        try:
            op = msgspec.json.decode(data, type=cls)
        except msgspec.MsgspecError as exc:
            raise ValueError(f"not a list operation: {exc}") from None
        if _KEY.fullmatch(op.key) is None:
            raise ValueError(f"not a list item key: {op.key!r}")
        return op


class ListHost(Protocol):
    """What a list stream needs of its app (``App`` is one)."""

    broker: Broker
    templates: Templates

    async def startup(self) -> None:
        """Start the broker if nothing has yet."""


class ListStream(Generic[T]):
    """A keyed list that pages show and the app changes item by item.

    ``render`` makes one item's element: a template name (rendered with ``item`` and
    ``dom_id``) or a function of the item. The element must carry ``id="{dom_id}"``
    (``stream.dom_id(key)``): operations find items by it. ``key`` names the item
    field that identifies it: an ``int`` or a ``str`` of letters, digits, ``-`` and
    ``_``. ``topic`` (in every method) picks one list among many of the same kind,
    a chat room's say; a page's source says which one it shows.
    """

    def __init__(
        self,
        app: ListHost,
        name: str,
        *,
        render: str | Callable[[T], Any],
        key: str = "id",
        chunk: int = DEFAULT_CHUNK,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if _NAME.fullmatch(name) is None:
            raise ValueError(f"a list name is a letter then letters, digits, - or _: {name!r}")
        if chunk < 1 or max_pending < 0:
            raise ValueError("chunk must be at least 1 and max_pending at least 0")
        self.app = app
        self.name = name
        self.key = key
        self.chunk = chunk
        self.max_pending = max_pending
        self._render = render

    # -- the page's side ----------------------------------------------------------------

    @property
    def attrs(self) -> Markup:
        """The container's attributes: ``<ol {{ posts.attrs }}></ol>``."""
        return Markup(f'id="{self.name}" data-ignore-morph')  # noqa: S704 (a checked name)

    def source(
        self, topic: str = ""
    ) -> Callable[[Callable[[Any], AsyncIterable[T] | Iterable[T]]], ListSource[T]]:
        """Mark a page method as what a new viewer of this list gets, in order.

        ``topic`` is formatted with the page's parameters (``"{room}"``).
        """

        def mark(method: Callable[[Any], AsyncIterable[T] | Iterable[T]]) -> ListSource[T]:
            return ListSource(self, topic, method)

        return mark

    def dom_id(self, key: object) -> str:
        """The element id of the item with ``key``."""
        text = str(key)
        if isinstance(key, bool) or not isinstance(key, int | str) or not _KEY.fullmatch(text):
            raise ValueError(f"{self.name}: item keys are ints or [A-Za-z0-9_-] text: {key!r}")
        return f"{self.name}-{text}"

    def html(self, item: T) -> str:
        """One item's element, checked to carry its id."""
        dom_id = self.dom_id(getattr(item, self.key))
        if isinstance(self._render, str):
            html = str(self.app.templates.render(self._render, item=item, dom_id=dom_id))
        else:
            rendered = self._render(item)
            html = str(rendered.__html__() if hasattr(rendered, "__html__") else rendered)
        if f'id="{dom_id}"' not in html:
            raise ValueError(f'{self.name}: an item must render with id="{dom_id}"')
        return html.strip()

    # -- operations -----------------------------------------------------------------------

    async def append(self, item: T, topic: str = "") -> None:
        """Add ``item`` at the end of the list, for every viewer."""
        await self._publish(OpKind.APPEND, item, topic)

    async def prepend(self, item: T, topic: str = "") -> None:
        """Add ``item`` at the start of the list, for every viewer."""
        await self._publish(OpKind.PREPEND, item, topic)

    async def update(self, item: T, topic: str = "") -> None:
        """Replace the item with ``item``'s key, where it stands, for every viewer."""
        await self._publish(OpKind.UPDATE, item, topic)

    async def delete(self, key: int | str, topic: str = "") -> None:
        """Remove the item with ``key``, for every viewer."""
        self.dom_id(key)  # checked here, not by every receiver
        await self._send(ListOp(OpKind.DELETE, str(key)), topic)

    async def _publish(self, kind: OpKind, item: T, topic: str) -> None:
        # Rendered once here, for every viewer on every process.
        await self._send(ListOp(kind, str(getattr(item, self.key)), self.html(item)), topic)

    async def _send(self, op: ListOp, topic: str) -> None:
        await self.app.startup()
        await self.app.broker.publish(self.subject(topic), op.encode())

    def subject(self, topic: str) -> str:
        """The broker subject of one list."""
        return f"{_SUBJECT}{self.name}.{subject_token(topic)}"

    # -- patches --------------------------------------------------------------------------

    def chunk_patch(self, items: list[str], first: bool) -> bytes:
        """The patch of one chunk: the first replaces the container's children."""
        return events.patch_elements(
            "".join(items), selector=f"#{self.name}", mode="inner" if first else "append"
        )

    def patch(self, op: ListOp) -> bytes:
        """The one patch that applies ``op`` to a viewer whose list is up to date."""
        dom_id = f"{self.name}-{op.key}"
        if op.kind is OpKind.APPEND:
            return events.patch_elements(op.html, selector=f"#{self.name}", mode="append")
        if op.kind is OpKind.PREPEND:
            return events.patch_elements(op.html, selector=f"#{self.name}", mode="prepend")
        if op.kind is OpKind.UPDATE:
            return events.patch_elements(op.html, selector=f"#{dom_id}", mode="replace")
        return events.remove_elements(f"#{dom_id}")

    def replay(self, op: ListOp) -> list[bytes]:
        """The patches that apply ``op`` whether or not the viewer's source read saw it."""
        if op.kind in (OpKind.APPEND, OpKind.PREPEND):
            return [events.remove_elements(f"#{self.name}-{op.key}"), self.patch(op)]
        return [self.patch(op)]


@dataclass(frozen=True, slots=True)
class ListSource(Generic[T]):
    """A page method marked with ``stream.source()``: the list a new viewer gets."""

    stream: ListStream[T]
    topic: str
    method: Callable[[Any], AsyncIterable[T] | Iterable[T]]

    def topic_of(self, page: Any) -> str:
        """The topic this page shows."""
        return self.topic.format(**page.params) if self.topic else ""

    def items(self, page: Any) -> AsyncIterable[T] | Iterable[T]:
        """The page's items, in order."""
        return self.method(page)


_SOURCES: dict[type, tuple[ListSource[Any], ...]] = {}


def sources_of(cls: type) -> tuple[ListSource[Any], ...]:
    """The list sources of a page class (its bases' included), looked up once per class."""
    found = _SOURCES.get(cls)
    if found is None:
        members = (getattr(cls, name) for name in dir(cls))
        found = _SOURCES[cls] = tuple(m for m in members if isinstance(m, ListSource))
    return found


class Outlet(Protocol):
    """What a viewer writes to: a live connection (``livepages.live.Connection``)."""

    @property
    def idle(self) -> bool:
        """Whether a write now goes out at once, in order."""
        ...

    @property
    def ended(self) -> bool:
        """Whether the stream is over."""
        ...

    def deliver(self, payload: bytes) -> None:
        """Write ``payload``."""

    async def drained(self) -> None:
        """Return once no write waits for the socket."""


class ListsHost(Protocol):
    """What the app-wide registry needs (``App`` is one)."""

    broker: Broker
    errors: Reporter


class _Gone(Exception):
    """The viewer's stream ended while its list loaded."""


class _Viewer:
    """One open stream's view of one list: a few slots, never the items."""

    __slots__ = ("feed", "outlet", "page", "pending", "request", "source", "task")

    def __init__(
        self, feed: _Feed, outlet: Outlet, source: ListSource[Any], page: Any, request: Request
    ):
        self.feed = feed
        self.outlet = outlet
        self.source = source
        self.page = page
        self.request = request
        #: Operations heard while loading (``None`` once loaded).
        self.pending: list[ListOp] | None = None
        self.task: asyncio.Task[None] | None = None

    def load(self) -> None:
        """(Re)load the list from the source; operations wait until it is through."""
        if self.task is not None:
            self.task.cancel()
        self.pending = []
        self.task = asyncio.get_running_loop().create_task(self._load())

    def stop(self) -> None:
        """The stream ended."""
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def apply(self, op: ListOp, payload: bytes) -> None:
        """An operation: written now, kept for after the load, or a reason to reload."""
        pending = self.pending
        if pending is not None:
            pending.append(op)
            if len(pending) > self.feed.stream.max_pending:
                self.load()
        elif self.outlet.idle:
            self.outlet.deliver(payload)
        elif not self.outlet.ended:
            self.load()  # its socket is full: this patch would be lost, so load afresh

    async def _load(self) -> None:
        stream = self.feed.stream
        # A reload may run in the task of whoever published: item URLs must point
        # inside the mount of the app that serves this stream.
        root_path.set(self.request.scope.get("root_path", ""))
        try:
            await self.feed.subscription.ready()  # first: no later operation can be missed
            chunk: list[str] = []
            first = True
            async for item in _iterate(self.source.items(self.page)):
                chunk.append(stream.html(item))
                if len(chunk) >= stream.chunk:
                    await self._write(stream.chunk_patch(chunk, first))
                    chunk, first = [], False
            if chunk or first:
                await self._write(stream.chunk_patch(chunk, first))
            while self.pending:
                ops, self.pending = self.pending, []
                for op in ops:
                    for payload in stream.replay(op):
                        await self._write(payload)
            self.pending = None  # from now on operations go straight out
        except _Gone:
            return
        except Exception as exc:
            self.pending = None
            registry = self.feed.registry
            await registry.errors.report(self.request, exc)
            self.outlet.deliver(error_event(500, registry.errors.message(exc, _LOAD_FAILED)))
        finally:
            if self.task is asyncio.current_task():
                self.task = None

    async def _write(self, payload: bytes) -> None:
        await self.outlet.drained()
        if self.outlet.ended:
            raise _Gone
        self.outlet.deliver(payload)
        await asyncio.sleep(0)  # a long list must not hold the event loop


_LOAD_FAILED = "This list failed to load."


async def _iterate(items: AsyncIterable[T] | Iterable[T]) -> AsyncIterable[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


class _Feed:
    """One list (a stream and a topic) on this process: its subscription, its viewers."""

    __slots__ = ("registry", "stream", "subject", "subscription", "viewers")

    def __init__(self, registry: Lists, stream: ListStream[Any], subject: str) -> None:
        self.registry = registry
        self.stream = stream
        self.subject = subject
        self.viewers: set[_Viewer] = set()
        self.subscription: Subscription = registry.broker.subscribe(subject, self.on_message)

    def on_message(self, message: BrokerMessage) -> None:
        try:
            op = ListOp.decode(message.data)
        except ValueError as exc:
            log.warning("ignoring a malformed list operation on %s: %s", message.subject, exc)
            return
        payload = self.stream.patch(op)  # encoded once for every viewer here
        for viewer in list(self.viewers):
            viewer.apply(op, payload)


class Lists:
    """The lists that this process's open streams show; the live engine keeps one."""

    def __init__(self, host: ListsHost) -> None:
        self.broker = host.broker
        self.errors = host.errors
        self._feeds: dict[str, _Feed] = {}
        self._viewers: dict[Outlet, list[_Viewer]] = {}
        self._listening = False

    def enter(self, outlet: Outlet, page: Any, request: Request) -> None:
        """A stream of ``page`` opened: load each list it shows."""
        sources = sources_of(type(page))
        if not sources:
            return
        if not self._listening:
            self.broker.add_reconnect_listener(self._reload_all)
            self._listening = True
        viewers = self._viewers[outlet] = []
        for source in sources:
            subject = source.stream.subject(source.topic_of(page))
            feed = self._feeds.get(subject)
            if feed is None:
                feed = self._feeds[subject] = _Feed(self, source.stream, subject)
            viewer = _Viewer(feed, outlet, source, page, request)
            feed.viewers.add(viewer)
            viewers.append(viewer)
            viewer.load()

    def leave(self, outlet: Outlet) -> None:
        """A stream ended: forget its viewers, and any list nobody here shows any more."""
        for viewer in self._viewers.pop(outlet, ()):
            viewer.stop()
            feed = viewer.feed
            feed.viewers.discard(viewer)
            if not feed.viewers and self._feeds.get(feed.subject) is feed:
                del self._feeds[feed.subject]
                feed.subscription.unsubscribe()

    def close(self) -> None:
        """Stop listening for reconnects (the engine shuts down)."""
        if self._listening:
            self.broker.remove_reconnect_listener(self._reload_all)
            self._listening = False

    @property
    def viewers(self) -> int:
        """How many (stream, list) pairs are open here."""
        return sum(len(feed.viewers) for feed in self._feeds.values())

    def _reload_all(self) -> None:
        # Operations may have been lost while the broker was away.
        for feed in self._feeds.values():
            for viewer in feed.viewers:
                viewer.load()
