"""Reading the signals that Datastar sends with every request.

Datastar puts the page's signals in the ``datastar`` query parameter for GET
and DELETE requests and in a JSON body for every other method.
``read_signals`` reads them under limits (size, nesting depth, time) and
optionally decodes them into a dataclass or msgspec Struct, raising an HTTP
error that says what was wrong: ``SignalsError`` (400) for anything that does
not decode, ``PayloadTooLarge`` (413) or ``RequestTimeout`` (408).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable
from itertools import accumulate
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.types import Message, Receive

from livepages.decoding import DECODE_ERRORS
from livepages.errors import BadRequest, HTTPError, PayloadTooLarge, RequestTimeout

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_SIGNALS_DEPTH",
    "DEFAULT_MAX_SIGNALS_SIZE",
    "DEFAULT_READ_TIMEOUT",
    "SignalsError",
    "check_length",
    "decode_signals",
    "limited_receive",
    "query_signals",
    "raw_signals",
    "read_body",
    "read_signals",
]

#: Bytes of signals (JSON body or ``datastar`` query parameter) read at most.
DEFAULT_MAX_SIGNALS_SIZE = 1024 * 1024
#: Arrays and objects nested deeper than this are refused before decoding.
DEFAULT_MAX_SIGNALS_DEPTH = 64
#: Seconds a body may stall between two pieces.
DEFAULT_READ_TIMEOUT = 30.0
#: Seconds the whole body may take, however steadily it trickles in.
DEFAULT_BODY_TIMEOUT = 60.0
QUERY_METHODS = frozenset(("GET", "DELETE", "HEAD"))

T = TypeVar("T")


class SignalsError(HTTPError):
    """The request's signals could not be read: 400 (bad JSON, wrong types) or 413."""

    status = 400


def check_length(request: Request, max_size: int) -> None:
    """Refuse a declared ``Content-Length`` over ``max_size`` (413) or malformed (400)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("invalid Content-Length header")
        if int(declared) > max_size:
            raise PayloadTooLarge(f"request body is larger than {max_size} bytes")


def limited_receive(
    receive: Receive,
    max_size: int,
    *,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    body_timeout: float | None = DEFAULT_BODY_TIMEOUT,
) -> Receive:
    """``receive`` that refuses a body over ``max_size`` (413) or one that is too slow (408).

    ``read_timeout`` bounds the wait for each piece of the body and
    ``body_timeout`` the whole body, counted from this call: a client that stops
    sending, or trickles a byte now and then, cannot hold a worker for longer.
    ``None`` turns a timeout off. Every body livepages reads (signals, forms,
    uploads) goes through here.
    """
    seen = 0
    deadline = None if body_timeout is None else time.monotonic() + body_timeout

    async def limited() -> Message:
        nonlocal seen
        message = await _in_time(receive(), read_timeout, deadline, body_timeout)
        seen += len(message.get("body", b""))
        if seen > max_size:
            raise PayloadTooLarge(f"request body is larger than {max_size} bytes")
        return message

    return limited


async def _in_time(
    waiting: Awaitable[Message], gap: float | None, deadline: float | None, total: float | None
) -> Message:
    """Await a piece of the body for ``gap`` seconds at most, and not past ``deadline``."""
    left = None if deadline is None else deadline - time.monotonic()
    by_total = left is not None and (gap is None or left < gap)
    try:
        return await asyncio.wait_for(waiting, left if by_total else gap)
    except TimeoutError:
        reason = f"took longer than {total} s" if by_total else f"stalled for {gap} s"
        raise RequestTimeout(f"the request body {reason}") from None


async def read_body(
    request: Request,
    max_size: int,
    *,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    body_timeout: float | None = DEFAULT_BODY_TIMEOUT,
) -> bytes:
    """Read the whole body under the limits of ``limited_receive`` (413, 408).

    A declared ``Content-Length`` over the limit is refused before reading. A
    client that disconnects raises Starlette's ``ClientDisconnect``.
    """
    check_length(request, max_size)
    receive = limited_receive(
        request.receive, max_size, read_timeout=read_timeout, body_timeout=body_timeout
    )
    return await Request(request.scope, receive).body()


def query_signals(request: Request) -> bytes:
    """The ``datastar`` query parameter as bytes, percent-decoded but not yet text.

    Kept as bytes so that invalid UTF-8 is refused by ``decode_signals`` instead
    of being replaced silently; ``b""`` when absent, the last one when repeated.
    """
    query = request.scope.get("query_string", b"").decode("latin-1")
    found = ""
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="latin-1"):
        if name == "datastar":
            found = value
    return found.encode("latin-1")


async def raw_signals(
    request: Request,
    *,
    max_size: int = DEFAULT_MAX_SIGNALS_SIZE,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    body_timeout: float | None = DEFAULT_BODY_TIMEOUT,
) -> bytes:
    """The undecoded signals: the ``datastar`` query parameter of a GET, HEAD or
    DELETE, the body of any other method, under the same limits as ``read_body``."""
    if request.method in QUERY_METHODS:
        raw = query_signals(request)
        if len(raw) > max_size:
            raise PayloadTooLarge(f"signals are larger than {max_size} bytes")
        return raw
    return await read_body(request, max_size, read_timeout=read_timeout, body_timeout=body_timeout)


# A JSON string, escapes included, or the unterminated rest of the input. It
# always matches where a quote starts (so the scan stays linear) and its loop
# cannot backtrack: the two branches start with different bytes.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))


def _check_depth(raw: bytes, max_depth: int) -> None:
    """Refuse JSON whose arrays and objects nest deeper than ``max_depth``.

    A linear scan in C-speed steps (regex, translate, accumulate), run before
    the decoder, which recurses once per level and would exhaust the stack.
    """
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return  # too few brackets to nest that deep, strings or not
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > max_depth:
        raise SignalsError(f"signals are nested deeper than {max_depth} levels")


def _utf8(raw: bytes | str) -> bytes:
    """``raw`` as UTF-8 bytes: 400 unless it is valid UTF-8 (JSON has no other encoding)."""
    try:
        if isinstance(raw, str):
            return raw.encode("utf-8")
        raw.decode("utf-8")  # checked whole, so no string or key escapes the check
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise SignalsError("signals are not valid JSON: not UTF-8 text") from None
    return raw


@overload
def decode_signals(
    raw: bytes | str, into: None = None, *, max_depth: int = DEFAULT_MAX_SIGNALS_DEPTH
) -> dict[str, Any]: ...
@overload
def decode_signals(
    raw: bytes | str, into: type[T], *, max_depth: int = DEFAULT_MAX_SIGNALS_DEPTH
) -> T: ...
def decode_signals(
    raw: bytes | str, into: type[T] | None = None, *, max_depth: int = DEFAULT_MAX_SIGNALS_DEPTH
) -> T | dict[str, Any]:
    """Decode signal JSON, into a type when one is given.

    Empty input means no signals. The top level must be a JSON object. Input
    that is not UTF-8, nests arrays and objects deeper than ``max_depth``, is
    not JSON or does not fit ``into`` raises ``SignalsError`` (400).
    """
    data = _utf8(raw)
    if not data.strip():
        data = b"{}"
    _check_depth(data, max_depth)
    try:
        if into is None:
            value = msgspec.json.decode(data)
            if not isinstance(value, dict):
                raise SignalsError("signals must be a JSON object")
            return value
        return msgspec.json.decode(data, type=into)
    except msgspec.ValidationError as exc:
        raise SignalsError(f"invalid signals: {exc}") from None
    except DECODE_ERRORS as exc:
        raise SignalsError(f"signals are not valid JSON: {exc}") from None


@overload
async def read_signals(
    request: Request,
    into: None = None,
    *,
    max_size: int = DEFAULT_MAX_SIGNALS_SIZE,
    max_depth: int = DEFAULT_MAX_SIGNALS_DEPTH,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    body_timeout: float | None = DEFAULT_BODY_TIMEOUT,
) -> dict[str, Any]: ...
@overload
async def read_signals(
    request: Request,
    into: type[T],
    *,
    max_size: int = DEFAULT_MAX_SIGNALS_SIZE,
    max_depth: int = DEFAULT_MAX_SIGNALS_DEPTH,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    body_timeout: float | None = DEFAULT_BODY_TIMEOUT,
) -> T: ...
async def read_signals(
    request: Request,
    into: type[T] | None = None,
    *,
    max_size: int = DEFAULT_MAX_SIGNALS_SIZE,
    max_depth: int = DEFAULT_MAX_SIGNALS_DEPTH,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    body_timeout: float | None = DEFAULT_BODY_TIMEOUT,
) -> T | dict[str, Any]:
    """Read the signals of a Datastar request.

    GET, HEAD and DELETE read the ``datastar`` query parameter (absent means no
    signals); other methods read the JSON body. ``into`` decodes into a
    dataclass, msgspec Struct or any type msgspec understands. Raises
    ``SignalsError`` (400) for input that is not UTF-8 (whatever charset the
    content type names), nests deeper than ``max_depth`` levels, is not a JSON
    object or has wrong types; ``PayloadTooLarge`` (413) over ``max_size``
    bytes; ``RequestTimeout`` (408) when the body stalls for ``read_timeout``
    seconds or takes longer than ``body_timeout`` in all.
    """
    raw = await raw_signals(
        request, max_size=max_size, read_timeout=read_timeout, body_timeout=body_timeout
    )
    return decode_signals(raw, into, max_depth=max_depth)
