"""Subjects and patterns, with NATS's rules, and an index that finds the patterns a subject matches.

A subject is tokens joined by ``.``: ``chat.room.42``. A pattern may also use two wildcards,
each as a whole token: ``*`` matches exactly one token (``chat.room.*``) and ``>``, only as
the last token, matches one or more (``chat.>``; ``>`` alone matches every subject).

livepages is a little stricter than NATS so that whatever works on the in-memory broker
also works on NATS: a token may not contain ``*`` or ``>`` next to other characters
(NATS would take ``a*`` literally, which is rarely what was meant).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["SubjectIndex", "subject_matches", "validate_pattern", "validate_subject"]

T = TypeVar("T", bound=Hashable)

_ONE = "*"  # the wildcard for exactly one token
_REST = ">"  # the wildcard for one or more trailing tokens

# Printable tokens without wildcards, separated by single dots: the fast path for publish.
_PLAIN_SUBJECT = re.compile(r"[^.\s*>]+(?:\.[^.\s*>]+)*\Z")


def _check_tokens(text: str, what: str) -> list[str]:
    """Split ``text`` into tokens, raising ``ValueError`` on what no subject may contain."""
    if not isinstance(text, str):
        raise TypeError(f"a {what} must be a str, not {type(text).__name__}")
    if not text:
        raise ValueError(f"a {what} must not be empty")
    tokens = text.split(".")
    for token in tokens:
        if not token:
            raise ValueError(f"{what} {text!r} has an empty token")
        if any(char.isspace() for char in token):
            raise ValueError(f"{what} {text!r} contains white space")
        if token not in (_ONE, _REST) and (_ONE in token or _REST in token):
            raise ValueError(f"{what} {text!r}: '*' and '>' must be whole tokens")
    return tokens


def validate_subject(subject: str) -> list[str]:
    """Check a subject to publish to and return its tokens; it may not hold wildcards."""
    if isinstance(subject, str) and _PLAIN_SUBJECT.match(subject):
        return subject.split(".")
    # Not a plain subject: find what is wrong with it, for a precise message.
    _check_tokens(subject, "subject")
    raise ValueError(f"subject {subject!r}: wildcards are for subscribing, not publishing")


def validate_pattern(pattern: str) -> list[str]:
    """Check a pattern to subscribe to and return its tokens."""
    tokens = _check_tokens(pattern, "pattern")
    if _REST in tokens[:-1]:
        raise ValueError(f"pattern {pattern!r}: '>' may only be the last token")
    return tokens


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether ``subject`` matches ``pattern`` (both are validated)."""
    wanted = validate_pattern(pattern)
    tokens = validate_subject(subject)
    for index, token in enumerate(wanted):
        if token == _REST:
            return len(tokens) > index
        if index >= len(tokens) or token not in (_ONE, tokens[index]):
            return False
    return len(tokens) == len(wanted)


class _Node(Generic[T]):
    """One token position in the index. Empty containers stay ``None``: most nodes are leaves."""

    __slots__ = ("children", "here", "rest", "star")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] | None = None  # literal next tokens
        self.star: _Node[T] | None = None  # the '*' next token
        self.here: dict[T, None] | None = None  # items whose pattern ends at this node
        self.rest: dict[T, None] | None = None  # items whose pattern continues with '>'

    def is_empty(self) -> bool:
        return not (self.children or self.star or self.here or self.rest)


class SubjectIndex(Generic[T]):
    """Items (subscriptions) filed by pattern, looked up by subject.

    A trie over tokens: :meth:`match` walks one path per wildcard branch, so its cost is
    the number of tokens plus the number of matches, however many patterns are filed.
    Each pattern's items keep insertion order; an item may be filed once per pattern.
    """

    __slots__ = ("_root", "_size")

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[T]:
        """Every filed item, from a snapshot."""
        found: list[T] = []
        nodes = [self._root]
        while nodes:
            node = nodes.pop()
            found.extend(node.here or ())
            found.extend(node.rest or ())
            nodes.extend((node.children or {}).values())
            if node.star is not None:
                nodes.append(node.star)
        return iter(found)

    def add(self, pattern: str, item: T) -> None:
        """File ``item`` under ``pattern`` (``ValueError`` if the pattern is invalid)."""
        tokens = validate_pattern(pattern)
        node = self._root
        last = tokens[-1]
        for token in tokens[:-1] if last == _REST else tokens:
            if token == _ONE:
                if node.star is None:
                    node.star = _Node()
                node = node.star
            else:
                if node.children is None:
                    node.children = {}
                child = node.children.get(token)
                if child is None:
                    child = node.children[token] = _Node()
                node = child
        if last == _REST:
            if node.rest is None:
                node.rest = {}
            items = node.rest
        else:
            if node.here is None:
                node.here = {}
            items = node.here
        if item not in items:
            items[item] = None
            self._size += 1

    def remove(self, pattern: str, item: T) -> bool:
        """Unfile ``item`` from ``pattern``; return whether it was there.

        Nodes left empty are pruned, so subjects that come and go (one per tab or session)
        do not leave the index growing.
        """
        tokens = validate_pattern(pattern)
        path: list[tuple[_Node[T], str]] = []
        node = self._root
        last = tokens[-1]
        for token in tokens[:-1] if last == _REST else tokens:
            path.append((node, token))
            following = node.star if token == _ONE else (node.children or {}).get(token)
            if following is None:
                return False
            node = following
        items = node.rest if last == _REST else node.here
        if not items or item not in items:
            return False
        del items[item]
        self._size -= 1
        self._prune(node, path)
        return True

    @staticmethod
    def _prune(node: _Node[T], path: list[tuple[_Node[T], str]]) -> None:
        if not node.here:
            node.here = None
        if not node.rest:
            node.rest = None
        for parent, token in reversed(path):
            if not node.is_empty():
                return
            if token == _ONE:
                parent.star = None
            else:
                assert parent.children is not None
                del parent.children[token]
                if not parent.children:
                    parent.children = None
            node = parent

    def match(self, subject: str | list[str]) -> list[T]:
        """The items whose pattern matches ``subject`` (a subject or its tokens, not validated).

        The list is a snapshot: filing or unfiling items while going through it is safe.
        """
        tokens = subject.split(".") if isinstance(subject, str) else subject
        found: list[T] = []
        nodes = [self._root]
        for token in tokens:
            following: list[_Node[T]] = []
            for node in nodes:
                if node.rest:  # '>' takes this token and all the ones after it
                    found.extend(node.rest)
                if node.children:
                    child = node.children.get(token)
                    if child is not None:
                        following.append(child)
                if node.star is not None:
                    following.append(node.star)
            if not following:
                return found
            nodes = following
        for node in nodes:
            if node.here:
                found.extend(node.here)
        return found
