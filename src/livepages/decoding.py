"""What a msgspec decoder raises for bytes it cannot decode.

``msgspec.DecodeError`` for malformed data, but ``UnicodeDecodeError`` for a string
that is not valid UTF-8 (in JSON and msgpack alike), which is not a ``DecodeError``.
Every decoder of outside bytes catches both, through this one tuple.
"""

from __future__ import annotations

import msgspec

__all__ = ["DECODE_ERRORS"]

#: ``except DECODE_ERRORS:`` around any msgspec ``decode`` of bytes from outside.
DECODE_ERRORS: tuple[type[Exception], ...] = (msgspec.DecodeError, UnicodeDecodeError)
