"""Tests for livepages.broker.subjects: NATS subject rules and the subject index."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages.broker.subjects import (
    SubjectIndex,
    subject_matches,
    validate_pattern,
    validate_subject,
)


@pytest.mark.parametrize(
    ("subject", "tokens"),
    [
        ("a", ["a"]),
        ("chat.room.42", ["chat", "room", "42"]),
        ("$JS.API.info", ["$JS", "API", "info"]),
        ("user-7.tab_3:x", ["user-7", "tab_3:x"]),
        ("café.ü", ["café", "ü"]),
    ],
)
def test_valid_subjects_give_their_tokens(subject: str, tokens: list[str]) -> None:
    assert validate_subject(subject) == tokens


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("", "must not be empty"),
        (".", "empty token"),
        ("a.", "empty token"),
        (".a", "empty token"),
        ("a..b", "empty token"),
        ("a b", "white space"),
        ("a.b\t", "white space"),
        ("a\nb", "white space"),
        ("a.\u00a0", "white space"),
        ("*", "wildcards are for subscribing"),
        ("chat.*", "wildcards are for subscribing"),
        (">", "wildcards are for subscribing"),
        ("chat.>", "wildcards are for subscribing"),
        ("chat.ro*m", "whole tokens"),
        ("a>", "whole tokens"),
    ],
)
def test_invalid_subjects_are_refused(subject: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_subject(subject)


@pytest.mark.parametrize("subject", [b"chat.room", None, 42])
def test_a_subject_must_be_a_string(subject: Any) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        validate_subject(subject)
    with pytest.raises(TypeError, match="must be a str"):
        validate_pattern(subject)


@pytest.mark.parametrize("pattern", ["a", "a.*.c", "*", "*.*", ">", "a.>", "*.b.>"])
def test_valid_patterns(pattern: str) -> None:
    assert validate_pattern(pattern) == pattern.split(".")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "must not be empty"),
        ("a..b", "empty token"),
        ("a.", "empty token"),
        ("a b.>", "white space"),
        (">.a", "'>' may only be the last token"),
        ("a.>.b", "'>' may only be the last token"),
        (">.>", "'>' may only be the last token"),
        ("a*", "whole tokens"),
        ("a.b>", "whole tokens"),
        ("**", "whole tokens"),
    ],
)
def test_invalid_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("a.b", "a.b.c", False),
        ("a.b.c", "a.b", False),
        ("a.*", "a.b", True),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
        ("*.b", "a.b", True),
        ("*.*", "a.b", True),
        ("*", "a", True),
        ("*", "a.b", False),
        ("a.>", "a", False),  # '>' needs at least one token
        ("a.>", "a.b", True),
        ("a.>", "a.b.c.d", True),
        ("a.>", "b.c", False),
        (">", "a", True),
        (">", "a.b.c", True),
        ("*.b.>", "x.b.y", True),
        ("*.b.>", "x.b", False),
        ("*.b.>", "x.c.y", False),
    ],
)
def test_subject_matches(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected
    index: SubjectIndex[str] = SubjectIndex()
    index.add(pattern, "item")
    assert index.match(subject) == (["item"] if expected else [])


TOKENS = st.sampled_from(["a", "b", "c"])
PATTERN_TOKENS = st.sampled_from(["a", "b", "c", "*"])
SUBJECTS = st.lists(TOKENS, min_size=1, max_size=4).map(".".join)
PATTERNS = st.builds(
    lambda head, tail: ".".join(head + ([">"] if tail else [])),
    st.lists(PATTERN_TOKENS, min_size=0, max_size=4),
    st.booleans(),
).filter(bool)


@given(patterns=st.lists(PATTERNS, max_size=30), subjects=st.lists(SUBJECTS, max_size=10))
def test_the_index_agrees_with_matching_pattern_by_pattern(
    patterns: list[str], subjects: list[str]
) -> None:
    index: SubjectIndex[int] = SubjectIndex()
    for number, pattern in enumerate(patterns):
        index.add(pattern, number)
    assert len(index) == len(patterns)
    for subject in subjects:
        expected = [n for n, pattern in enumerate(patterns) if subject_matches(pattern, subject)]
        assert sorted(index.match(subject)) == expected


@given(patterns=st.lists(PATTERNS, max_size=30))
def test_removing_everything_leaves_an_empty_index(patterns: list[str]) -> None:
    index: SubjectIndex[int] = SubjectIndex()
    for number, pattern in enumerate(patterns):
        index.add(pattern, number)
    assert sorted(index) == list(range(len(patterns)))
    for number, pattern in enumerate(patterns):
        assert index.remove(pattern, number)
    assert len(index) == 0
    assert list(index) == []
    assert index.match("a.b") == []
    # Pruned all the way up: subjects that came and went leave no nodes behind.
    assert index._root.is_empty()


def test_items_keep_their_order_and_are_filed_once_per_pattern() -> None:
    index: SubjectIndex[str] = SubjectIndex()
    for item in ["first", "second", "third", "second"]:
        index.add("room.1", item)
    assert len(index) == 3
    assert index.match("room.1") == ["first", "second", "third"]
    index.add("room.*", "second")  # another pattern: another filing
    assert index.match("room.1") == ["first", "second", "third", "second"]


def test_remove_reports_what_was_not_there() -> None:
    index: SubjectIndex[str] = SubjectIndex()
    index.add("a.b", "x")
    assert not index.remove("a.b", "y")
    assert not index.remove("a.c", "x")
    assert not index.remove("a.*", "x")
    assert not index.remove("a.>", "x")
    assert not index.remove("a.b.c", "x")
    assert not index.remove("a", "x")
    assert index.remove("a.b", "x")
    assert not index.remove("a.b", "x")
    with pytest.raises(ValueError, match="empty token"):
        index.remove("a..b", "x")
    with pytest.raises(ValueError, match="empty token"):
        index.add("a..b", "x")


def test_removing_one_pattern_keeps_its_neighbours() -> None:
    index: SubjectIndex[str] = SubjectIndex()
    for pattern in ["a.b", "a.b.c", "a.*", "a.>", ">"]:
        index.add(pattern, pattern)
    assert index.remove("a.b", "a.b")
    assert sorted(index.match("a.b")) == [">", "a.*", "a.>"]
    assert sorted(index.match("a.b.c")) == [">", "a.>", "a.b.c"]
    assert index.remove("a.*", "a.*")
    assert sorted(index.match("a.x")) == [">", "a.>"]


def test_the_match_list_is_a_snapshot() -> None:
    index: SubjectIndex[str] = SubjectIndex()
    index.add("a", "x")
    found = index.match("a")
    index.remove("a", "x")
    index.add("a", "y")
    assert found == ["x"]


def lines_run(function: Callable[[], object]) -> int:
    """How many lines of Python ``function`` runs: a measure of work that does not vary."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    # A garbage collection in the middle could run other objects' finalizers
    # under the tracer; keep the collector out of the measurement.
    gc.collect()
    gc.disable()
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        function()
    finally:
        sys.settrace(previous)
        gc.enable()
    return count


def test_a_lookup_does_not_scan_the_other_patterns() -> None:
    small: SubjectIndex[int] = SubjectIndex()
    large: SubjectIndex[int] = SubjectIndex()
    for index, count in ((small, 10), (large, 10_000)):
        for number in range(count):
            index.add(f"chat.room.{number}", number)
            index.add(f"user.{number}.>", number)
        index.add("chat.*.5", -1)
    assert large.match("chat.room.5") == [5, -1]
    assert lines_run(lambda: large.match("chat.room.5")) == lines_run(
        lambda: small.match("chat.room.5")
    )
    assert lines_run(lambda: large.match("user.5.tab.1")) == lines_run(
        lambda: small.match("user.5.tab.1")
    )
