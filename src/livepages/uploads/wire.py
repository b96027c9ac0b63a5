"""What the upload endpoint reads from the browser: ids, offsets, new-upload requests.

Every value that comes from outside (a path segment, a header, a JSON body, a
signal) is decoded here into a typed value or refused with ``BadRequest``, never
another exception: an upload id is the only thing that reaches a file name, so it
is checked against its one canonical spelling before anything else runs.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Any

import msgspec

from livepages.errors import BadRequest

__all__ = [
    "MAX_NAME",
    "NEW_UPLOAD_SIZE",
    "OFFSET_HEADER",
    "NewUpload",
    "decode_new_upload",
    "new_upload_id",
    "parse_offset",
    "parse_upload_id",
    "upload_ids",
]

#: The request and response header that says where the next bytes go (tus's name).
OFFSET_HEADER = "Upload-Offset"
#: Bytes of a new-upload request read at most (a name, a size and a type).
NEW_UPLOAD_SIZE = 4096
#: Characters of a file name or content type kept at most.
MAX_NAME = 255

_ID_BYTES = 16
#: An upload id as issued: 16 random bytes as 22 base64url characters, nothing else.
_ID = re.compile(r"[A-Za-z0-9_-]{22}")
#: An offset: decimal digits only (no sign, no spaces), short enough to be a file size.
_OFFSET = re.compile(r"[0-9]{1,18}")


def new_upload_id() -> str:
    """A fresh, unguessable upload id."""
    return secrets.token_urlsafe(_ID_BYTES)


def parse_upload_id(text: str) -> str:
    """``text`` if it is an upload id as issued; ``BadRequest`` otherwise."""
    if _ID.fullmatch(text) is None:
        raise BadRequest("malformed upload id")
    return text


def parse_offset(header: str | None) -> int:
    """The ``Upload-Offset`` header as a byte count; ``BadRequest`` if absent or malformed."""
    if header is None or _OFFSET.fullmatch(header) is None:
        raise BadRequest(f"the {OFFSET_HEADER} header must be a byte count")
    return int(header)


class NewUpload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the browser says about a file before sending it."""

    name: str
    size: int
    type: str = ""


def _printable(text: str) -> str:
    """``text`` without control characters, trimmed, not too long."""
    return "".join(c for c in text if unicodedata.category(c)[0] != "C").strip()[:MAX_NAME]


def decode_new_upload(raw: bytes) -> NewUpload:
    """A new-upload request (``{"name", "size", "type"}`` as JSON); ``BadRequest`` if not."""
    try:
        value = msgspec.json.decode(raw, type=NewUpload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadRequest(f"malformed upload request: {exc}") from None
    if value.size < 0:
        raise BadRequest("malformed upload request: a size cannot be negative")
    name = _printable(re.split(r"[/\\]", value.name)[-1]) or "upload"  # no folders
    return NewUpload(name, value.size, _printable(value.type).lower())


def upload_ids(value: Any, field: str) -> list[str]:
    """The upload ids a signal holds (one id or a list of them); ``BadRequest`` if not."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise BadRequest(f"the {field!r} signal must hold upload ids")
    return [parse_upload_id(item) for item in items]
