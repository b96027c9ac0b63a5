"""Who is present: a :class:`Member`, the :class:`Members` of a topic, and the
:class:`PresenceEvent` that says one joined, left or changed name.

A member is a visitor: a signed-in user, else a session, else one browser tab. Its
``id`` is opaque and stable (a keyed hash, never the raw user, session or tab id),
the same on every process of an app that shares one secret key.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import msgspec

__all__ = [
    "GUEST",
    "MAX_NAME",
    "Member",
    "Members",
    "PresenceChange",
    "PresenceEvent",
    "clean_name",
    "ordered",
]

#: The longest display name a member keeps, in characters; longer ones are cut.
MAX_NAME = 100
#: The name of a member whose page gives none, and who is not signed in.
GUEST = "guest"


class Member(msgspec.Struct, frozen=True, gc=False):
    """One visitor present on a topic.

    ``id`` starts with ``u`` for a signed-in user, ``s`` for a session and ``t`` for
    a tab, followed by hex digits. ``user_id`` is the signed-in user's id, if any.
    """

    id: str
    name: str
    user_id: str | None = None


class PresenceChange(enum.Enum):
    """What happened to a member of a topic."""

    #: Its first stream on the topic opened, on any process.
    JOINED = "joined"
    #: Its last stream closed, or its process stopped answering (after the TTL).
    LEFT = "left"
    #: Its display name changed (``app.presence.rename``, or a stream that opened since).
    RENAMED = "renamed"


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """A change of a topic's members; ``member`` as it is now (as it was, for LEFT)."""

    topic: str
    member: Member
    change: PresenceChange


class Members(Sequence[Member]):
    """The members of one topic now, ordered by name (case-insensitively), then id.

    Inject it into a page's ``render`` (``online: Members``): the topic is the page's
    ``presence`` topic, and the page re-renders whenever its members change. (A plain
    class, not a dataclass: livepages decodes dataclass parameters from the signals.)
    """

    __slots__ = ("members", "topic")

    def __init__(self, topic: str, members: tuple[Member, ...] = ()) -> None:
        self.topic = topic
        self.members = members

    def __repr__(self) -> str:
        return f"Members({self.topic!r}, {self.members!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Members):
            return NotImplemented
        return (self.topic, self.members) == (other.topic, other.members)

    def __hash__(self) -> int:
        return hash((self.topic, self.members))

    @overload
    def __getitem__(self, index: int) -> Member: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Member]: ...
    def __getitem__(self, index: int | slice) -> Member | Sequence[Member]:
        return self.members[index]

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    @property
    def ids(self) -> frozenset[str]:
        """The ids of the members."""
        return frozenset(member.id for member in self.members)


def ordered(members: Sequence[Member]) -> tuple[Member, ...]:
    """``members`` in display order: by name, case-insensitively, then by id."""
    return tuple(sorted(members, key=lambda m: (m.name.casefold(), m.name, m.id)))


def clean_name(name: str) -> str:
    """A display name as members carry it: blanks collapsed, at most ``MAX_NAME``
    characters, ``GUEST`` if nothing is left."""
    return " ".join(name.split())[:MAX_NAME].rstrip() or GUEST
