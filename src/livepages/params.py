"""Typed URL parameters: parsing text from a URL into values, and back.

A page's annotated fields are its parameters. Each annotation becomes a
``Converter``: built-in types (str, int, float, bool, Enum, UUID, date,
datetime, Decimal and ``X | None``) go through msgspec's lax conversion; any
other type needs a converter given with ``Annotated[T, Converter(parse, format)]``.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import msgspec

from livepages.errors import BadRequest

__all__ = ["Converter", "ParamError", "converter_for"]


class ParamError(BadRequest):
    """A URL parameter did not parse: a 400 that names the parameter."""


@dataclass(frozen=True, slots=True)
class Converter:
    """How one parameter type goes to and from URL text.

    Use it for your own types::

        Slug = Annotated[Slug, Converter(parse=Slug.parse, format=str)]
    """

    parse: Callable[[str], Any]
    format: Callable[[Any], str] = str
    #: How error messages describe a valid value: "... is not <name>".
    name: str = "a valid value"


_BUILTIN = (str, int, float, bool, uuid.UUID, datetime.date, datetime.datetime, decimal.Decimal)


def _format_builtin(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _lax(tp: Any) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return msgspec.convert(text, tp, strict=False)

    return parse


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(str(m.value)) for m in tp)
    names = {int: "an integer", float: "a number", bool: "true or false", uuid.UUID: "a UUID"}
    names |= {datetime.date: "a date (YYYY-MM-DD)", datetime.datetime: "an ISO 8601 datetime"}
    names |= {decimal.Decimal: "a decimal number"}
    return names.get(tp, "a valid " + getattr(tp, "__name__", str(tp)))


def _optional_inner(tp: Any) -> Any | None:
    """``X`` for ``X | None`` or ``Optional[X]``, else None."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def converter_for(annotation: Any) -> Converter:
    """The converter for a parameter annotation; TypeError for unsupported types."""
    if typing.get_origin(annotation) is typing.Annotated:
        for extra in annotation.__metadata__:
            if isinstance(extra, Converter):
                return extra
        annotation = typing.get_args(annotation)[0]
    inner = _optional_inner(annotation)
    if inner is not None:
        base = converter_for(inner)
        return Converter(parse=base.parse, format=base.format, name=base.name)
    is_enum = isinstance(annotation, type) and issubclass(annotation, enum.Enum)
    if annotation is str:
        return Converter(parse=str, format=str, name="a string")
    if annotation in _BUILTIN or is_enum:
        return Converter(_lax(annotation), _format_builtin, _type_name(annotation))
    raise TypeError(
        f"no URL converter for {annotation!r}: use Annotated[T, Converter(parse, format)]"
    )


def parse_param(name: str, text: str, converter: Converter) -> Any:
    """Parse one parameter, raising ``ParamError`` (400) that names it."""
    try:
        return converter.parse(text)
    except (msgspec.ValidationError, ValueError, TypeError, decimal.InvalidOperation):
        raise ParamError(
            f"invalid value for parameter {name!r}: {text!r} is not {converter.name}"
        ) from None
