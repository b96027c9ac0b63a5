"""Wire names and the session notice that crosses processes through the broker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages import protocol
from livepages.protocol import ClosedReason, SessionNotice


def test_a_notice_round_trips() -> None:
    for notice in (
        SessionNotice(ClosedReason.CLOSED),
        SessionNotice(ClosedReason.CLOSED, caller_tab="t" * 32),
        SessionNotice(ClosedReason.REPLACED),
    ):
        assert SessionNotice.decode(notice.encode()) == notice


@given(st.binary(max_size=200))
def test_any_bytes_are_a_notice_or_a_value_error(data: bytes) -> None:
    try:
        notice = SessionNotice.decode(data)
    except ValueError:
        return
    assert isinstance(notice.reason, ClosedReason)


def test_the_wire_names_are_distinct() -> None:
    names = [getattr(protocol, name) for name in protocol.__all__ if name.isupper()]
    assert len(names) == len(set(names))
    assert protocol.TAB_REFRESH.startswith("_lp.")
    assert protocol.SESSION_CLOSED.startswith("_lp.")


@pytest.mark.parametrize("data", [b"", b"{}", b'{"reason":"gone"}', b"closed abc"])
def test_malformed_notices_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a session notice"):
        SessionNotice.decode(data)
