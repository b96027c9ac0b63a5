"""Presence: which visitors are on a page (or any topic) now, across every process.

A page declares a topic over its fields (``presence = "chat.{room}"``); each of its
open streams makes its visitor a member. ``app.presence`` (:class:`Presence`) lists
a topic's :class:`Members`, calls listeners with each :class:`PresenceEvent`, and
renames members. The backend is :class:`MemoryPresence` in one process and
``livepages.presence.nats.NATSPresence`` (JetStream KV, heartbeats with a TTL) when
the app runs on NATS. See docs/presence.md.
"""

from livepages.presence.base import PresenceBackend, PresenceError
from livepages.presence.members import (
    GUEST,
    MAX_NAME,
    Member,
    Members,
    PresenceChange,
    PresenceEvent,
)
from livepages.presence.memory import MemoryPresence
from livepages.presence.roster import Entry, Roster
from livepages.presence.tracker import Presence, PresenceListener

__all__ = [
    "GUEST",
    "MAX_NAME",
    "Entry",
    "Member",
    "Members",
    "MemoryPresence",
    "Presence",
    "PresenceBackend",
    "PresenceChange",
    "PresenceError",
    "PresenceEvent",
    "PresenceListener",
    "Roster",
]
