"""The ``Session`` that pages, actions and event handlers receive, and its manager.

A session is a random 256-bit token in an AES-GCM sealed, HttpOnly cookie; the
server keeps the record (user, data, expiry) in a ``SessionStore`` under the
token's SHA-256, never the token itself. Declare the data as a dataclass and
ask for it by annotation::

    @dataclass
    class Prefs:
        theme: str = "light"

    async def render(self, session: Session[Prefs]) -> str:
        return f"<p>{session.data.theme}</p>"

``session.sign_in(user_id)`` issues a new token (no session fixation),
``sign_out()`` ends the session, and closing a session (``app.sessions``) ends
its live streams, which redirect to the page the app chose.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import msgspec
from starlette.requests import HTTPConnection

from livepages.csrf import CSRF, CSRFError
from livepages.errors import ServiceUnavailable
from livepages.sessions.cookie import CookieCodec, generate_token
from livepages.sessions.memory import MemorySessionStore
from livepages.sessions.store import SessionRecord, SessionStore, SessionStoreError, session_id

if TYPE_CHECKING:
    from livepages.app import App

__all__ = ["CSRFError", "Session", "SessionManager"]

log = logging.getLogger("livepages.sessions")

D = TypeVar("D")

#: Where a request's session lives in the ASGI scope once loaded.
SCOPE_KEY = "livepages.session"


class Session(Generic[D]):
    """The visitor's session. ``data`` is the app's dataclass (or a dict)."""

    __livepages_session__: ClassVar[bool] = True

    def __init__(self, manager: SessionManager, token: bytes | None, record: SessionRecord | None):
        self._manager = manager
        self.token = token
        self.record = record
        self._data: Any = None
        self._data_type: Any = dict
        #: The cookie value to set at the response start ("" clears it), or None.
        self.cookie: str | None = None
        #: The tab that made this request, if any: signing out does not redirect its
        #: stream, since the tab follows its own action's response.
        self.caller_tab: str | None = None

    @property
    def id(self) -> str | None:
        """The session's public id (the store key), or None for a guest without a session."""
        return self.record.id if self.record is not None else None

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
        """Store ``data`` (creating the session if the visitor had none)."""
        await self._manager.save(self)

    async def sign_in(self, user_id: str, data: Any = None) -> None:
        """Start a fresh session for ``user_id``: a new token, the old one void."""
        await self._manager.sign_in(self, user_id, data)

    async def sign_out(self) -> None:
        """End the session and its live streams (but for the calling tab's own)."""
        await self._manager.close(self.id, caller_tab=self.caller_tab)
        self.record = None
        self.token = None
        self._data = None
        self.cookie = ""


class SessionManager:
    """Loads sessions from cookies, checks CSRF, and signs users in and out.

    ``App(sessions=SessionManager(store=SQLiteSessionStore("sessions.db")))``;
    ``App(sessions=True)`` uses the in-memory store.
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
        self.app: App | None = None
        self.codec: CookieCodec | None = None
        self.csrf: CSRF | None = None
        self._old_csrf: list[CSRF] = []

    def bind(self, app: App, keys: Sequence[bytes]) -> None:
        """Attach to an app; the first key seals cookies, the rest still open them."""
        self.app = app
        self.codec = CookieCodec(keys, name=self.cookie_name)
        self.csrf = CSRF(app.keys.derive("csrf"))
        # Tokens in pages rendered before a secret rotation still verify.
        self._old_csrf = [CSRF(key) for key in app.keys.all("csrf")[1:]]

    # -- loading --------------------------------------------------------------------

    async def load(self, conn: HTTPConnection) -> Session[Any]:
        """The request's session (cached in the scope). A bad cookie means a guest."""
        cached = conn.scope.get(SCOPE_KEY)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        assert self.codec is not None
        session: Session[Any] = Session(self, None, None)
        session.caller_tab = conn.headers.get("x-lp-tab")
        value = conn.cookies.get(self.cookie_name)
        if value:
            token = self.codec.decode(value)
            record = await self._get(session_id(token)) if token is not None else None
            if record is None:
                session.cookie = ""  # stale, expired or forged: clear it
            else:
                session.token, session.record = token, record
        conn.scope[SCOPE_KEY] = session
        return session

    async def ensure(self, conn: HTTPConnection) -> Session[Any]:
        """The request's session, starting a guest session if there is none."""
        session = await self.load(conn)
        if session.record is None:
            await self._issue(session, None, b"")
        return session

    async def _get(self, key: str) -> SessionRecord | None:
        try:
            return await self.store.get(key)
        except SessionStoreError as exc:
            raise _unavailable(exc) from exc

    async def _put(self, record: SessionRecord) -> None:
        try:
            await self.store.put(record)
        except SessionStoreError as exc:
            raise _unavailable(exc) from exc

    async def _issue(self, session: Session[Any], user_id: str | None, data: bytes) -> None:
        assert self.codec is not None
        token = generate_token()
        now = time.time()
        record = SessionRecord(
            id=session_id(token),
            user_id=user_id,
            data=data,
            issued_at=now,
            expires_at=now + self.max_age,
            last_seen=now,
        )
        await self._put(record)
        session.token, session.record = token, record
        session.cookie = self.codec.encode(token)

    # -- changes --------------------------------------------------------------------

    async def save(self, session: Session[Any]) -> None:
        """Store the session's data."""
        data = _stored_data(session)
        if session.record is None:
            await self._issue(session, None, data)
            return
        session.record = msgspec.structs.replace(session.record, data=data, last_seen=time.time())
        await self._put(session.record)

    async def sign_in(self, session: Session[Any], user_id: str, data: Any) -> None:
        """Replace the session with a new one for ``user_id`` (new token: no fixation)."""
        if data is not None:
            session._data = data
        old = session.id
        await self._issue(session, user_id, _stored_data(session))
        if old is not None:
            # Replaced, not closed: the tab signing in must follow the action's redirect.
            await self.close(old, replaced=True)

    async def close(
        self, key: str | None, *, replaced: bool = False, caller_tab: str | None = None
    ) -> None:
        """End one session: forget it and end its live streams (on every process).

        The streams go to ``closed_url``, except the ``caller_tab``'s (it follows its
        action's response) and all of a ``replaced`` session's (they reconnect).
        """
        if key is None:
            return
        try:
            await self.store.delete(key)
        except SessionStoreError as exc:
            raise _unavailable(exc) from exc
        if self.app is not None:
            await self.app.session_closed(key, replaced=replaced, caller_tab=caller_tab)

    async def close_user(self, user_id: str) -> list[str]:
        """End every session of a user (sign out everywhere); the ids closed."""
        try:
            keys = await self.store.delete_user(user_id)
        except SessionStoreError as exc:
            raise _unavailable(exc) from exc
        for key in keys:
            await self.close(key)
        return keys

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's open sessions, oldest first."""
        try:
            return await self.store.list_user(user_id)
        except SessionStoreError as exc:
            raise _unavailable(exc) from exc

    # -- checks ---------------------------------------------------------------------

    def csrf_token(self, conn: HTTPConnection) -> str:
        """A freshly masked CSRF token for the request's session ("" without one)."""
        session = conn.scope.get(SCOPE_KEY)
        if self.csrf is None or session is None or session.token is None:
            return ""
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


def _unavailable(exc: SessionStoreError) -> ServiceUnavailable:
    """The 503 for a store failure, logged: its message (a path, a host) is for logs only."""
    log.error("session store failed: %s", exc)
    return ServiceUnavailable("sessions are unavailable, try again shortly")


def _stored_data(session: Session[Any]) -> bytes:
    """The data to store: as changed in this request, else as it was (never dropped)."""
    if session._data is not None:
        return _encode(session._data)
    return session.record.data if session.record is not None else b""


def _decode(raw: bytes, data_type: Any) -> Any:
    try:
        return msgspec.json.decode(raw, type=data_type)
    except msgspec.DecodeError as exc:
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
