"""The in-process presence backend: the roster is everything, and nothing can die apart."""

from __future__ import annotations

import time

from livepages.presence.base import PresenceBackend
from livepages.presence.members import Member
from livepages.presence.roster import Entry

__all__ = ["MemoryPresence"]


class MemoryPresence(PresenceBackend):
    """Presence for one process: its own members are all there is.

    The process that holds the streams is the one that lists them, so a member
    leaves exactly when its last stream closes, and no TTL is needed.
    """

    def join(self, topic: str, member: Member) -> None:
        """Add or rename ``member`` on ``topic``."""
        self.roster.put(_key(topic, member.id), Entry(topic, member, time.time()))

    def leave(self, topic: str, member_id: str) -> None:
        """Remove the member from ``topic``."""
        self.roster.remove(_key(topic, member_id))


def _key(topic: str, member_id: str) -> str:
    # A member id has no NUL, so this splits one way only.
    return f"{member_id}\x00{topic}"
