"""Sessions: sealed cookies holding a random token, records kept server-side.

The pieces: :class:`CookieCodec` seals a :class:`SealedToken` into the cookie,
:func:`session_id` turns the token into the store key, and a :class:`SessionStore`
(:class:`MemorySessionStore` embedded, :class:`SQLiteSessionStore` on disk) keeps
the :class:`SessionRecord`, with revision-checked writes
(:class:`SessionEntry`, :class:`SessionConflict`).
"""

from livepages.sessions.cookie import CookieCodec, SealedToken, generate_key, generate_token
from livepages.sessions.memory import MemorySessionStore
from livepages.sessions.sqlite import SQLiteSessionStore
from livepages.sessions.store import (
    SessionConflict,
    SessionEntry,
    SessionRecord,
    SessionStore,
    SessionStoreError,
    session_id,
)

__all__ = [
    "CookieCodec",
    "MemorySessionStore",
    "SQLiteSessionStore",
    "SealedToken",
    "SessionConflict",
    "SessionEntry",
    "SessionRecord",
    "SessionStore",
    "SessionStoreError",
    "generate_key",
    "generate_token",
    "session_id",
]
