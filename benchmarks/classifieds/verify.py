"""Lost writes: the acknowledged writes that the database does not hold at the end.

The app keeps its data in a ``livepages.store`` on SQLite, whose records are JSON
texts in one table. Every write of the load test carries a unique token in its
text (``users.TOKEN``), so the check needs no knowledge of the app's record types:
it reads every record once, after the servers stopped, collects the tokens found,
and returns the acknowledged writes whose token is not among them.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from benchmarks.classifieds.record import Write

__all__ = ["RECORDS", "missing_writes"]

#: The store's table of records (``livepages.store.sqlite``).
RECORDS = "livepages_store_records"


def stored_tokens(database: Path, pattern: re.Pattern[str]) -> set[str]:
    """Every token matching ``pattern`` in the database's records."""
    found: set[str] = set()
    # Read only: the check must not create a database that was never written.
    connect = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    with contextlib.closing(connect) as connection:
        for (data,) in connection.execute(f"SELECT data FROM {RECORDS}"):
            found.update(pattern.findall(str(data)))
    return found


def missing_writes(
    database: Path, writes: Sequence[Write], pattern: re.Pattern[str]
) -> list[Write]:
    """The ``writes`` whose token the database does not hold (all of them when there
    is no database: the app never wrote one)."""
    if not database.exists():
        return list(writes)
    found = stored_tokens(database, pattern)
    return [write for write in writes if write.token not in found]
