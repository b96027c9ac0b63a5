"""What presence puts on the wire: KV entries and rename notices, with their decoders.

An entry (a NATS KV value) is msgpack: ``[topic, member id, name, user id, named_at]``.
A rename notice (a broker message on ``PRESENCE_RENAME``) is JSON. Both come from
outside the process, so decoding checks every field and turns anything else into a
``ValueError``.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

import msgspec

from livepages.decoding import DECODE_ERRORS, JSONMessage
from livepages.presence.members import MAX_NAME, Member
from livepages.presence.roster import Entry

__all__ = ["MEMBER_ID", "RenameNotice", "decode_entry", "encode_entry"]

#: A member id: ``u`` (a user), ``s`` (a session) or ``t`` (a tab), then 32 hex digits.
MEMBER_ID = r"^[ust][0-9a-f]{32}$"

_MemberId = Annotated[str, msgspec.Meta(pattern=MEMBER_ID)]
_Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]


class _Stored(msgspec.Struct, frozen=True, array_like=True):
    topic: str
    id: _MemberId
    name: _Name
    user_id: str | None
    named_at: float


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Stored).decode


def encode_entry(entry: Entry) -> bytes:
    """The KV value of ``entry``."""
    member = entry.member
    return _encode(_Stored(entry.topic, member.id, member.name, member.user_id, entry.named_at))


def decode_entry(data: bytes) -> Entry:
    """An entry from a KV value; ``ValueError`` if it is not one."""
    try:
        stored = _decode(data)
    except DECODE_ERRORS as exc:
        raise ValueError(f"not a presence entry: {exc}") from None
    if not math.isfinite(stored.named_at):
        raise ValueError("not a presence entry: named_at is not a finite number")
    member = Member(stored.id, stored.name, stored.user_id)
    return Entry(stored.topic, member, stored.named_at)


class RenameNotice(JSONMessage, frozen=True):
    """The message on ``PRESENCE_RENAME``: the member with this id is now called ``name``.

    Every process that holds a stream of the member renames its entries.
    """

    what: ClassVar[str] = "rename notice"

    member: _MemberId
    name: _Name
