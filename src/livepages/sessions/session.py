"""The ``Session`` that pages, actions and event handlers receive, and its manager.

A session is a random 256-bit token in an AES-GCM sealed, HttpOnly cookie; the
server keeps the record (user, data, expiry) in a ``SessionStore`` under the
token's SHA-256, never the token itself. A guest's session lives in the cookie
alone until something is saved into it. Declare the data as a dataclass and ask
for it by annotation::

    @dataclass
    class Prefs:
        theme: str = "light"

    async def render(self, session: Session[Prefs]) -> str:
        return f"<p>{session.data.theme}</p>"

``session.save()`` writes only over the revision the request read, so a session
closed meanwhile stays closed. ``session.sign_in(user_id)`` issues a new token (no
session fixation), ``sign_out()`` ends the session, and closing a session
(``app.sessions``) ends its live streams, which redirect to the page the app chose.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

import msgspec
from starlette.requests import HTTPConnection

from livepages.csrf import CSRF, CSRFError
from livepages.decoding import DECODE_ERRORS
from livepages.errors import Conflict, HTTPError, ServiceUnavailable
from livepages.hooks import Hooks, ReadOutcome, SessionCreated, SessionRead
from livepages.hooks import SessionClosed as Closed  # SessionClosed here is the error
from livepages.keys import Keys
from livepages.protocol import SESSION_SCOPE_KEY, ClosedReason, SessionNotice
from livepages.sessions.cookie import CookieCodec, SealedToken, generate_token
from livepages.sessions.memory import MemorySessionStore
from livepages.sessions.store import (
    DeletionWatch,
    SessionConflict,
    SessionRecord,
    SessionStore,
    SessionStoreError,
    SharedSessionStore,
    session_id,
)

__all__ = ["CSRFError", "Session", "SessionClosed", "SessionEnded", "SessionManager"]

log = logging.getLogger("livepages.sessions")

#: How a session manager tells the app's streams that a session ended.
Announce: TypeAlias = Callable[[str, SessionNotice], Awaitable[None]]
#: Told, in this process, of each session closed by any process (a shared store's watch).
CloseListener: TypeAlias = Callable[[str, SessionNotice], None]

D = TypeVar("D")


# How often a save re-reads and tries again after losing a race it can merge.
_SAVE_ATTEMPTS = 5


class SessionClosed(Conflict):
    """409: the session was closed (signed out, replaced, expired) while this request
    was using it. Its cookie is cleared, and nothing brings the session back."""

    def __init__(self) -> None:
        super().__init__("your session has ended; reload the page")


class SessionEnded(HTTPError):
    """401: the request came with the cookie of a session that has ended (expired,
    signed out, closed) since its page was rendered. Its page goes to ``location``,
    the sign-in page with ``next`` set, rather than failing as a forged request."""

    status = 401

    def __init__(self, location: str) -> None:
        super().__init__("your session has ended; sign in again")
        #: Where the page goes: the sign-in page, with ``next`` back to the page.
        self.location = location


class Session(Generic[D]):
    """The visitor's session. ``data`` is the app's dataclass (or a dict)."""

    __livepages_session__: ClassVar[bool] = True

    def __init__(
        self,
        manager: SessionManager,
        token: bytes | None = None,
        record: SessionRecord | None = None,
        revision: int | None = None,
    ):
        self._manager = manager
        #: The secret token from the cookie; None when the visitor has no session.
        self.token = token
        #: The session as stored or, while it is not stored, as a first save stores it.
        self.record = record
        #: The store's revision of ``record``; None while the session is not stored.
        self.revision = revision
        self._data: Any = None
        self._data_type: Any = dict
        #: The cookie value to set at the response start ("" clears it), or None.
        self.cookie: str | None = None
        #: The tab that made this request, if any: signing out does not redirect its
        #: stream, since the tab follows its own action's response.
        self.caller_tab: str | None = None
        #: Whether the request's cookie sealed a stored session (every signed-in one is)
        #: that has ended, expired or closed: its page outlived it.
        self.ended = False

    @property
    def id(self) -> str | None:
        """The session's public id (``session_id`` of its token, the store key), stored
        or not; None only for a visitor without a session."""
        return self.record.id if self.record is not None else None

    @property
    def stored(self) -> bool:
        """Whether the session has a record in the store (a guest has none until a save)."""
        return self.revision is not None

    @property
    def user_id(self) -> str | None:
        """The signed-in user, or None."""
        return self.record.user_id if self.record is not None else None

    @property
    def is_guest(self) -> bool:
        """Whether nobody is signed in."""
        return self.user_id is None

    @property
    def issued_at(self) -> float | None:
        """When the session started (Unix time)."""
        return self.record.issued_at if self.record is not None else None

    @property
    def expires_at(self) -> float | None:
        """When the session ends (Unix time)."""
        return self.record.expires_at if self.record is not None else None

    @property
    def data(self) -> D:
        """The session's data, decoded into the type the parameter was annotated with.

        Data stored under an older shape of the type (a field renamed or retyped
        since) is logged and replaced by the type's defaults: a deploy must not
        break every open session.
        """
        if self._data is None:
            raw = self.record.data if self.record is not None else b""
            self._data = _decode(raw, self._data_type) if raw else _defaults(self._data_type)
        return self._data  # type: ignore[no-any-return]

    def typed(self, data_type: Any) -> Session[Any]:
        """This session with its data decoded as ``data_type`` (used by injection)."""
        if data_type is not self._data_type:
            self._data_type = data_type
            self._data = None
        return self

    async def save(self) -> None:
        """Store ``data``, at the revision this request read (see ``SessionManager.save``)."""
        await self._manager.save(self)

    async def sign_in(self, user_id: str, data: Any = None) -> None:
        """Start a fresh session for ``user_id``: a new token, the old one void."""
        await self._manager.sign_in(self, user_id, data)

    async def sign_out(self) -> None:
        """End the session and its live streams (but for the calling tab's own)."""
        await self._manager.sign_out(self)


class SessionManager:
    """Loads sessions from cookies, checks CSRF, and signs users in and out.

    ``App(sessions=SessionManager(store=SQLiteSessionStore("sessions.db")))``;
    ``App(sessions=True)`` uses the in-memory store. The app starts and stops it
    (and so its store) with its own lifespan.
    """

    def __init__(
        self,
        store: SessionStore | None = None,
        *,
        cookie_name: str = "livepages_session",
        max_age: float = 14 * 24 * 3600,
        domain: str | None = None,
        secure: bool | None = None,
        sign_in_url: str = "/",
        closed_url: str | None = None,
        trusted_origins: Sequence[str] = (),
    ) -> None:
        self.store: SessionStore = store if store is not None else MemorySessionStore()
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.domain = domain
        self.secure = secure
        self.sign_in_url = sign_in_url
        self.closed_url = closed_url or sign_in_url
        self.trusted_origins = tuple(trusted_origins)
        self._announce: Announce | None = None
        self._listeners: list[CloseListener] = []
        self._watch: DeletionWatch | None = None
        #: Whether the app has started the manager (so a watch is wanted), and the
        #: late start of a watch the store could not begin at start-up, if under way.
        self._started = False
        self._late_watch: asyncio.Task[None] | None = None
        self.codec: CookieCodec | None = None
        self.csrf: CSRF | None = None
        self._old_csrf: list[CSRF] = []
        #: Where session events go (``SessionRead``, ``SessionCreated``, ``SessionClosed``):
        #: the app's hooks once bound.
        self.hooks = Hooks()

    def bind(
        self, keys: Keys, announce: Announce | None = None, hooks: Hooks | None = None
    ) -> None:
        """Attach to an app: its keys, and how to tell its streams a session ended.

        The current cookie key seals cookies; the keys of earlier secrets still open
        them and still verify CSRF tokens of pages rendered before a rotation.
        """
        self.codec = CookieCodec(keys.all("cookie"), name=self.cookie_name)
        self.csrf = CSRF(keys.derive("csrf"))
        self._old_csrf = [CSRF(key) for key in keys.all("csrf")[1:]]
        self._announce = announce
        if hooks is not None:
            self.hooks = hooks

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the store (the app calls this at start-up).

        A store that cannot start is logged, not fatal: the app still starts, its
        requests that need sessions answer 503, and the store is tried again on
        each of them, so a disk or server that comes back later needs no restart.
        """
        self._started = True
        try:
            await self.store.start()
            await self._watch_store()
        except SessionStoreError as exc:
            _log_failure(exc)  # the watch starts once the store answers (_answered)

    async def _watch_store(self) -> None:
        """On a store shared by processes, hear of every deletion, whoever made it."""
        if self._watch is None and isinstance(self.store, SharedSessionStore):
            self._watch = await self.store.watch_deleted(self._deleted)

    def _answered(self) -> None:
        """The store answered: if its watch could not start at start-up, start it now,
        so a store that was away then still carries every deletion afterwards."""
        wanted = self._started and isinstance(self.store, SharedSessionStore)
        if wanted and self._watch is None and self._late_watch is None:
            self._late_watch = asyncio.get_running_loop().create_task(self._start_late_watch())

    async def _start_late_watch(self) -> None:
        try:
            await self._watch_store()
        except SessionStoreError as exc:
            _log_failure(exc)  # the next answer tries again
        finally:
            self._late_watch = None

    async def _deleted(self, key: str, notice: SessionNotice | None) -> None:
        # A deletion without a reason (a KV marker, an older tombstone) closed the session.
        said = notice if notice is not None else SessionNotice(ClosedReason.CLOSED)
        for listener in list(self._listeners):
            listener(key, said)

    def add_close_listener(self, listener: CloseListener) -> None:
        """Call ``listener(id, notice)`` when any process closes a session, if the store
        tells (``SharedSessionStore``): the live engine ends the session's streams with
        it, as it does on the broker's notice, which may be lost."""
        self._listeners.append(listener)

    def remove_close_listener(self, listener: CloseListener) -> None:
        """Stop calling ``listener``; harmless if it is not registered."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def stop(self) -> None:
        """Close the store (the app calls this at shutdown). Idempotent."""
        self._watch = None  # closing the store stops it
        self._started = False
        if self._late_watch is not None:
            self._late_watch.cancel()
            self._late_watch = None
        try:
            await self.store.close()
        except SessionStoreError as exc:
            _log_failure(exc)

    # -- loading --------------------------------------------------------------------

    async def load(self, conn: HTTPConnection) -> Session[Any]:
        """The request's session (cached in the scope). A bad cookie means a guest."""
        cached = conn.scope.get(SESSION_SCOPE_KEY)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        session: Session[Any] = Session(self)
        session.caller_tab = conn.headers.get("x-lp-tab")
        value = conn.cookies.get(self.cookie_name)
        if value:
            try:
                await self._open(session, value)
            except HTTPError:
                self._read(ReadOutcome.ERROR)
                raise
        self._read(_read_outcome(session, value))
        conn.scope[SESSION_SCOPE_KEY] = session
        return session

    def _read(self, outcome: ReadOutcome) -> None:
        if self.hooks.wants(SessionRead):
            self.hooks.emit(SessionRead(outcome))

    async def _open(self, session: Session[Any], value: str) -> None:
        """Fill ``session`` from its cookie, or mark the cookie to be cleared."""
        assert self.codec is not None
        sealed = self.codec.decode(value)
        if sealed is None:
            session.cookie = ""  # forged: clear it
            return
        try:
            entry = await self.store.get(session_id(sealed.token))
            self._answered()
        except SessionStoreError as exc:
            if sealed.stored:
                raise _unavailable(exc) from exc
            # A guest whose session was never stored needs no store: with the store
            # away (NATS restarting), it stays the guest its cookie says it is.
            entry = None
        if entry is not None and entry.record is not None:
            session.token, session.record, session.revision = (
                sealed.token,
                entry.record,
                entry.revision,
            )
            if not sealed.stored:
                # The first save's cookie did not reach the browser (an action that
                # streams had started its response): say "stored" now.
                session.cookie = self._seal(session)
        elif entry is None and not sealed.stored and not self._expired(sealed.issued_at):
            session.token, session.record = (
                sealed.token,
                self._draft(sealed.token, sealed.issued_at),
            )
        else:
            session.cookie = ""  # closed or expired: clear it
            # A stored one ended (a guest's draft that expired was never a session).
            session.ended = sealed.stored
        if (
            session.token is not None
            and session.cookie is None
            and not self.codec.is_current(value)
        ):
            # An earlier secret sealed it: seal it with the current one, so that it still
            # opens once that secret is retired (a page open across two rotations).
            session.cookie = self._seal(session)

    async def ensure(self, conn: HTTPConnection) -> Session[Any]:
        """The request's session, starting a guest session if there is none.

        The guest gets a token and a cookie (so the page carries a CSRF token and
        ``session.id`` is set), but nothing is stored until a save.
        """
        session = await self.load(conn)
        if session.token is None:
            self._start(session, None)
        return session

    def _start(self, session: Session[Any], user_id: str | None) -> None:
        """Give ``session`` a new token and a cookie; nothing is stored yet."""
        token = generate_token()
        draft = self._draft(token, time.time())
        session.token, session.revision = token, None
        session.record = msgspec.structs.replace(draft, user_id=user_id)
        session.cookie = self._seal(session)

    def _draft(self, token: bytes, issued_at: float) -> SessionRecord:
        """The record of a session not stored yet: no user, no data, ``max_age`` to live."""
        return SessionRecord(
            id=session_id(token),
            user_id=None,
            data=b"",
            issued_at=issued_at,
            expires_at=issued_at + self.max_age,
            last_seen=issued_at,
        )

    def _seal(self, session: Session[Any]) -> str:
        assert self.codec is not None
        assert session.token is not None
        assert session.record is not None
        sealed = SealedToken(session.token, session.stored, session.record.issued_at)
        return self.codec.encode(sealed)

    def _expired(self, issued_at: float) -> bool:
        return time.time() >= issued_at + self.max_age

    # -- changes --------------------------------------------------------------------

    async def save(self, session: Session[Any]) -> None:
        """Store the session's data, only over the revision the request read.

        The first save of a guest creates the record (and re-seals the cookie as
        stored); it never re-creates a deleted one. After losing a race the save
        reads the session again: if it is gone, :class:`SessionClosed` (the cookie
        is cleared); if only one of the two requests changed the data, the change
        is written over the new revision; if both did, :class:`Conflict` (409), so
        that neither change is lost silently.
        """
        if session.token is None:
            self._start(session, None)
        assert session.record is not None
        read, ours = session.record.data, _stored_data(session)
        record, revision, data = session.record, session.revision, ours
        with self._creating(not session.stored):
            for _ in range(_SAVE_ATTEMPTS):
                record = msgspec.structs.replace(record, data=data, last_seen=time.time())
                written = await self._write(record, revision)
                if written is not None:
                    self._saved(session, record, written, changed=data != ours)
                    return
                record, revision, data = await self._reread(session, read, ours)
            raise Conflict("the session keeps changing; try again")

    async def _write(self, record: SessionRecord, revision: int | None) -> int | None:
        """Create or update at ``revision``; the new revision, or None on a lost race."""
        try:
            with _available():
                if revision is None:
                    return await self.store.create(record)
                return await self.store.update(record, revision)
        except SessionConflict:
            return None

    async def _reread(
        self, session: Session[Any], read: bytes, ours: bytes
    ) -> tuple[SessionRecord, int, bytes]:
        """After a lost race: the record, revision and data to try again with."""
        assert session.record is not None
        with _available():
            entry = await self.store.get(session.record.id)
        if entry is None or entry.record is None:
            self._forget(session)
            raise SessionClosed
        merged = _merge(read, ours, entry.record.data)
        if merged is None:
            raise Conflict("the session was changed by another request; try again")
        return entry.record, entry.revision, merged

    def _saved(
        self, session: Session[Any], record: SessionRecord, revision: int, *, changed: bool
    ) -> None:
        first = not session.stored
        session.record, session.revision = record, revision
        if first:
            session.cookie = self._seal(session)
            if self.hooks.wants(SessionCreated):
                self.hooks.emit(SessionCreated(ok=True))
        if changed:
            session._data = None  # another request's data won: decode it afresh

    @contextmanager
    def _creating(self, first: bool) -> Iterator[None]:
        """Count a first save (or sign-in) that failed as a session not created."""
        try:
            yield
        except HTTPError:
            if first and self.hooks.wants(SessionCreated):
                self.hooks.emit(SessionCreated(ok=False))
            raise

    async def sign_in(self, session: Session[Any], user_id: str, data: Any) -> None:
        """Replace the session with a new one for ``user_id`` (new token: no fixation)."""
        if data is not None:
            session._data = data
        stored = _stored_data(session)
        old, old_stored = session.record, session.stored
        self._start(session, user_id)
        assert session.record is not None
        record = msgspec.structs.replace(session.record, data=stored)
        with self._creating(True), _available():
            revision = await self.store.create(record)  # a new 256-bit token: never taken
        self._saved(session, record, revision, changed=False)
        if old is not None:
            # Replaced, not closed: the tab signing in must follow the action's redirect.
            await self._end(old, old_stored, replaced=True)

    async def sign_out(self, session: Session[Any]) -> None:
        """End the session and its streams (but the calling tab's); clear the cookie."""
        if session.record is not None:
            await self._end(session.record, session.stored, caller_tab=session.caller_tab)
        self._forget(session)

    async def _end(
        self,
        record: SessionRecord,
        stored: bool,
        *,
        replaced: bool = False,
        caller_tab: str | None = None,
    ) -> None:
        """Close a session, stored or not, for good."""
        if not stored:
            # Stored only to be deleted: the tombstone stops a save still in flight
            # in another request from creating the session after it ended.
            await self._write(record, None)
        # A guest's session never stored was never counted as created: nor as closed.
        await self._close(record.id, replaced, caller_tab, counted=stored)

    def _forget(self, session: Session[Any]) -> None:
        """Make ``session`` a visitor without a session, and clear the cookie."""
        session.token = session.record = session.revision = None
        session._data = None
        session.cookie = ""

    async def close(
        self, key: str | None, *, replaced: bool = False, caller_tab: str | None = None
    ) -> None:
        """End one session: forget it and end its live streams (on every process).

        The streams go to ``closed_url``, except the ``caller_tab``'s (it follows its
        action's response) and all of a ``replaced`` session's (they reconnect).
        """
        await self._close(key, replaced, caller_tab, counted=True)

    async def _close(
        self, key: str | None, replaced: bool, caller_tab: str | None, *, counted: bool
    ) -> None:
        if key is None:
            return
        reason = ClosedReason.REPLACED if replaced else ClosedReason.CLOSED
        notice = SessionNotice(reason, caller_tab)
        try:
            with _available():
                if isinstance(self.store, SharedSessionStore):
                    await self.store.delete(key, notice)  # kept for the other processes' watch
                else:
                    await self.store.delete(key)
        except HTTPError:
            self._closed(ok=False, counted=counted)
            raise
        self._closed(ok=True, counted=counted)
        if self._announce is not None:
            await self._announce(key, notice)

    def _closed(self, *, ok: bool, counted: bool) -> None:
        if counted and self.hooks.wants(Closed):
            self.hooks.emit(Closed(ok))

    async def close_user(self, user_id: str) -> list[str]:
        """End every session of a user (sign out everywhere); the ids closed."""
        with _available():
            if isinstance(self.store, SharedSessionStore):
                keys = await self.store.delete_user(user_id, SessionNotice(ClosedReason.CLOSED))
            else:
                keys = await self.store.delete_user(user_id)
        for key in keys:
            await self.close(key)
        return keys

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's open sessions, oldest first."""
        with _available():
            return await self.store.list_user(user_id)

    # -- checks ---------------------------------------------------------------------

    def csrf_token(self, conn: HTTPConnection) -> str:
        """A freshly masked CSRF token for the request's session ("" without one)."""
        session = conn.scope.get(SESSION_SCOPE_KEY)
        if self.csrf is None or session is None or session.token is None:
            return ""
        return self.csrf.token(session.token)

    def fresh_csrf(self, conn: HTTPConnection) -> str | None:
        """A new CSRF token for a live stream whose page's token (its ``X-CSRF-Token``)
        the current key did not sign, so that it still works once the old key is gone;
        None when it needs none (a current token, or no session)."""
        session = conn.scope.get(SESSION_SCOPE_KEY)
        if self.csrf is None or session is None or session.token is None:
            return None
        if self.csrf.verify(session.token, conn.headers.get("x-csrf-token")):
            return None
        return self.csrf.token(session.token)

    async def check(self, conn: HTTPConnection) -> None:
        """Refuse a write without this session's CSRF token.

        The app checks the request's origin first, for every action, sessions or
        not (``trusted_origins`` here add to ``Settings.trusted_origins``).
        """
        session = await self.load(conn)
        assert self.csrf is not None
        token = conn.headers.get("x-csrf-token")
        if session.token is None or not any(
            csrf.verify(session.token, token) for csrf in (self.csrf, *self._old_csrf)
        ):
            raise CSRFError("missing or invalid CSRF token")

    def cookie_header(self, session: Session[Any], secure: bool) -> bytes:
        """The ``Set-Cookie`` header value for the session's pending cookie."""
        value = session.cookie or ""
        parts = [f"{self.cookie_name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        parts.append(f"Max-Age={int(self.max_age) if value else 0}")
        if self.domain:
            parts.append(f"Domain={self.domain}")
        if self.secure if self.secure is not None else secure:
            parts.append("Secure")
        return "; ".join(parts).encode("latin-1")


@contextmanager
def _available() -> Iterator[None]:
    """Turn a store failure into the 503 that says so (the cause is logged, never shown)."""
    try:
        yield
    except SessionStoreError as exc:
        raise _unavailable(exc) from exc


def _log_failure(exc: SessionStoreError) -> None:
    log.error("session store failed: %s", exc)


def _merge(read: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    """The data to write after another request wrote ``theirs`` over what we ``read``:
    ours if they left it alone (or made the same change), theirs if we did not change
    it, None if both changed it differently."""
    if theirs in (read, ours):
        return ours
    if ours == read:
        return theirs
    return None


def _unavailable(exc: SessionStoreError) -> ServiceUnavailable:
    """The 503 for a store failure, logged: its message (a path, a host) is for logs only."""
    _log_failure(exc)
    return ServiceUnavailable("sessions are unavailable, try again shortly")


def _stored_data(session: Session[Any]) -> bytes:
    """The data to store: as changed in this request, else as it was (never dropped)."""
    if session._data is not None:
        return _encode(session._data)
    return session.record.data if session.record is not None else b""


def _decode(raw: bytes, data_type: Any) -> Any:
    try:
        return msgspec.json.decode(raw, type=data_type)
    except DECODE_ERRORS as exc:
        log.warning("session data does not fit %r (%s); using its defaults", data_type, exc)
        return _defaults(data_type)


def _defaults(data_type: Any) -> Any:
    try:
        return msgspec.json.decode(b"{}", type=data_type)
    except msgspec.ValidationError as exc:
        raise TypeError(
            f"session data type {data_type!r} needs a default for every field: {exc}"
        ) from exc


def _encode(data: Any) -> bytes:
    if dataclasses.is_dataclass(data) or isinstance(data, dict | msgspec.Struct):
        return msgspec.json.encode(data)
    raise TypeError(f"session data must be a dataclass, msgspec Struct or dict, not {data!r}")


def _read_outcome(session: Session[Any], cookie: str | None) -> ReadOutcome:
    """What :meth:`SessionManager.load` found, for the ``SessionRead`` event."""
    if not cookie:
        return ReadOutcome.NONE
    if session.token is not None:
        return ReadOutcome.VALID
    # _open clears a cookie that did not open, and one of a session that ended.
    return ReadOutcome.ENDED if session.ended else ReadOutcome.INVALID
