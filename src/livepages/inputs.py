"""Reading what an action receives: signals, forms and uploads, query structs.

Datastar sends signals as JSON (anything that does not decode is a 400) or, with
``contentType: 'form'``, a form (urlencoded or multipart; malformed is a 400). A
form that does not validate raises ``ValidationError`` with one message per
field, which the app turns into an ``errors`` signal instead of a failed request.
Every body is read under the limits of the app's settings: over a size it is a
413, too slow a 408.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import typing
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from livepages.datastar.signals import (
    QUERY_METHODS,
    check_length,
    decode_signals,
    limited_receive,
    raw_signals,
)
from livepages.errors import BadRequest, HTTPError, ValidationError
from livepages.params import _optional_inner
from livepages.settings import Settings

__all__ = [
    "decode_fields",
    "is_form",
    "is_signals_type",
    "read_form",
    "read_input",
    "read_query",
]

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
#: Where a request's signals (raw) or form are kept once read.
_INPUT_KEY = "livepages.input"
_MISSING = object()


def is_signals_type(tp: Any) -> bool:
    """Dataclasses and msgspec Structs are decoded from the signals."""
    return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or issubclass(tp, msgspec.Struct))


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_form(request: Request) -> bool:
    """Whether the request body is a form rather than JSON signals."""
    return _media_type(request) in FORM_TYPES


async def read_input(request: Request, settings: Settings, into: Any) -> Any:
    """The signals (or form) of the request, decoded into ``into``.

    The body is read once per request and kept in its scope: several parameters of
    one action (its signals dataclass, its uploads) may each read it.
    """
    wants_dict = into is dict or typing.get_origin(into) is dict
    body = request.scope.get(_INPUT_KEY)
    if body is None:
        body = request.scope[_INPUT_KEY] = await _read_body(request, settings)
    if isinstance(body, FormData):
        values = dict(_form_values(body))
        return values if wants_dict else decode_fields(values, into, lax=True)
    return decode_signals(body, None if wants_dict else into, max_depth=settings.max_signals_depth)


async def _read_body(request: Request, settings: Settings) -> bytes | FormData:
    if request.method not in QUERY_METHODS and is_form(request):
        return await read_form(request, settings)
    return await raw_signals(
        request,
        max_size=settings.max_signals_size,
        read_timeout=settings.read_timeout,
        body_timeout=settings.body_timeout,
    )


async def read_form(request: Request, settings: Settings) -> FormData:
    """Parse the form body under the app's limits (413 past them, 408 if too slow).

    Text that is not valid in the form's charset (UTF-8 unless the content type
    names another) is a 400, like any other malformed form.
    """
    multipart = _media_type(request) == "multipart/form-data"
    limit = settings.max_upload_size if multipart else settings.max_form_size
    check_length(request, limit)
    receive = limited_receive(
        request.receive,
        limit,
        read_timeout=settings.read_timeout,
        body_timeout=settings.body_timeout,
    )
    limited = Request(request.scope, receive)
    try:
        if multipart:
            return await _parse_multipart(limited, settings, limit)
        if is_form(limited):
            _check_urlencoded(await limited.body())
        return await limited.form(max_fields=settings.max_fields, max_part_size=limit)
    except (HTTPError, ClientDisconnect):
        raise
    except Exception as exc:  # the form parsers' errors are the client's fault
        raise BadRequest(f"malformed form: {getattr(exc, 'detail', exc)}") from None


def _check_urlencoded(body: bytes) -> None:
    """400 unless the names and values of an urlencoded body are UTF-8 once unquoted.

    Checked on the whole body: the separators are ASCII, so it is valid exactly
    when every name and value is. (Starlette would replace bad bytes silently.)
    """
    try:
        unquote_to_bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("malformed form: text is not valid UTF-8") from None


async def _parse_multipart(request: Request, settings: Settings, limit: int) -> FormData:
    async with contextlib.aclosing(request.stream()) as stream:
        parser = _StrictMultiPartParser(
            request.headers,
            stream,
            max_files=settings.max_files,
            max_fields=settings.max_fields,
            max_part_size=limit,
        )
        return await parser.parse()


class _StrictMultiPartParser(MultiPartParser):
    """Starlette's multipart parser, refusing names and text fields that are not
    valid in the form's charset instead of reading them as Latin-1."""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._current_part.content_disposition)
        for key in (b"name", b"filename"):
            self._check(options.get(key, b""), f"the {key.decode()} of a part")
        super().on_headers_finished()

    def on_part_end(self) -> None:
        if self._current_part.file is None:
            self._check(self._current_part.data, f"field {self._current_part.field_name!r}")
        super().on_part_end()

    def _check(self, data: bytes | bytearray, what: str) -> None:
        try:
            bytes(data).decode(self._charset)
        except (UnicodeError, LookupError):
            raise MultiPartException(f"{what} is not valid {self._charset}") from None


def _form_values(form: FormData) -> typing.Iterator[tuple[str, Any]]:
    for key in form:
        values = form.getlist(key)
        yield key, values if len(values) > 1 else values[0]


def read_query(request: Request, into: Any) -> Any:
    """Decode the query string into a dataclass or Struct (400 when it does not fit)."""
    values = {k: v if len(v) > 1 else v[0] for k, v in _multi(request).items()}
    try:
        return decode_fields(values, into, lax=True)
    except ValidationError as exc:
        raise BadRequest(f"invalid query: {exc}") from None


def _multi(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


@functools.cache
def _fields(into: Any) -> list[tuple[str, Any, bool, Any]]:
    """(name, type, required, default) for a dataclass or msgspec Struct, read once per type."""
    hints = typing.get_type_hints(into)
    if dataclasses.is_dataclass(into):
        out = []
        for f in dataclasses.fields(into):
            has_default = f.default is not dataclasses.MISSING
            has_factory = f.default_factory is not dataclasses.MISSING
            default = f.default if has_default else _MISSING
            out.append((f.name, hints[f.name], not (has_default or has_factory), default))
        return out
    if isinstance(into, type) and issubclass(into, msgspec.Struct):
        return [
            (f.name, hints[f.name], f.required, _MISSING if f.required else f.default)
            for f in msgspec.structs.fields(into)
        ]
    raise TypeError(f"cannot decode fields into {into!r}")


def field_names(into: Any) -> tuple[str, ...]:
    """The fields of a dataclass or Struct (the keys of its ``errors`` signal); () otherwise."""
    return tuple(name for name, *_ in _fields(into)) if is_signals_type(into) else ()


_FRIENDLY = {
    int: "must be a whole number",
    float: "must be a number",
    bool: "must be true or false",
}


def _message(tp: Any, exc: Exception) -> str:
    base = _optional_inner(tp) or tp
    if base in _FRIENDLY:
        return _FRIENDLY[base]
    return str(exc).split(" - at ", 1)[0]


def _is_upload(tp: Any) -> bool:
    return tp is UploadFile or _optional_inner(tp) is UploadFile


_SEQUENCES = (list, tuple, set, frozenset)


def _browser_value(tp: Any, value: Any) -> Any:
    """Read a form value the way browsers mean it.

    A checked checkbox without a ``value`` sends "on"; a multiple select or a
    group of checkboxes with one item chosen sends a single value, not a list.
    """
    base = _optional_inner(tp) or tp
    if base is bool and value == "on":
        return True
    if typing.get_origin(base) in _SEQUENCES and not isinstance(value, list):
        return [value]
    return value


def decode_fields(values: dict[str, Any], into: Any, *, lax: bool) -> Any:
    """Build ``into`` from text values field by field, collecting every field's error.

    An empty string counts as absent, as browsers send empty inputs; with ``lax``
    (forms, query strings) a checkbox's "on" is true and a single value fills a
    list field. Errors raise ``ValidationError`` with one message per field.
    """
    kwargs: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, tp, required, _default in _fields(into):
        value = values.get(name, _MISSING)
        # Browsers send an empty input as "": it counts as absent, except for an
        # optional str field, where "" is a value.
        if value == "" and (required or tp is not str):
            value = _MISSING
        if value is _MISSING:
            if required:
                errors[name] = "is required"
            continue
        if _is_upload(tp):
            if not isinstance(value, UploadFile):
                errors[name] = "must be a file"
            else:
                kwargs[name] = value
            continue
        if lax:
            value = _browser_value(tp, value)
        try:
            kwargs[name] = msgspec.convert(value, tp, strict=not lax)
        except msgspec.ValidationError as exc:
            errors[name] = _message(tp, exc)
    if errors:
        # Report the cross-field rules too, so a visitor fixes everything in one round.
        raise ValidationError({**_cross_field_errors(into, kwargs), **errors})
    return into(**kwargs)


def _cross_field_errors(into: Any, valid: dict[str, Any]) -> dict[str, str]:
    """The errors ``into.__post_init__`` reports for the fields that did decode.

    Run on an instance holding only those fields: a rule that needs a field that
    failed cannot say anything yet (it raises ``AttributeError``) and is skipped.
    """
    post_init = getattr(into, "__post_init__", None)
    if post_init is None:
        return {}
    try:
        partial = object.__new__(into)
        for name, value in valid.items():
            object.__setattr__(partial, name, value)
        post_init(partial)
    except ValidationError as exc:
        return dict(exc.errors)
    except Exception:  # a rule over a missing field, or a type that cannot be half-built
        return {}
    return {}
