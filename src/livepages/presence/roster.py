"""The roster: one process's view of who is on which topic, built from entries.

An entry says "this member is on this topic", under a key of its own: each process
that holds a stream of the member writes one (on NATS, one KV key per topic, process
and member). A member is present while at least one of its entries is. When its
entries disagree on its name, the one named last wins (then the greatest key), so
every process that holds the same entries shows the same name.

The roster only counts: it does no I/O and knows no clock. Each change of what a
topic shows (a member joined, left or was renamed) is handed to ``emit`` as a
:class:`PresenceEvent`, synchronously, once the roster is consistent again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from livepages.presence.members import (
    Member,
    Members,
    PresenceChange,
    PresenceEvent,
    ordered,
)

__all__ = ["Entry", "Roster"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One process's word that ``member`` is on ``topic``; ``named_at`` (Unix time)
    is when that process last set the member's name."""

    topic: str
    member: Member
    named_at: float


class Roster:
    """Entries by key, and the members they add up to, topic by topic."""

    def __init__(self, emit: Callable[[PresenceEvent], None]) -> None:
        self._emit = emit
        self._entries: dict[str, Entry] = {}
        # topic -> member id -> the keys of its entries
        self._keys: dict[str, dict[str, set[str]]] = {}
        # topic -> its members, sorted: made once per change, read by every render
        self._shown: dict[str, Members] = {}

    def __len__(self) -> int:
        """How many entries the roster holds."""
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def members(self, topic: str) -> Members:
        """The members of ``topic`` now, in display order."""
        shown = self._shown.get(topic)
        if shown is None:
            shown = self._shown[topic] = Members(topic, ordered(self._current(topic)))
            if not shown.members:
                del self._shown[topic]  # not kept for topics nobody is on
        return shown

    def topics(self) -> list[str]:
        """The topics with at least one member."""
        return list(self._keys)

    def put(self, key: str, entry: Entry) -> None:
        """Add or replace the entry under ``key``."""
        old = self._entries.get(key)
        if old == entry:
            return
        if old is not None and (old.topic, old.member.id) != (entry.topic, entry.member.id):
            self.remove(key)  # the key now says something else: the old claim goes
            old = None
        topic, member_id = entry.topic, entry.member.id
        before = self._shown_member(topic, member_id)
        self._entries[key] = entry
        self._keys.setdefault(topic, {}).setdefault(member_id, set()).add(key)
        after = self._shown_member(topic, member_id)
        if before is None:
            self._changed(topic, after, PresenceChange.JOINED)
        elif after != before:
            self._changed(topic, after, PresenceChange.RENAMED)

    def remove(self, key: str) -> None:
        """Drop the entry under ``key``; harmless if there is none."""
        entry = self._entries.get(key)
        if entry is None:
            return
        topic, member_id = entry.topic, entry.member.id
        members = self._keys[topic]
        keys = members[member_id]
        before = self._pick(keys)
        del self._entries[key]
        keys.discard(key)
        if keys:
            after = self._pick(keys)
            if after != before:  # the entry that set the name went
                self._changed(topic, after, PresenceChange.RENAMED)
            return
        del members[member_id]
        if not members:
            del self._keys[topic]
        self._changed(topic, before, PresenceChange.LEFT)

    def _current(self, topic: str) -> list[Member]:
        return [self._pick(keys) for keys in self._keys.get(topic, {}).values()]

    def _shown_member(self, topic: str, member_id: str) -> Member | None:
        keys = self._keys.get(topic, {}).get(member_id)
        return self._pick(keys) if keys else None

    def _pick(self, keys: set[str]) -> Member:
        """The member as its entries show it: the one named last (then the greatest key)."""
        latest = max(keys, key=lambda k: (self._entries[k].named_at, k))
        return self._entries[latest].member

    def _changed(self, topic: str, member: Member | None, change: PresenceChange) -> None:
        assert member is not None
        self._shown.pop(topic, None)
        self._emit(PresenceEvent(topic, member, change))
