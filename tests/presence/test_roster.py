"""The roster: entries add up to members, and every change is one event."""

from __future__ import annotations

import pytest

from livepages.presence import Entry, Member, PresenceChange, PresenceEvent, Roster
from livepages.presence.members import GUEST, MAX_NAME, Members, clean_name

ADA = Member("s" + "a" * 32, "Ada")
BOB = Member("s" + "b" * 32, "bob")
JOINED, LEFT, RENAMED = PresenceChange


@pytest.fixture
def events() -> list[PresenceEvent]:
    return []


@pytest.fixture
def roster(events: list[PresenceEvent]) -> Roster:
    return Roster(events.append)


def test_a_first_entry_joins_and_the_last_one_leaves(
    roster: Roster, events: list[PresenceEvent]
) -> None:
    roster.put("k1", Entry("room", ADA, 1.0))
    roster.put("k2", Entry("room", ADA, 1.0))  # a second process holds Ada too
    assert events == [PresenceEvent("room", ADA, JOINED)]
    roster.remove("k1")
    assert roster.members("room").members == (ADA,)
    roster.remove("k2")
    assert events[-1] == PresenceEvent("room", ADA, LEFT)
    assert roster.members("room") == Members("room")
    assert roster.topics() == []
    assert len(roster) == 0


def test_members_are_ordered_by_name_then_id(roster: Roster) -> None:
    zed, ada2 = Member("t" + "0" * 32, "Zed"), Member("t" + "1" * 32, "ada")
    for key, member in enumerate([zed, BOB, ada2, ADA]):
        roster.put(str(key), Entry("room", member, 0.0))
    assert [m.name for m in roster.members("room")] == ["Ada", "ada", "bob", "Zed"]


def test_topics_are_apart(roster: Roster, events: list[PresenceEvent]) -> None:
    roster.put("k1", Entry("a", ADA, 0.0))
    roster.put("k2", Entry("b", BOB, 0.0))
    assert list(roster.members("a")) == [ADA]
    assert list(roster.members("b")) == [BOB]
    assert sorted(roster.topics()) == ["a", "b"]
    assert [e.topic for e in events] == ["a", "b"]


def test_the_entry_named_last_gives_the_name(roster: Roster, events: list[PresenceEvent]) -> None:
    renamed = Member(ADA.id, "Ada L.")
    roster.put("k1", Entry("room", ADA, 1.0))
    roster.put("k2", Entry("room", renamed, 2.0))
    assert events[-1] == PresenceEvent("room", renamed, RENAMED)
    roster.put("k1", Entry("room", ADA, 1.0))  # an old name heard again: changes nothing
    assert len(events) == 2
    roster.remove("k2")  # the entry that named her goes: the other one's name shows
    assert events[-1] == PresenceEvent("room", ADA, RENAMED)
    assert list(roster.members("room")) == [ADA]


def test_removing_an_entry_that_did_not_name_changes_nothing(
    roster: Roster, events: list[PresenceEvent]
) -> None:
    roster.put("k1", Entry("room", ADA, 1.0))
    roster.put("k2", Entry("room", Member(ADA.id, "old"), 0.5))
    roster.remove("k2")
    roster.remove("k2")  # twice: harmless
    roster.remove("never")
    assert events == [PresenceEvent("room", ADA, JOINED)]


def test_the_same_entry_again_is_no_event(roster: Roster, events: list[PresenceEvent]) -> None:
    roster.put("k1", Entry("room", ADA, 1.0))
    roster.put("k1", Entry("room", ADA, 1.0))
    assert len(events) == 1
    assert "k1" in roster


def test_a_key_that_changes_topic_leaves_the_old_one(
    roster: Roster, events: list[PresenceEvent]
) -> None:
    roster.put("k1", Entry("a", ADA, 1.0))
    roster.put("k1", Entry("b", ADA, 1.0))
    assert events == [
        PresenceEvent("a", ADA, JOINED),
        PresenceEvent("a", ADA, LEFT),
        PresenceEvent("b", ADA, JOINED),
    ]


def test_members_are_made_once_per_change(roster: Roster) -> None:
    roster.put("k1", Entry("room", ADA, 1.0))
    first = roster.members("room")
    assert roster.members("room") is first  # every render of the topic shares it
    roster.put("k2", Entry("room", BOB, 1.0))
    assert roster.members("room") is not first
    assert roster.members("room").ids == {ADA.id, BOB.id}
    assert BOB in roster.members("room")
    assert roster.members("room")[1] == BOB
    assert len(roster.members("room")) == 2


def test_names_are_cleaned() -> None:
    assert clean_name("  Ada \n Lovelace ") == "Ada Lovelace"
    assert clean_name("   ") == GUEST
    assert clean_name("x" * 500) == "x" * MAX_NAME
