"""The message a commit publishes: which records changed, for every process's views.

It goes out on ``STORE_CHANGED`` (``livepages.protocol``) through the app's broker,
under its subject prefix, once per commit that changed something. It names the
records, not their contents: each process's views read them afresh. ``origin``
is the store that committed, which has re-rendered its own views already.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import ClassVar

from livepages.decoding import JSONMessage
from livepages.store.backend import Key, Write

__all__ = ["StoreChanges"]


class StoreChanges(JSONMessage, frozen=True):
    """Records changed by one commit: the keys written, by collection."""

    what: ClassVar[str] = "store change message"

    origin: str
    changed: dict[str, list[Key]]

    @classmethod
    def of(cls, origin: str, writes: list[Write]) -> StoreChanges:
        """The changes made by ``writes``."""
        changed: dict[str, list[Key]] = {}
        for write in writes:
            changed.setdefault(write.collection, []).append(write.key)
        return cls(origin, changed)

    def dependencies(self) -> Iterator[Hashable]:
        """What a render read that these changes make stale (``livepages.reads``): each
        record, and each collection as a whole (its lists and counts)."""
        for collection, keys in self.changed.items():
            yield (collection, None)
            for key in keys:
                yield (collection, key)
