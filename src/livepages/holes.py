"""Holes: one render for many viewers, with a hole wherever a viewer's own text goes.

A page whose render takes the ``Session`` or the ``Tab`` looks different to each
viewer, but usually only in a few printed values: the viewer's name in the
header, their own search text in an input. livepages renders such a page once
per change for everyone, with stand-ins for those parameters:

- reading an attribute or an item of a stand-in (``session.data.name``,
  ``tab.state["q"]``, ``tab.state.get("q", "")``) is a :class:`Read`, answered by
  the kind of value the viewers have there (:class:`Kind`);
- a read whose value is text and that the render only prints through HTML
  escaping (``{{ session.data.name }}`` with autoescape, ``escape(name)``) leaves
  a marker in the output, a hole; each viewer's stream gets the shared bytes with
  its own escaped text filled in (:class:`Template`);
- a read used any other way (a condition, a comparison, a filter, a dict key,
  ``str()``) gets the real value, and viewers are grouped by it: one render per
  group, so a page that branches on ``session.is_guest`` renders twice per change.

What a viewer sees is what a render of its own would have shown; the engine
checks each new shared result against one real render (``livepages.personal``),
and a printed value that did not survive as a hole becomes a grouping value.
"""

from __future__ import annotations

import enum
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from markupsafe import escape

__all__ = ["Kind", "NeedsValue", "Probe", "Read", "Template", "kind_of", "new_nonce"]


class Kind(enum.Enum):
    """How one read is answered in a shared render."""

    #: Text printed through escaping: a hole, filled per viewer.
    TEXT = "text"
    #: An object whose own attributes or items are read: a stand-in.
    PROXY = "proxy"
    #: Anything else, or a value used in logic: the real value; viewers group by it.
    FIXED = "fixed"


class StepKind(enum.Enum):
    """One step of a read: ``.name``, ``[key]`` or ``.get(key, default)``."""

    ATTR = "attr"
    ITEM = "item"
    GET = "get"


@dataclass(frozen=True, slots=True)
class Read:
    """A path from a render parameter to a value: ``session`` then ``.data`` then ``.name``."""

    root: str
    steps: tuple[tuple[StepKind, Any], ...] = ()

    def child(self, kind: StepKind, key: Any) -> Read:
        """The read one step further."""
        return Read(self.root, (*self.steps, (kind, key)))

    def resolve(self, args: Mapping[str, Any]) -> Any:
        """The value this read finds in one viewer's arguments (raising as a render would)."""
        value = args[self.root]
        for kind, key in self.steps:
            if kind is StepKind.ATTR:
                value = getattr(value, key)
            elif kind is StepKind.ITEM:
                value = value[key]
            else:
                value = value.get(*key)
        return value

    def __str__(self) -> str:
        text = self.root
        for kind, key in self.steps:
            if kind is StepKind.ATTR:
                text += f".{key}"
            elif kind is StepKind.ITEM:
                text += f"[{key!r}]"
            else:
                text += f".get({', '.join(map(repr, key))})"
        return text


class Missing:
    """The grouping value of a read that fails for a viewer (an absent key, say)."""

    __slots__ = ("error",)

    def __init__(self, error: type[BaseException]) -> None:
        self.error = error

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Missing) and other.error is self.error

    def __hash__(self) -> int:
        return hash(self.error)


_LOOKUP_ERRORS = (AttributeError, KeyError, IndexError, TypeError)
#: Values a stand-in may represent: the session, the tab, dataclasses, dicts, structs.
_PRIMITIVES = (str, bytes, int, float, complex, bool, type(None), list, tuple, set, frozenset)


def kind_of(value: Any) -> Kind:
    """How a viewer's value is answered in the shared render, before any use is seen.

    Text becomes a hole, unless it is empty or holds a line break: those change how
    the event around them is split into lines, so they are rendered as they are.
    """
    if isinstance(value, Missing):
        return Kind.FIXED
    if type(value) is str:
        return Kind.TEXT if value and "\n" not in value and "\r" not in value else Kind.FIXED
    if isinstance(value, _PRIMITIVES) or callable(value):
        return Kind.FIXED
    return Kind.PROXY


def value_of(read: Read, args: Mapping[str, Any]) -> Any:
    """``read.resolve(args)``, or :class:`Missing` where a render would have failed."""
    try:
        return read.resolve(args)
    except _LOOKUP_ERRORS as exc:
        return Missing(type(exc))


class NeedsValue(BaseException):
    """A stand-in was used in a way that needs its real value: render again, grouped.

    A ``BaseException``, so that a render's own ``except Exception`` cannot swallow it
    (the probe also records it, in case something does).
    """

    def __init__(self, read: Read) -> None:
        super().__init__(str(read))
        self.read = read


def new_nonce() -> str:
    """A random marker prefix: page text cannot forge a hole it does not know. Its
    fixed letters make every change of case (``upper``, ``lower``, ``title``,
    ``capitalize``, ``swapcase``) change it, so a hole changed so is noticed."""
    return "Lp" + "".join(secrets.choice(string.ascii_letters) for _ in range(10)) + "Q"


class Probe:
    """One shared render's stand-ins: hands them out and records how they were used.

    ``kinds`` is what is known of the page's reads; ``args`` are the real values of
    the group's first viewer, which every viewer of the group shares for its
    ``FIXED`` reads.
    """

    def __init__(self, nonce: str, kinds: Mapping[Read, Kind], args: Mapping[str, Any]) -> None:
        self.nonce = nonce
        self.kinds = kinds
        self.args = args
        #: The read behind each hole, by its number in the output.
        self.holes: list[Read] = []
        #: Reads seen for the first time, with the kind the group's value has.
        self.discovered: dict[Read, Kind] = {}
        #: Reads whose real value the render needed: they become ``FIXED``.
        self.needed: set[Read] = set()
        #: Every read answered by a stand-in or a hole in this render.
        self.stood_in: set[Read] = set()

    def answer(self, read: Read) -> Any:
        """What the render gets for ``read``: a hole, a stand-in, or the real value."""
        kind = self.kinds.get(read)
        if kind is None:
            kind = self.discovered[read] = kind_of(value_of(read, self.args))
        if kind is Kind.FIXED:
            return read.resolve(self.args)  # raising where the viewer's render would
        self.stood_in.add(read)
        if kind is Kind.TEXT:
            return _Text(self, read)
        return _StandIn(self, read)

    def need(self, read: Read) -> NoReturn:
        """The render needs the real value of ``read``."""
        self.needed.add(read)
        raise NeedsValue(read)

    def hole(self, read: Read) -> str:
        """A marker for ``read``'s escaped text, where the render prints it."""
        self.holes.append(read)
        return f"\x1e{self.nonce}{len(self.holes) - 1}\x1e"

    @property
    def learned(self) -> bool:
        """Whether this render taught anything new: it must then be done again."""
        return bool(self.discovered or self.needed)


# -- stand-ins ------------------------------------------------------------------------

#: Methods a stand-in keeps: object machinery that says nothing about the value.
_KEPT = frozenset(
    {
        "__class__",
        "__delattr__",
        "__dir__",
        "__getattribute__",
        "__getattr__",
        "__getitem__",
        "__getnewargs__",
        "__getstate__",
        "__init__",
        "__init_subclass__",
        "__new__",
        "__reduce__",
        "__reduce_ex__",
        "__setattr__",
        "__sizeof__",
        "__subclasshook__",
        "__html__",
        "get",
    }
)
#: What else an object may be asked: each needs the real value.
_OPERATIONS = (
    "__bool__",
    "__len__",
    "__iter__",
    "__reversed__",
    "__contains__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__hash__",
    "__str__",
    "__repr__",
    "__format__",
    "__call__",
    "__int__",
    "__float__",
    "__index__",
    "__complex__",
    "__round__",
    "__neg__",
    "__pos__",
    "__abs__",
    "__invert__",
    "__add__",
    "__radd__",
    "__sub__",
    "__rsub__",
    "__mul__",
    "__rmul__",
    "__truediv__",
    "__rtruediv__",
    "__floordiv__",
    "__rfloordiv__",
    "__mod__",
    "__rmod__",
    "__pow__",
    "__rpow__",
    "__and__",
    "__rand__",
    "__or__",
    "__ror__",
    "__xor__",
    "__rxor__",
    "__bytes__",
    "__fspath__",
    "__enter__",
    "__exit__",
    "__await__",
    "__aiter__",
)


def _need(stand_in: Any) -> NoReturn:
    """The render used ``stand_in`` in a way that needs its real value."""
    probe: Probe = object.__getattribute__(stand_in, "_lp_probe")
    probe.need(object.__getattribute__(stand_in, "_lp_read"))


def _needing(name: str) -> Any:
    def operation(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _need(self)

    operation.__name__ = name
    return operation


class _StandIn:
    """Stands in for an object: its attributes and items are reads of their own."""

    def __init__(self, probe: Probe, read: Read) -> None:
        object.__setattr__(self, "_lp_probe", probe)
        object.__setattr__(self, "_lp_read", read)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._step(StepKind.ATTR, name)

    def __getitem__(self, key: Any) -> Any:
        return self._step(StepKind.ITEM, key)

    def get(self, key: Any, default: Any = None) -> Any:
        """``mapping.get(key, default)``, a read of its own."""
        return self._step(StepKind.GET, (key, default))

    def __html__(self) -> NoReturn:  # printing an object: its text is its own business
        _need(self)

    def _step(self, kind: StepKind, key: Any) -> Any:
        probe: Probe = object.__getattribute__(self, "_lp_probe")
        read: Read = object.__getattribute__(self, "_lp_read")
        try:
            hash(key)
        except TypeError:
            probe.need(read)
        return probe.answer(read.child(kind, key))

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        _need(self)

    __setitem__ = __delitem__ = __setattr__


class _Text(str):
    """Stands in for text: printed through escaping it is a hole; used otherwise, the
    render needs its value. Its own characters are a marker that must not reach the
    output (text printed without escaping, or escaped after other changes)."""

    _lp_probe: Probe
    _lp_read: Read

    def __new__(cls, probe: Probe, read: Read) -> _Text:
        text = super().__new__(cls, f"\x1e{probe.nonce}r\x1e")
        object.__setattr__(text, "_lp_probe", probe)
        object.__setattr__(text, "_lp_read", read)
        return text

    def __html__(self) -> str:
        return self._lp_probe.hole(self._lp_read)

    def __bool__(self) -> bool:
        return True  # every viewer of the group has text here, and none has ""


for _name in _OPERATIONS:
    setattr(_StandIn, _name, _needing(_name))
# Text: every method of ``str`` too (slicing included), all but ``__html__``.
for _name in {*_OPERATIONS, "__getitem__", *(n for n in dir(str) if callable(getattr(str, n)))}:
    if _name == "__getitem__" or _name not in _KEPT | {"__bool__"}:
        setattr(_Text, _name, _needing(_name))
del _name


# -- templates ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Template:
    """A shared render's encoded event, cut at its holes, filled per viewer."""

    #: The event with its markers: equal payloads mean an unchanged render.
    payload: bytes
    #: The bytes between the holes (one more than the holes).
    pieces: tuple[bytes, ...]
    #: The distinct reads that fill the holes, and which one fills each hole.
    reads: tuple[Read, ...]
    slots: tuple[int, ...]

    @classmethod
    def cut(cls, payload: bytes, probe: Probe) -> Template | set[Read]:
        """The template of ``payload``; or the reads whose holes did not come out as
        they were made (changed, cut, repeated, or printed unescaped), which must be
        rendered with their values."""
        nonce = re.escape(probe.nonce.encode())
        parts = re.split(b"\x1e" + nonce + b"(\\d+|r)\x1e", payload)
        pieces, numbers = tuple(parts[0::2]), parts[1::2]
        wanted = list(range(len(probe.holes)))
        if [int(n) if n.isdigit() else -1 for n in numbers] == wanted and not any(
            probe.nonce.encode() in piece for piece in pieces
        ):
            reads = tuple(dict.fromkeys(probe.holes))
            index = {read: i for i, read in enumerate(reads)}
            return cls(payload, pieces, reads, tuple(index[r] for r in probe.holes))
        # Something happened to a hole: every text read of this render gets its value.
        return {
            r for r in probe.stood_in if probe.kinds.get(r, probe.discovered.get(r)) is Kind.TEXT
        }

    def values(self, args: Mapping[str, Any]) -> tuple[bytes, ...]:
        """One viewer's escaped text for each read, encoded."""
        return tuple(str(escape(read.resolve(args))).encode() for read in self.reads)

    def fill(self, values: tuple[bytes, ...]) -> bytes:
        """The event one viewer gets."""
        if not self.slots:
            return self.payload
        pieces, slots = self.pieces, self.slots
        parts = [pieces[0]]
        for i, slot in enumerate(slots):
            parts.append(values[slot])
            parts.append(pieces[i + 1])
        return b"".join(parts)
