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
:class:`StreamOpened`, :class:`StreamClosed`, :class:`Published` and
:class:`ErrorReported`. ``LiveStats`` (``app.live.stats``) is one subscriber.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "ActionDone",
    "CloseReason",
    "ErrorReported",
    "Hooks",
    "Outcome",
    "Published",
    "Rendered",
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
