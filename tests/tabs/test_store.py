"""Tab state's encoding, the merge of a write that lost a race, and refresh payloads."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages.tabs.store import (
    TabStoreError,
    TabUpdate,
    decode_state,
    decode_update,
    encode_state,
    encode_update,
    merge_state,
)

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
states = st.dictionaries(st.sampled_from("abcdef"), values, max_size=6)


@given(states)
def test_state_round_trips(state: dict[str, Any]) -> None:
    assert decode_state(encode_state(state)) == state


@given(st.binary())
def test_any_stored_bytes_decode_to_a_dict_or_a_store_error(data: bytes) -> None:
    with contextlib.suppress(TabStoreError):
        assert isinstance(decode_state(data), dict)


@given(st.binary())
def test_any_refresh_payload_decodes_to_an_update_or_none(data: bytes) -> None:
    update = decode_update(data)
    assert update is None or isinstance(update, TabUpdate)


def test_a_refresh_payload_round_trips_and_empty_means_none() -> None:
    update = TabUpdate(7, encode_state({"q": "lamps"}))
    assert decode_update(encode_update(update)) == update
    assert decode_update(b"") is None


def test_a_value_that_cannot_be_stored_is_a_type_error_saying_what_can() -> None:
    with pytest.raises(TypeError, match="msgpack values"):
        encode_state({"socket": object()})


def same(one: Any, other: Any) -> bool:
    """Equal as stored (msgpack tells True from 1, as ``==`` does not)."""
    return encode_state({"v": one}) == encode_state({"v": other})


@given(states, states, states)
def test_a_merge_keeps_both_sides_changes_and_ours_win_where_both_changed(
    base: dict[str, Any], mine: dict[str, Any], theirs: dict[str, Any]
) -> None:
    merged = merge_state(base, mine, theirs)
    for key in base.keys() | mine.keys() | theirs.keys():
        changed_here = key not in base or key not in mine or same(base[key], mine[key]) is False
        if key in mine and changed_here:
            assert merged[key] == mine[key]  # ours, written or changed here
        elif key in base and key not in mine:
            assert key not in merged  # deleted here
        elif key in theirs:
            assert merged[key] == theirs[key]  # theirs, untouched here
        else:
            assert key not in merged  # deleted there, untouched here


def test_a_merge_of_disjoint_changes_has_both() -> None:
    base = {"query": "lamps", "page": 1}
    mine = {"query": "lamps", "page": 2}  # this process turned the page
    theirs = {"query": "desk lamps", "page": 1}  # another changed the query
    assert merge_state(base, mine, theirs) == {"query": "desk lamps", "page": 2}
