"""``Collection[T]``: typed records of one kind, each under the value of its key field.

Records are dataclasses or msgspec Structs, stored as JSON and decoded into
fresh objects at each read (changing one changes nothing stored until it is
put). Reads made during a live render are recorded (``livepages.reads``): a
record's ``get`` depends on that record, ``all``/``where``/``count`` on the
whole collection.

Each method here is its own transaction; ``Store.transaction()`` groups several.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from livepages.decoding import DECODE_ERRORS
from livepages.reads import record, recording_active
from livepages.store.backend import Check, Key, Row, Scalar, Scan, StoreBackend, Write
from livepages.store.errors import CorruptRecord

__all__ = ["Collection", "Commit", "Entry"]

log = logging.getLogger("livepages.store")

T = TypeVar("T")

#: Commits checks and writes, then tells every view (``Store`` provides it).
Commit = Callable[[Sequence[Check], Sequence[Write]], Awaitable[list[Write]]]

_INT64 = range(-(2**63), 2**63)
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """A record and its version (0 never: an absent record has no entry)."""

    record: T
    version: int


class Collection(Generic[T]):
    """The records of type ``T`` named ``name`` in a store, keyed by the field ``key``.

    Made by ``store.collection(name, T, key="id")``. The key field holds an
    ``int`` (within 64 bits) or a ``str``.
    """

    def __init__(
        self,
        name: str,
        record_type: type[T],
        key: str,
        backend: StoreBackend,
        commit: Commit,
        bound: Callable[[], bool],
    ) -> None:
        if not name:
            raise ValueError("a collection needs a name")
        self.name = name
        self.record_type = record_type
        self.key = key
        self._fields, self._array_like = _fields(record_type)
        self.key_type = _key_type(record_type, self._fields, key)
        self._decoder = msgspec.json.Decoder(record_type)
        self._backend = backend
        self._commit = commit
        self._bound = bound
        self._warned = False

    def __repr__(self) -> str:
        return f"<Collection {self.name!r} of {self.record_type.__name__}>"

    # -- reading ------------------------------------------------------------------------

    async def get(self, key: Key) -> T | None:
        """The record under ``key``, or ``None``."""
        entry = await self.entry(key)
        return None if entry is None else entry.record

    async def entry(self, key: Key) -> Entry[T] | None:
        """The record under ``key`` with its version (for ``put(..., version=...)``)."""
        row = await self.read(key)
        return None if row is None else Entry(self.decode(row.data), row.version)

    async def all(self) -> list[T]:
        """Every record, ordered by key."""
        return await self.where()

    async def where(self, **fields: Scalar) -> list[T]:
        """The records whose fields equal the values given (``done=False``), by key.

        Compared in the database (SQLite: ``json_extract``, which stops at a NUL
        character, so a string containing one matches nothing)."""
        scan = await self.scan(fields)
        return [self.decode(row.data) for row in scan.rows]

    async def count(self, **fields: Scalar) -> int:
        """How many records ``where(**fields)`` would return."""
        return len((await self.scan(fields)).rows)

    async def read(self, key: Key) -> Row | None:
        """The stored row under ``key`` (recorded as a read of that record)."""
        self.check_key(key)
        self._record((self.name, key))
        return await self._backend.read(self.name, key)

    async def scan(self, fields: dict[str, Scalar]) -> Scan:
        """The stored rows that match (recorded as a read of the whole collection)."""
        where = {self._encoded_name(name, value): value for name, value in fields.items()}
        self._record((self.name, None))
        return await self._backend.scan(self.name, where)

    # -- writing ------------------------------------------------------------------------

    async def put(self, record: T, *, version: int | None = None) -> None:
        """Store ``record`` under its key, replacing any record there.

        With ``version`` (from ``entry``), only if the stored record is still at
        that version (0: only if there is none): ``StoreConflict`` otherwise.
        """
        key = self.key_of(record)
        checks = [] if version is None else [Check(self.name, key, version)]
        await self._commit(checks, [Write(self.name, key, self.encode(record))])

    async def insert(self, record: T) -> None:
        """Store a new record; ``StoreConflict`` if its key is taken."""
        await self.put(record, version=0)

    async def delete(self, key: Key, *, version: int | None = None) -> bool:
        """Delete the record under ``key``; whether there was one. With ``version``, only
        if it is still at that version: ``StoreConflict`` otherwise."""
        self.check_key(key)
        checks = [] if version is None else [Check(self.name, key, version)]
        return bool(await self._commit(checks, [Write(self.name, key, None)]))

    async def next_key(self) -> int:
        """A new integer key for a record: never one used before in this collection."""
        if self.key_type is not int:
            raise TypeError(f"{self.name} has {self.key_type.__name__} keys: choose them")
        return await self._backend.next_key(self.name)

    # -- encoding -----------------------------------------------------------------------

    def key_of(self, record: T) -> Key:
        """The key of ``record`` (``TypeError`` if it is not a ``T`` with a valid key)."""
        if not isinstance(record, self.record_type):
            raise TypeError(f"{self.name} holds {self.record_type.__name__}, not {record!r}")
        key: Key = getattr(record, self.key)
        self.check_key(key)
        return key

    def check_key(self, key: object) -> None:
        """``TypeError`` unless ``key`` is of this collection's key type (and fits)."""
        if type(key) is not self.key_type:
            expected = self.key_type.__name__
            raise TypeError(f"{self.name} keys are {expected}, not {type(key).__name__}")
        if isinstance(key, int) and key not in _INT64:
            raise ValueError(f"{self.name} keys must fit in 64 bits, not {key}")

    def encode(self, record: T) -> str:
        """``record`` as the JSON text stored."""
        return msgspec.json.encode(record).decode()

    def decode(self, data: str | bytes) -> T:
        """A stored record (``CorruptRecord`` if ``data`` is not a valid ``T``)."""
        try:
            return self._decoder.decode(data)
        except DECODE_ERRORS as exc:
            raise CorruptRecord(f"a stored {self.name} record does not decode: {exc}") from None

    def _encoded_name(self, name: str, value: object) -> str:
        field = self._fields.get(name)
        if field is None:
            raise TypeError(f"{self.record_type.__name__} has no field {name!r}")
        if self._array_like:
            raise TypeError(f"{self.record_type.__name__} is stored as an array: no field names")
        if not isinstance(value, _SCALARS):
            raise TypeError(f"where {name}=: compare with str, int, float, bool or None")
        return field

    def _record(self, dependency: tuple[str, Key | None]) -> None:
        if not self._warned and not self._bound() and recording_active():
            self._warned = True
            log.warning(
                "%s is read by a live page but its store is not given to an App"
                " (App(store=...)): its changes will not update pages",
                self.name,
            )
        record(dependency)


def _fields(record_type: type[Any]) -> tuple[dict[str, str], bool]:
    """The fields of a dataclass or Struct type (their names, and their names in JSON),
    and whether it is encoded as an array."""
    info = msgspec.inspect.type_info(record_type)
    if not isinstance(info, msgspec.inspect.DataclassType | msgspec.inspect.StructType):
        raise TypeError(f"records are dataclasses or msgspec Structs, not {record_type!r}")
    array_like = isinstance(info, msgspec.inspect.StructType) and info.array_like
    return {field.name: field.encode_name for field in info.fields}, array_like


def _key_type(record_type: type[Any], fields: dict[str, str], key: str) -> type[int] | type[str]:
    """The type of the key field (``int`` or ``str``), checked."""
    if key not in fields:
        raise TypeError(f"{record_type.__name__} has no key field {key!r}")
    info = msgspec.inspect.type_info(record_type)
    assert isinstance(info, msgspec.inspect.DataclassType | msgspec.inspect.StructType)
    field = next(f for f in info.fields if f.name == key)
    if isinstance(field.type, msgspec.inspect.IntType):
        return int
    if isinstance(field.type, msgspec.inspect.StrType):
        return str
    raise TypeError(f"the key field {record_type.__name__}.{key} must be an int or a str")
