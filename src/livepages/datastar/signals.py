"""Reading the signals that Datastar sends with every request.

Datastar puts the page's signals in the ``datastar`` query parameter for GET
and DELETE requests and in a JSON body for every other method.
``read_signals`` reads them, enforces a size limit, and optionally decodes them
into a dataclass or msgspec Struct, raising ``SignalsError`` (an HTTP 400 or
413) with a message that says what was wrong.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, overload

import msgspec
from starlette.requests import Request
from starlette.types import Message, Receive

from livepages.errors import BadRequest, HTTPError, PayloadTooLarge, RequestTimeout

__all__ = [
    "DEFAULT_MAX_SIGNALS_SIZE",
    "SignalsError",
    "check_length",
    "decode_signals",
    "limited_receive",
    "read_body",
    "read_signals",
]

DEFAULT_MAX_SIGNALS_SIZE = 1024 * 1024
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


def limited_receive(receive: Receive, max_size: int, timeout: float | None) -> Receive:
    """``receive`` that refuses a body over ``max_size`` (413) or one that stalls (408).

    ``timeout`` bounds the wait for each piece of the body, so a client that
    trickles or stops sending cannot hold a worker forever.
    """
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except TimeoutError:
            raise RequestTimeout(f"the request body stalled for {timeout} s") from None
        seen += len(message.get("body", b""))
        if seen > max_size:
            raise PayloadTooLarge(f"request body is larger than {max_size} bytes")
        return message

    return limited


async def read_body(request: Request, max_size: int, *, read_timeout: float | None = None) -> bytes:
    """Read the whole body: 413 past ``max_size``, 408 if it stalls ``read_timeout`` s.

    A declared ``Content-Length`` over the limit is refused before reading.
    """
    check_length(request, max_size)
    receive = limited_receive(request.receive, max_size, read_timeout)
    return await Request(request.scope, receive).body()


@overload
def decode_signals(raw: bytes | str, into: None = None) -> dict[str, Any]: ...
@overload
def decode_signals(raw: bytes | str, into: type[T]) -> T: ...
def decode_signals(raw: bytes | str, into: type[T] | None = None) -> T | dict[str, Any]:
    """Decode signal JSON, into a type when one is given.

    Empty input means no signals. The top level must be a JSON object.
    """
    if not raw or (isinstance(raw, bytes | str) and not raw.strip()):
        raw = b"{}"
    try:
        if into is None:
            value = msgspec.json.decode(raw)
            if not isinstance(value, dict):
                raise SignalsError("signals must be a JSON object")
            return value
        return msgspec.json.decode(raw, type=into)
    except msgspec.ValidationError as exc:
        raise SignalsError(f"invalid signals: {exc}") from None
    except msgspec.DecodeError as exc:
        raise SignalsError(f"signals are not valid JSON: {exc}") from None


@overload
async def read_signals(
    request: Request, into: None = None, *, max_size: int = DEFAULT_MAX_SIGNALS_SIZE
) -> dict[str, Any]: ...
@overload
async def read_signals(
    request: Request, into: type[T], *, max_size: int = DEFAULT_MAX_SIGNALS_SIZE
) -> T: ...
async def read_signals(
    request: Request, into: type[T] | None = None, *, max_size: int = DEFAULT_MAX_SIGNALS_SIZE
) -> T | dict[str, Any]:
    """Read the signals of a Datastar request.

    GET, HEAD and DELETE read the ``datastar`` query parameter (absent means no
    signals); other methods read the JSON body, whatever charset parameter its
    content type carries. ``into`` decodes into a dataclass, msgspec Struct or
    any type msgspec understands. Raises ``SignalsError`` (400) for invalid JSON
    or wrong types and ``PayloadTooLarge`` (413) over ``max_size`` bytes.
    """
    if request.method in QUERY_METHODS:
        raw: bytes | str = request.query_params.get("datastar", "")
        if len(raw) > max_size:
            raise PayloadTooLarge(f"signals are larger than {max_size} bytes")
    else:
        raw = await read_body(request, max_size)
    return decode_signals(raw, into)
