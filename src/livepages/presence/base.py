"""The presence backend: where a process tells who it holds, and learns who the others hold.

``app.presence`` (:class:`livepages.presence.tracker.Presence`) counts the streams of
each member on each topic and calls the backend once per change of this process's
own members: :meth:`PresenceBackend.join` when a member's first stream on a topic
opens (and again when its name changes), :meth:`PresenceBackend.leave` when its last
one closes. The backend keeps a :class:`Roster` of every process's members and
hands each change of it to the listener ``app.presence`` sets.

Two backends: :class:`livepages.presence.memory.MemoryPresence` (one process, the
default) and :class:`livepages.presence.nats.NATSPresence` (JetStream KV, many
processes; it needs nats-py).
"""

from __future__ import annotations

from collections.abc import Callable

from livepages.presence.members import Member, Members, PresenceEvent
from livepages.presence.roster import Roster

__all__ = ["PresenceBackend", "PresenceError"]


class PresenceError(Exception):
    """The presence backend cannot reach its store."""


def _ignore(event: PresenceEvent) -> None:
    """The listener until ``app.presence`` sets its own."""


class PresenceBackend:
    """Base class of presence backends: a roster, and a listener of its changes."""

    def __init__(self) -> None:
        self.roster = Roster(self._emit)
        self._listener: Callable[[PresenceEvent], None] = _ignore

    def listen(self, listener: Callable[[PresenceEvent], None]) -> None:
        """Call ``listener`` with each change of the roster (one listener: the app's)."""
        self._listener = listener

    def _emit(self, event: PresenceEvent) -> None:
        self._listener(event)

    def members(self, topic: str) -> Members:
        """The members of ``topic`` now, on every process this backend hears."""
        return self.roster.members(topic)

    async def start(self) -> None:
        """Connect, and load who is present now. Idempotent."""

    async def close(self) -> None:
        """Withdraw this process's members and disconnect. Idempotent."""

    def join(self, topic: str, member: Member) -> None:
        """This process holds ``member`` on ``topic`` (again: under a new name)."""
        raise NotImplementedError

    def leave(self, topic: str, member_id: str) -> None:
        """This process holds the member no more on ``topic``."""
        raise NotImplementedError
