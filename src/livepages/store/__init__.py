"""The reactive store: typed records whose changes re-render the pages that read them.

``Store`` holds ``Collection``\\ s of dataclasses or msgspec Structs, in SQLite by
default; ``store.transaction()`` groups writes, which commit atomically or raise
``StoreConflict``. See ``docs/store.md``.
"""

from livepages.store.backend import Check, Key, Row, Scalar, Scan, StoreBackend, Write
from livepages.store.changes import StoreChanges
from livepages.store.collection import Collection, Entry
from livepages.store.errors import CorruptRecord, StoreConflict, StoreError, StoreUnavailable
from livepages.store.sqlite import SQLiteBackend
from livepages.store.store import Store
from livepages.store.transaction import Transaction

__all__ = [
    "Check",
    "Collection",
    "CorruptRecord",
    "Entry",
    "Key",
    "Row",
    "SQLiteBackend",
    "Scalar",
    "Scan",
    "Store",
    "StoreBackend",
    "StoreChanges",
    "StoreConflict",
    "StoreError",
    "StoreUnavailable",
    "Transaction",
    "Write",
]
