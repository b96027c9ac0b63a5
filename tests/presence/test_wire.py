"""What presence puts on the wire, decoded from anything: a value or a ValueError."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages.presence import Entry, Member
from livepages.presence.members import MAX_NAME
from livepages.presence.wire import RenameNotice, decode_entry, encode_entry

ID = "u" + "0123456789abcdef" * 2


def test_an_entry_round_trips() -> None:
    for entry in (
        Entry("chat.general", Member(ID, "Ada", "ada@example.com"), 1.5),
        Entry("doc.%2E", Member("t" + ID[1:], "", None), 0.0),
    ):
        assert decode_entry(encode_entry(entry)) == entry


@given(st.binary(max_size=300))
def test_any_bytes_are_an_entry_or_a_value_error(data: bytes) -> None:
    try:
        entry = decode_entry(data)
    except ValueError:
        return
    assert isinstance(entry.member, Member)
    assert math.isfinite(entry.named_at)


@given(
    st.tuples(
        st.one_of(st.text(max_size=20), st.integers(-(2**63), 2**63), st.none()),
        st.one_of(st.text(max_size=40), st.just(ID)),
        st.text(max_size=MAX_NAME + 5),
        st.one_of(st.none(), st.text(max_size=10), st.booleans()),
        st.one_of(st.floats(), st.integers(-(2**63), 2**63), st.text(max_size=3)),
    )
)
def test_any_five_values_are_an_entry_or_a_value_error(fields: tuple[object, ...]) -> None:
    try:
        entry = decode_entry(msgspec.msgpack.encode(list(fields)))
    except ValueError:
        return
    assert len(entry.member.name) <= MAX_NAME
    assert entry.member.id == ID


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (["t", "nonsense", "Ada", None, 1.0], "matching regex"),
        (["t", ID, "A" * (MAX_NAME + 1), None, 1.0], "length"),
        (["t", ID, "Ada", None, math.nan], "finite"),
        (["t", ID, "Ada", None], "of at least length 5"),
    ],
)
def test_bad_entries_are_refused(fields: list[object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decode_entry(msgspec.msgpack.encode(fields))


def test_a_rename_round_trips() -> None:
    notice = RenameNotice(ID, "Ada")
    assert RenameNotice.decode(notice.encode()) == notice


@given(st.binary(max_size=200))
def test_any_bytes_are_a_rename_or_a_value_error(data: bytes) -> None:
    try:
        notice = RenameNotice.decode(data)
    except ValueError:
        return
    assert len(notice.name) <= MAX_NAME


@pytest.mark.parametrize("data", [b"", b"{}", b'{"member":"x","name":"a"}', b"[1,2]"])
def test_malformed_renames_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a rename notice"):
        RenameNotice.decode(data)
