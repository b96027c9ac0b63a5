"""``app.presence``: who is on which topic now, across every process of the app.

Every open stream of a page with a ``presence`` topic makes its visitor a member of
the topic. The visitor is the signed-in user if there is one, else the session if
there is one, else the tab; several streams of one member (two tabs, two processes)
count once, and the member leaves when its last stream closes. This process's
members go to the backend (``livepages.presence.base``), which hears the other
processes' and keeps the roster of all of them.

What the app gets:

- ``app.presence.members(topic)``: the members of a topic now (``Members``), and
  ``Members`` injected into a page's ``render``: its own topic's members. Such a
  page re-renders whenever they change.
- ``@app.presence.listen``: a function called with each :class:`PresenceEvent`
  (joined, left, renamed), inline, on every process: keep it quick.
- ``await app.presence.rename(request, name)``: the visitor of an action's request
  changes name on every topic, wherever their streams are.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import HTTPConnection, Request

from livepages.broker.base import Broker, Subscription
from livepages.errors import BadRequest
from livepages.hooks import Hooks
from livepages.injection import Context, Injector
from livepages.pages import Page
from livepages.presence.base import PresenceBackend
from livepages.presence.members import GUEST, Member, Members, PresenceEvent, clean_name
from livepages.presence.topic import PresencePlan, topic_of
from livepages.presence.wire import RenameNotice
from livepages.protocol import PRESENCE_RENAME, TAB_HEADER
from livepages.reports import Reporter
from livepages.tabs import Tab
from livepages.visitors import Visitors

if TYPE_CHECKING:
    from livepages.broker.base import Message
    from livepages.plans import PagePlan

__all__ = ["Presence", "PresenceListener"]

log = logging.getLogger("livepages.presence")

#: A function called with each change of any topic's members.
PresenceListener = Callable[[PresenceEvent], object]

#: Bytes of the keyed hash in a member id (as hex digits: twice as many).
_ID_BYTES = 16


@dataclass(slots=True)
class _Held:
    """A member this process holds on one topic: as it shows it, and by how many streams."""

    member: Member
    streams: int


class Presence:
    """Who is on which topic now: this process's streams in, every process's members out."""

    def __init__(
        self,
        backend: PresenceBackend,
        *,
        key: bytes,
        broker: Broker,
        visitors: Visitors,
        injector: Injector,
        errors: Reporter,
    ) -> None:
        self.backend = backend
        backend.listen(self._changed)
        self._key = key
        self._broker = broker
        self._visitors = visitors
        self._injector = injector
        self._errors = errors
        self._hooks = Hooks()
        self._watchers: dict[str, list[Callable[[], None]]] = {}
        self._stays: dict[object, tuple[str, str]] = {}  # stream -> (topic, member id)
        self._held: dict[str, dict[str, _Held]] = {}  # member id -> topic -> held
        self._renames: Subscription | None = None

    def __repr__(self) -> str:
        return f"<Presence {type(self.backend).__name__} streams={len(self._stays)}>"

    # -- reading ----------------------------------------------------------------------

    def members(self, topic: str) -> Members:
        """The members of ``topic`` now, on every process, ordered by name."""
        return self.backend.members(topic)

    @staticmethod
    def topic(page: Page) -> str | None:
        """The presence topic of a page (None if its class declares none)."""
        return topic_of(page)

    def resolve(self, ctx: Context) -> Members:
        """What a parameter annotated ``Members`` receives: the page's topic's members."""
        topic = topic_of(ctx.page) if isinstance(ctx.page, Page) else None
        if topic is None:
            raise LookupError("Members needs a page with a presence topic")
        return self.members(topic)

    # -- listening --------------------------------------------------------------------

    def listen(self, listener: PresenceListener) -> PresenceListener:
        """Call ``listener`` with every :class:`PresenceEvent` (usable as a decorator).

        It runs inline, where the roster changes: keep it quick and hand longer work
        to a task. An exception in it is logged and does not reach the others.
        """
        self._hooks.add(PresenceEvent, listener)
        return listener

    def unlisten(self, listener: PresenceListener) -> None:
        """Stop calling ``listener``; harmless if it is not listening."""
        self._hooks.remove(PresenceEvent, listener)

    def _changed(self, event: PresenceEvent) -> None:
        for callback in list(self._watchers.get(event.topic, ())):
            callback()
        if self._hooks.wants(PresenceEvent):
            self._hooks.emit(event)

    # -- visitors ---------------------------------------------------------------------

    def member_id(self, conn: HTTPConnection, tab_id: str | None) -> str:
        """The member id of a request's visitor: its user, else its session, else the
        tab ``tab_id`` (a verified one); ``LookupError`` if it has none of them."""
        user = Visitors.user_id(conn)
        if user is not None:
            return self._hash("u", user)
        session = Visitors.session_id(conn)
        if session is not None:
            return self._hash("s", session)
        if tab_id is not None:
            return self._hash("t", tab_id)
        raise LookupError("the request has no user, no session and no tab")

    def _hash(self, kind: str, value: str) -> str:
        # Keyed: a member id reveals nothing of the user, session or tab id behind it,
        # and every process with the same secret key computes the same one.
        message = f"{kind}\x00{value}".encode()
        return kind + hmac.new(self._key, message, hashlib.sha256).hexdigest()[: 2 * _ID_BYTES]

    async def rename(self, request: Request, name: str) -> None:
        """Call the visitor of ``request`` (an action's) ``name`` on every topic they are
        on, on every process; their page's ``presence_name`` should say the same from
        then on, or a stream that opens later names them again.

        ``BadRequest`` if the request has neither a session nor its page's tab header.
        """
        await self._visitors.session_of(request)  # loaded, if sessions are on
        header = request.headers.get(TAB_HEADER)
        tab_id = await self._visitors.tab_id(request, header) if header else None
        try:
            member = self.member_id(request, tab_id)
        except LookupError:
            raise BadRequest(f"renaming needs a session or the {TAB_HEADER} header") from None
        notice = RenameNotice(member, clean_name(name))
        await self._broker.publish(PRESENCE_RENAME, notice.encode())

    def _on_rename(self, message: Message) -> None:
        try:
            notice = RenameNotice.decode(message.data)
        except ValueError as exc:
            log.warning("ignoring a malformed presence rename: %s", exc)
            return
        for topic, held in self._held.get(notice.member, {}).items():
            if held.member.name != notice.name:
                held.member = msgspec.structs.replace(held.member, name=notice.name)
                self.backend.join(topic, held.member)

    # -- streams (the live engine's side) -----------------------------------------------

    async def enter(self, stream: object, plan: PagePlan, ctx: Context) -> None:
        """A stream of ``plan``'s page opened (``ctx``: its request): its visitor joins the
        page's topic, or is counted once more. A no-op for a page without a topic."""
        presence = plan.presence
        if presence is None:
            return
        tab = ctx.extras.get(Tab)
        member_id = self.member_id(ctx.request, tab.id if isinstance(tab, Tab) else None)
        user = Visitors.user_id(ctx.request)
        member = Member(member_id, await self._name(presence, ctx, user), user)
        topic = presence.topic(ctx.page)
        self._stays[stream] = (topic, member_id)
        topics = self._held.setdefault(member_id, {})
        held = topics.get(topic)
        if held is None:
            topics[topic] = _Held(member, 1)
            self.backend.join(topic, member)
            return
        held.streams += 1
        if held.member != member:  # named afresh: the latest stream's name wins
            held.member = member
            self.backend.join(topic, member)

    def leave(self, stream: object) -> None:
        """A stream closed: its visitor leaves its topic if that was their last stream."""
        stay = self._stays.pop(stream, None)
        if stay is None:
            return
        topic, member_id = stay
        topics = self._held[member_id]
        held = topics[topic]
        held.streams -= 1
        if held.streams:
            return
        del topics[topic]
        if not topics:
            del self._held[member_id]
        self.backend.leave(topic, member_id)

    async def _name(self, presence: PresencePlan, ctx: Context, user: str | None) -> str:
        """The member's name from the page's ``presence_name``, else the default."""
        default = user if user is not None else GUEST
        if presence.name is None:
            return clean_name(default)
        try:
            kwargs = await self._injector.arguments(presence.name, ctx)
            name: Any = await presence.name.call(ctx.page, **kwargs)
            if not isinstance(name, str):
                raise TypeError(f"presence_name() returned {name!r}, not a str")
        except Exception as exc:
            await self._errors.report(ctx.request, exc)
            return clean_name(default)
        return clean_name(name)

    def subscribe(self, plan: PagePlan, page: Page, callback: Callable[[], None]) -> Subscription:
        """Call ``callback()`` whenever the members of ``page``'s topic change.

        Only for a page whose render takes ``Members`` (``watches``): a subscription
        like a broker's, so a view keeps it with its others.
        """
        assert plan.presence is not None
        topic = plan.presence.topic(page)
        self._watchers.setdefault(topic, []).append(callback)
        return _Watch(self, topic, callback)

    @staticmethod
    def watches(plan: PagePlan) -> bool:
        """Whether views of ``plan``'s page re-render when their topic's members change."""
        return plan.presence is not None and plan.presence.watched

    def _unwatch(self, topic: str, callback: Callable[[], None]) -> None:
        callbacks = self._watchers.get(topic, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            self._watchers.pop(topic, None)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start the backend and hear renames from every process. Idempotent."""
        await self.backend.start()
        if self._renames is not None:
            return
        renames = self._broker.subscribe(PRESENCE_RENAME, self._on_rename)
        try:
            await renames.ready()
        except BaseException:
            renames.unsubscribe()
            raise
        self._renames = renames

    async def stop(self) -> None:
        """Withdraw this process's members everywhere and stop. Idempotent."""
        if self._renames is not None:
            self._renames.unsubscribe()
            self._renames = None
        await self.backend.close()


class _Watch:
    """A view's subscription to its topic's changes."""

    __slots__ = ("_callback", "_presence", "pattern")

    def __init__(self, presence: Presence, topic: str, callback: Callable[[], None]) -> None:
        self._presence: Presence | None = presence
        self.pattern = topic
        self._callback = callback

    def __repr__(self) -> str:
        return f"<presence watch {self.pattern!r}>"

    async def ready(self) -> None:
        """Ready at once: the roster is loaded before the app serves streams."""

    def unsubscribe(self) -> None:
        presence, self._presence = self._presence, None
        if presence is not None:
            presence._unwatch(self.pattern, self._callback)
