from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.classifieds.record import Write, WriteKind
from benchmarks.classifieds.users import TOKEN
from benchmarks.classifieds.verify import missing_writes
from livepages import Store

pytestmark = pytest.mark.anyio


@dataclass
class Note:
    id: int
    texts: list[str]


async def test_writes_whose_token_the_store_holds_are_not_missing(tmp_path: Path) -> None:
    database = tmp_path / "data.db"
    store = Store(database)
    notes = store.collection("notes", Note)
    await notes.insert(Note(1, ["Lamp ltk0001n00001", "Is it there? ltk0002n00001"]))
    await notes.insert(Note(2, ["Sofa ltk0003n00001"]))
    await store.close()
    writes = [
        Write(WriteKind.LISTING, "ltk0001n00001"),
        Write(WriteKind.MESSAGE, "ltk0002n00001"),
        Write(WriteKind.LISTING, "ltk0003n00001"),
        Write(WriteKind.MESSAGE, "ltk0002n00002"),  # acknowledged, never stored
    ]
    assert missing_writes(database, writes, TOKEN) == [writes[3]]


def test_without_a_database_every_write_is_missing(tmp_path: Path) -> None:
    writes = [Write(WriteKind.LISTING, "ltk0001n00001")]
    assert missing_writes(tmp_path / "none.db", writes, TOKEN) == writes
    assert not (tmp_path / "none.db").exists()
