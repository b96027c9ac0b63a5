"""Decoding bytes from outside: what msgspec raises, and the app's JSON messages.

msgspec raises ``msgspec.DecodeError`` for malformed data, but ``UnicodeDecodeError`` for
a string that is not valid UTF-8 (in JSON and msgpack alike), which is not a
``DecodeError``. Every decoder of outside bytes catches both, through
:data:`DECODE_ERRORS`. :class:`JSONMessage` is the one ``encode``/``decode`` pair of the
small messages livepages sends itself (through the broker or a control socket).
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

import msgspec

__all__ = ["DECODE_ERRORS", "JSONMessage"]

#: ``except DECODE_ERRORS:`` around any msgspec ``decode`` of bytes from outside.
DECODE_ERRORS: tuple[type[Exception], ...] = (msgspec.DecodeError, UnicodeDecodeError)

M = TypeVar("M", bound="JSONMessage")


class JSONMessage(msgspec.Struct, frozen=True):
    """A message as JSON bytes; :meth:`decode` turns any other bytes into a ``ValueError``
    that says ``not a <what>``."""

    #: What the message is, for the error of bytes that are not one.
    what: ClassVar[str] = "message"

    def encode(self) -> bytes:
        """The message as JSON bytes."""
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls: type[M], data: bytes) -> M:
        """The message in ``data``; ``ValueError`` if ``data`` is not one."""
        try:
            return msgspec.json.decode(data, type=cls)
        except DECODE_ERRORS as exc:
            raise ValueError(f"not a {cls.what}: {exc}") from None
