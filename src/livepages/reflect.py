"""Query fields that mirror signals: the URL follows what the user types.

A page marks a query field with :class:`Reflect`::

    @app.page("/todos")
    class Todos(Page):
        q: Annotated[str, Reflect()] = ""        # ?q=... <-> the signal $q
        done: Annotated[bool, Reflect(push=True)] = False

The field stays an ordinary typed query parameter (parsed and validated on GET,
``Todos(q="milk").url`` checked by mypy); the marker only adds behaviour in the
browser. The document declares the signal with the field's value, and the page's
live element becomes a ``data-effect`` that, whenever a reflected signal changes,

1. writes the new query into the address bar (``history.replaceState``, or
   ``pushState`` for a ``push=True`` field, so Back steps through its values),
   leaving out values equal to the field's default, with no request;
2. reopens the page's stream at the page's path plus the new query, so the server
   parses and validates it exactly as on a GET and renders the new state.

A ``popstate`` listener puts the signals back from the URL, so Back and Forward
restore the state (and the effect reopens the stream). A value the field refuses
(``?n=abc`` for an ``int``) gets the stream refused, as a GET would be; the page
stays as it was until the value is valid again.
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass
from typing import Any

from livepages.expressions import js_string, js_value
from livepages.pages import Page, PageSpec

__all__ = ["Reflect", "Reflection", "reflection"]


@dataclass(frozen=True, slots=True)
class Reflect:
    """Marks a page's query field as mirrored by a signal (``Annotated[T, Reflect()]``).

    ``signal`` names the signal (the field's name by default). ``push`` makes a
    change of this field a new history entry instead of replacing the current one.
    """

    signal: str | None = None
    push: bool = False

    def __post_init__(self) -> None:
        # The name is written into Datastar expressions as ``$name``.
        if self.signal is not None and not (
            self.signal.isidentifier() and self.signal.isascii() and not self.signal[0] == "_"
        ):
            raise ValueError(f"Reflect(signal={self.signal!r}): not a plain signal name")


class Kind(enum.Enum):
    """How a URL's text becomes the signal's value again in the browser."""

    TEXT = "text"
    NUMBER = "number"
    BOOL = "bool"


@dataclass(frozen=True, slots=True)
class Reflected:
    """One reflected field: its query name, its signal, and how it is written."""

    param: str
    signal: str
    push: bool
    kind: Kind
    #: The default's URL text; the parameter is left out of the URL when equal.
    default: str | None


def _marker(annotation: Any) -> Reflect | None:
    if typing.get_origin(annotation) is not typing.Annotated:
        return None
    return next((m for m in annotation.__metadata__ if isinstance(m, Reflect)), None)


def _kind(annotation: Any) -> Kind:
    base = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(base) if a is not type(None)] or [base]
    if args[0] is bool:
        return Kind.BOOL
    if args[0] in (int, float):
        return Kind.NUMBER
    return Kind.TEXT


@dataclass(frozen=True, slots=True)
class Reflection:
    """The reflected fields of one page class, and what its document needs for them."""

    fields: tuple[Reflected, ...]

    def signals(self, page: Page) -> dict[str, Any]:
        """The signals' first values: the page's (validated) field values."""
        spec = type(page).__page_spec__
        out: dict[str, Any] = {}
        for f in self.fields:
            value = getattr(page, f.param)
            if value is None or f.kind is Kind.TEXT:
                value = "" if value is None else spec.converters[f.param].format(value)
            out[f.signal] = value
        return out

    def sync(self) -> str:
        """The statement that writes the signals into the address bar (no request)."""
        # Every signal is read first, unconditionally, so the effect depends on all of them.
        reads = ", ".join(f"${f.signal}" for f in self.fields)
        lines = [f"const v = [{reads}].map(x => x === null ? '' : String(x))"]
        lines.append("const u = new URL(location.href)")
        push = []
        for i, f in enumerate(self.fields):
            name = js_string(f.param)
            default = js_value(f.default if f.default is not None else "")
            # Numbers compare as numbers: Python writes 1.0 where JavaScript writes 1.
            same = f"Number(v[{i}]) === Number({default})" if f.kind is Kind.NUMBER else ""
            same = same or f"v[{i}] === {default}"
            lines.append(
                f"if (v[{i}] === '' || {same}) u.searchParams.delete({name});"
                f" else u.searchParams.set({name}, v[{i}])"
            )
            if f.push:
                push.append(f"u.searchParams.get({name}) !== h.get({name})")
        lines.append("const h = new URL(location.href).searchParams")
        moved = " || ".join(push) or "false"
        lines.append(
            f"if (u.href !== location.href) {{ if ({moved}) history.pushState(null, '', u);"
            " else history.replaceState(null, '', u) }"
        )
        return "; ".join(lines)

    def restore(self) -> str:
        """The ``popstate`` statement that sets the signals from the URL (Back, Forward)."""
        lines = ["const p = new URL(location.href).searchParams"]
        for f in self.fields:
            name = js_string(f.param)
            default = js_value(f.default if f.default is not None else "")
            text = f"(p.get({name}) ?? {default})"
            if f.kind is Kind.NUMBER:
                value = f"({text} === '' ? null : Number({text}))"
            elif f.kind is Kind.BOOL:
                value = f"({text} === 'true')"
            else:
                value = text
            lines.append(f"${f.signal} = {value}")
        return "; ".join(lines)


def reflection(spec: PageSpec) -> Reflection | None:
    """The reflected query fields of a page, or None when it has none.

    ``TypeError`` for a reflected path parameter (the path is not a query).
    """
    fields = []
    for name, annotation in spec.annotations.items():
        marker = _marker(annotation)
        if marker is None:
            continue
        if name not in spec.query_params:
            raise TypeError(f"{spec.cls.__name__}: path parameter {name!r} cannot be reflected")
        default = spec.defaults.get(name)
        text = None if default is None else spec.converters[name].format(default)
        signal = marker.signal or name
        fields.append(Reflected(name, signal, marker.push, _kind(annotation), text))
    return Reflection(tuple(fields)) if fields else None
