"""Typed events: dataclasses with a subject, published through the broker.

::

    @dataclass
    class MessagePosted(Event, subject="chat.{room}"):
        room: str
        text: str

    await app.publish(MessagePosted(room="42", text="hi"))   # subject chat.42

Pages subscribe with ``@on``, binding subject fields to page parameters::

    @on(MessagePosted, room="room")      # this page's self.room
    async def posted(self, event: MessagePosted, sse: SSE) -> None: ...

A field left unbound matches any value. ``TAB`` binds a field to the viewer's tab
id and ``USER`` to the signed-in user's id, so events can address one tab or
one user.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import msgspec

__all__ = ["TAB", "USER", "Binding", "Event", "Handler", "on", "subject_token"]

E = TypeVar("E", bound="Event")
F = TypeVar("F", bound=Callable[..., Any])

HANDLERS_ATTR = "__livepages_handlers__"


class Binding(str):
    """A special subject binding: the viewer's tab or user rather than a page field."""

    __slots__ = ()


#: Bind a subject field to the viewer's tab id: ``@on(Nudge, tab=TAB)``.
TAB = Binding("@tab")
#: Bind a subject field to the signed-in user's id: ``@on(Notified, user=USER)``.
USER = Binding("@user")

# Characters that NATS gives meaning to in a subject, escaped inside one token.
_TOKEN_ESCAPES = str.maketrans({".": "%2E", "*": "%2A", ">": "%3E", " ": "%20", "%": "%25"})


def subject_token(value: Any) -> str:
    """One subject token for a field value; dots and wildcards cannot split or widen it."""
    text = value.value if hasattr(value, "value") and not isinstance(value, str) else value
    token = str(text).translate(_TOKEN_ESCAPES)
    token = "".join(c if c.isprintable() else f"%{ord(c):02X}" for c in token)
    return token or "%00"


class Event:
    """Base class of events. Subclasses are dataclasses (or msgspec Structs) with a subject.

    The subject template names fields in braces: ``subject="chat.{room}"``.
    """

    __subject__: ClassVar[str]
    __subject_fields__: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, subject: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if subject is None:
            subject = getattr(cls, "__subject__", None) or cls.__name__
        fields = tuple(
            name for _, name, _, _ in string.Formatter().parse(subject) if name is not None
        )
        cls.__subject__ = subject
        cls.__subject_fields__ = fields

    @property
    def subject(self) -> str:
        """The concrete subject of this event."""
        return type(self).subject_for({f: getattr(self, f) for f in self.__subject_fields__})

    @classmethod
    def subject_for(cls, values: dict[str, Any]) -> str:
        """The subject (or, with ``*`` for missing values, the pattern) for field values."""
        tokens = {
            name: subject_token(values[name]) if name in values else "*"
            for name in cls.__subject_fields__
        }
        return cls.__subject__.format(**tokens)

    def encode(self) -> bytes:
        """The event as JSON bytes, encoded once per publish."""
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls: type[E], data: bytes) -> E:
        """An event from bytes produced by ``encode``."""
        return msgspec.json.decode(data, type=cls)


@dataclass(frozen=True, slots=True)
class Handler:
    """One ``@on`` subscription of a page method."""

    event: type[Event]
    bindings: dict[str, str]
    method_name: str

    def pattern(self, resolve: Callable[[str], Any]) -> str:
        """The subject pattern for one view; ``resolve`` gives a binding's value."""
        values = {field: resolve(source) for field, source in self.bindings.items()}
        return self.event.subject_for(values)


def on(event: type[Event], /, **bindings: str) -> Callable[[F], F]:
    """Subscribe a page method to ``event``; keyword arguments bind subject fields.

    The method's parameters are injected: the event (by its type), ``SSE`` to
    patch only this view, and the usual ``Request``/``Session``/``Tab``. A method
    that returns without patching anything makes the page re-render; one that
    patches through ``sse`` is a fine-grained update and the page is not re-rendered.
    Put ``@on(...)`` on the page class itself (below ``@app.page``) to re-render
    with no method at all.
    """
    unknown = set(bindings) - set(event.__subject_fields__)
    if unknown:
        raise TypeError(
            f"@on({event.__name__}): {sorted(unknown)} not in subject {event.__subject__!r}"
        )

    def mark(target: F) -> F:
        # On a class (below @app.page) the page just re-renders: no method to call.
        name = "" if isinstance(target, type) else target.__name__
        handlers = list(target.__dict__.get(HANDLERS_ATTR, ()))
        handlers.append(Handler(event, dict(bindings), name))
        setattr(target, HANDLERS_ATTR, handlers)
        return target

    return mark


def handlers_of(cls: type) -> list[tuple[Handler, Callable[..., Any] | None]]:
    """Every ``@on`` subscription of a page class: on its methods, and on the class."""
    found: list[tuple[Handler, Callable[..., Any] | None]] = []
    for klass in reversed(cls.__mro__):
        found += [(handler, None) for handler in klass.__dict__.get(HANDLERS_ATTR, ())]
    for name in dir(cls):
        member = getattr(cls, name, None)
        if not isinstance(member, type):
            found += [(handler, member) for handler in getattr(member, HANDLERS_ATTR, ())]
    return found
