"""Lifecycle hooks: what the app did, as typed events for metrics, logs and tools.

``app.hooks.on(Rendered)`` registers a listener, called with each event of that
type. Listeners are plain functions, called inline where the event happens,
so they must be quick (count, append, hand off to a queue); an exception in one
is logged and does not reach the app or the other listeners. Events are built
only when something listens, so an app without listeners pays nothing::

    @app.hooks.on(ActionDone)
    def count(event: ActionDone) -> None:
        outcomes[event.name, event.outcome] += 1

Events: :class:`Rendered` (one live or page render), :class:`ActionDone`,
:class:`StreamOpened`, :class:`StreamClosed`, :class:`Published`,
:class:`ErrorReported`, :class:`RequestStarted` and :class:`RequestDone` (every HTTP
request, ``livepages.traffic``), :class:`SessionRead`, :class:`SessionCreated`,
:class:`SessionClosed` and :class:`CSRFRefused`. ``LiveStats`` (``app.live.stats``)
is one subscriber, ``livepages.metrics`` and ``livepages.logs`` two more.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "ActionDone",
    "CSRFRefused",
    "CloseReason",
    "ErrorReported",
    "Hooks",
    "Outcome",
    "Published",
    "ReadOutcome",
    "Rendered",
    "RequestDone",
    "RequestStarted",
    "SessionClosed",
    "SessionCreated",
    "SessionRead",
    "StreamClosed",
    "StreamOpened",
]

log = logging.getLogger("livepages")

E = TypeVar("E")


class Outcome(enum.Enum):
    """How an action ended."""

    OK = "ok"
    #: Its input or its own checks failed (``ValidationError``): the ``errors`` signal.
    INVALID = "invalid"
    #: An ``HTTPError`` (403, 404, 409, ...): the client was told why.
    REFUSED = "refused"
    #: An unexpected exception: reported as an error.
    FAILED = "failed"


class CloseReason(enum.Enum):
    """Why a live stream ended."""

    #: The browser went away (a closed tab, a navigation, a network drop).
    CLIENT_LEFT = "client_left"
    #: A write stayed stuck past ``write_timeout``: the client was dropped.
    DROPPED = "dropped"
    #: The server is stopping.
    SHUTDOWN = "shutdown"
    #: The app ended it (a closed session, a sign-in elsewhere).
    ENDED = "ended"


class ReadOutcome(enum.Enum):
    """What reading a request's session cookie found."""

    #: No cookie: a visitor without a session.
    NONE = "none"
    #: A cookie of a live session (stored, or a guest's not stored yet).
    VALID = "valid"
    #: A cookie that does not open (forged, sealed with a retired key), or the cookie of
    #: a guest whose session was never stored and expired.
    INVALID = "invalid"
    #: A cookie of a session that was closed or expired.
    ENDED = "ended"
    #: The session store could not be read.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Rendered:
    """One render of a live view (not of a page GET)."""

    page: str
    scope: str
    duration: float
    size: int
    #: Identical to the previous render: nothing was sent.
    dedup: bool
    failed: bool = False


@dataclass(frozen=True, slots=True)
class ActionDone:
    """One action call, whatever its outcome."""

    name: str
    outcome: Outcome
    duration: float


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """A page's live stream opened."""

    page: str


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """A page's live stream ended."""

    page: str
    reason: CloseReason
    duration: float


@dataclass(frozen=True, slots=True)
class Published:
    """An event went to the broker."""

    subject: str
    size: int


@dataclass(frozen=True, slots=True)
class ErrorReported:
    """An unexpected exception was reported (logged once, passed to ``on_error``)."""

    method: str
    path: str
    error: BaseException
    #: The request still got its answer (a live update failed, a stream went on); an
    #: error that was not recovered made the response a 500.
    recovered: bool


@dataclass(frozen=True, slots=True)
class RequestStarted:
    """An HTTP request arrived (``livepages.traffic``)."""

    method: str


@dataclass(frozen=True, slots=True)
class RequestDone:
    """An HTTP request was answered (a live stream: when it ended).

    ``route`` is the template of the route that matched (``/rooms/{room}``), never
    the raw path, so that labels stay few; ``"<unmatched>"`` when none did.
    """

    request_id: str
    method: str
    route: str
    status: int
    duration: float
    #: The session's user, when the request loaded a session with one.
    user_id: str | None


@dataclass(frozen=True, slots=True)
class SessionRead:
    """A request's session cookie was read (once per request that asks for it)."""

    outcome: ReadOutcome


@dataclass(frozen=True, slots=True)
class SessionCreated:
    """A session was stored for the first time (a guest's first save, a sign-in); ``ok``
    is False when that failed (the store was away, a conflict): the caller got the error."""

    ok: bool


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """A stored session ended (sign-out, close, replaced by a sign-in): one for each
    ``SessionCreated``. ``ok`` is False when the store could not delete it (the error
    reached the caller)."""

    ok: bool


@dataclass(frozen=True, slots=True)
class CSRFRefused:
    """An action was refused: from another site, or without the session's CSRF token."""

    method: str


class Hooks:
    """Listeners by event type."""

    def __init__(self) -> None:
        self._listeners: dict[type[Any], list[Callable[[Any], object]]] = {}

    def on(self, kind: type[E]) -> Callable[[Callable[[E], object]], Callable[[E], object]]:
        """Decorator: call the function with every event of type ``kind``."""

        def register(listener: Callable[[E], object]) -> Callable[[E], object]:
            self.add(kind, listener)
            return listener

        return register

    def add(self, kind: type[E], listener: Callable[[E], object]) -> None:
        """Call ``listener`` with every event of type ``kind``."""
        self._listeners.setdefault(kind, []).append(listener)

    def remove(self, kind: type[E], listener: Callable[[E], object]) -> None:
        """Stop calling ``listener``; removing one that is not there is harmless."""
        listeners = self._listeners.get(kind, [])
        if listener in listeners:
            listeners.remove(listener)

    def wants(self, kind: type[Any]) -> bool:
        """Whether anything listens to ``kind`` (skip building the event if not)."""
        return bool(self._listeners.get(kind))

    def emit(self, event: object) -> None:
        """Call every listener of the event's type; a failing one is logged and skipped."""
        for listener in self._listeners.get(type(event), ()):
            try:
                listener(event)
            except Exception:
                log.exception("a %s hook failed", type(event).__name__)
