"""Where tab state lives when the process is not alone: the ``TabStore`` protocol.

With one process a tab's ``state`` is a dict in the registry and nothing here is
used. With many (``livepages.tabs.nats``), an action that lands on another
process than the tab's stream must see and change the same state, and a page that
reconnects to another process after a restart must find it. The store keeps each
tab's state as msgpack bytes under its tab id, with a revision: a write names the
revision it read, so two processes never write over each other blindly.

Also here: the state's encoding, the merge of a write that lost a race, and the
small message that tells the tab's stream what its state became.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import msgspec

from livepages.decoding import DECODE_ERRORS

__all__ = [
    "TabConflict",
    "TabEntry",
    "TabStore",
    "TabStoreError",
    "TabUpdate",
    "decode_state",
    "encode_state",
    "merge_state",
]


class TabStoreError(Exception):
    """The tab store cannot be reached or answered something unreadable (a 503)."""


class TabConflict(TabStoreError):
    """A write named a revision that is no longer the tab's latest."""


class TabEntry(NamedTuple):
    """A tab's stored state (msgpack of a dict) and its revision."""

    state: bytes
    revision: int


class TabStore(Protocol):
    """Tab state shared by every process of an app; entries expire after the grace period.

    Implement it to keep tab state elsewhere (``App(tab_store=...)``); ``NATSTabStore``
    is the one livepages ships.
    """

    async def start(self) -> None:
        """Connect; called at app start-up. Idempotent."""

    async def get(self, tab_id: str) -> TabEntry | None:
        """The tab's state and revision, or ``None`` if it has none (or it expired)."""

    async def put(self, tab_id: str, state: bytes, revision: int) -> int:
        """Write ``state`` over ``revision`` (0: the tab has none yet); the new revision.

        :class:`TabConflict` if the tab is at another revision by now.
        """

    async def close(self) -> None:
        """Disconnect; called at app shutdown."""


class TabUpdate(msgspec.Struct, frozen=True, array_like=True):
    """What a tab refresh carries when the action changed the tab's stored state:
    the new revision and state, so the stream's process need not read the store."""

    revision: int
    state: bytes


_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(dict[str, Any])
_update_decoder = msgspec.msgpack.Decoder(TabUpdate)


def encode_state(state: dict[str, Any]) -> bytes:
    """``state`` as msgpack; ``TypeError`` naming the problem if a value cannot be stored."""
    try:
        return _encoder.encode(state)
    except (TypeError, msgspec.EncodeError) as error:
        raise TypeError(
            f"tab.state must hold msgpack values (str, int, float, bool, None, lists, "
            f"dicts, dataclasses...) when tabs are shared between processes: {error}"
        ) from error


def decode_state(data: bytes) -> dict[str, Any]:
    """Stored state back as a dict; :class:`TabStoreError` if it is not one."""
    try:
        return _state_decoder.decode(data)
    except DECODE_ERRORS as error:
        raise TabStoreError(f"unreadable tab state: {error}") from error


def encode_update(update: TabUpdate) -> bytes:
    """A tab refresh's payload."""
    return _encoder.encode(update)


def decode_update(data: bytes) -> TabUpdate | None:
    """A tab refresh's payload; ``None`` if it carries none or is malformed."""
    if not data:
        return None
    try:
        return _update_decoder.decode(data)
    except DECODE_ERRORS:
        return None


def merge_state(
    base: dict[str, Any], mine: dict[str, Any], theirs: dict[str, Any]
) -> dict[str, Any]:
    """``theirs`` with the keys that changed from ``base`` to ``mine`` applied on top.

    Used when a write lost a race: the other process's changes are kept, and so are
    this one's, key by key; where both changed one key, this write (the later) wins.
    """
    merged = dict(theirs)
    for key in base.keys() | mine.keys():
        if key not in mine:
            if key in base:
                merged.pop(key, None)  # deleted here
        elif key not in base or _encoder.encode(base[key]) != _encoder.encode(mine[key]):
            merged[key] = mine[key]
    return merged
