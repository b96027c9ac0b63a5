"""Personal values in templates: what keeps a personal page from sharing its renders.

A page whose render takes the ``Session`` or the ``Tab`` renders once per change
for all its viewers when their values are only printed or tested for being there
(``livepages.personal``). Used any other way (compared, filtered, looped over, passed
to a function), a value splits the viewers into groups, one render each: with one
group per user, that is a render per viewer again. This finds such uses in the
templates of those pages, by the names the page passes its session or tab under.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from jinja2 import nodes

__all__ = ["PersonalUse", "personal_uses"]

#: Filters that leave a printed value a hole: escaping it, or a default for an absent one.
_TRANSPARENT_FILTERS = frozenset({"e", "escape", "default", "d"})


@dataclass(frozen=True, slots=True)
class PersonalUse:
    """One expression that reads a personal value in a way that needs the value itself."""

    line: int
    #: The expression, written out (``session.data.name|upper``).
    text: str


def personal_uses(tree: nodes.Template, names: frozenset[str]) -> list[PersonalUse]:
    """The uses in ``tree`` of the values under ``names`` that split viewers into groups."""
    found: list[PersonalUse] = []
    for node, parents in _walk(tree, ()):
        if _is_read(node, names) and not (parents and _extends(parents[-1], node, names)):
            user = _user(node, parents)
            if user is not None:
                found.append(PersonalUse(node.lineno, _text(user)))
    return found


def _walk(
    node: nodes.Node, parents: tuple[nodes.Node, ...]
) -> Iterator[tuple[nodes.Node, tuple[nodes.Node, ...]]]:
    yield node, parents
    for child in node.iter_child_nodes():
        yield from _walk(child, (*parents, node))


def _is_read(node: nodes.Node, names: frozenset[str]) -> bool:
    """``name``, ``name.a``, ``name['a']``, ``name.a.get('b')`` for a personal ``name``."""
    if isinstance(node, nodes.Name):
        return node.name in names and node.ctx == "load"
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        return _is_read(node.node, names)
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        return node.node.attr == "get" and _is_read(node.node.node, names)
    return False


def _extends(parent: nodes.Node, node: nodes.Node, names: frozenset[str]) -> bool:
    """Whether ``parent`` is a longer read of the same value (``node`` is a step of it)."""
    if isinstance(parent, nodes.Getattr | nodes.Getitem) and parent.node is node:
        return True
    return isinstance(parent, nodes.Call) and parent.node is node and _is_read(parent, names)


def _user(node: nodes.Node, parents: tuple[nodes.Node, ...]) -> nodes.Node | None:
    """The expression that needs the value of ``node``, or None when it is only printed
    (escaped) or tested for being there."""
    if isinstance(node, nodes.Name):
        return node  # the session or tab itself, printed or passed on
    current = node
    for parent in reversed(parents):
        if isinstance(parent, nodes.Output):
            return None
        if isinstance(parent, nodes.If | nodes.CondExpr) and parent.test is current:
            return None
        if isinstance(parent, nodes.Filter) and parent.node is current:
            if parent.name not in _TRANSPARENT_FILTERS:
                return parent
        elif not isinstance(parent, nodes.Not | nodes.And | nodes.Or | nodes.Concat):
            return parent
        current = parent
    return current


def _text(node: nodes.Node) -> str:
    """A short written-out form of an expression, for the finding's message."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_text(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        key = node.arg.value if isinstance(node.arg, nodes.Const) else "..."
        return f"{_text(node.node)}[{key!r}]"
    if isinstance(node, nodes.Filter):
        return f"{_text(node.node) if node.node else '...'}|{node.name}"
    if isinstance(node, nodes.Test):
        return f"{_text(node.node)} is {node.name}"
    if isinstance(node, nodes.Compare):
        return f"{_text(node.expr)} {node.ops[0].op} ..."
    if isinstance(node, nodes.Call):
        return f"{_text(node.node)}(...)"
    if isinstance(node, nodes.For):
        return f"for ... in {_text(node.iter)}"
    return type(node).__name__.lower()
