"""Tab state on NATS JetStream KV: every process of the app sees every tab's state.

One bucket (``livepages_tabs`` by default); each key is a tab id (base64url, a valid
KV key) and holds the tab's state as msgpack; the key's KV revision is the state's
revision. The bucket's TTL is the tab grace period: a tab nobody writes or touches
for that long is forgotten, as a tab without a stream is in one process. The
registry touches the tabs with an open stream (``TabRegistry``), so only tabs that
are gone expire.
"""

from __future__ import annotations

try:
    import nats.js.errors
    from nats.aio.client import Client
except ImportError as error:  # pragma: no cover - the nats extra is installed in tests
    raise ImportError("NATSTabStore needs nats-py: pip install 'livepages[nats]'") from error

from livepages.buckets import Bucket, Server
from livepages.tabs.store import TabConflict, TabEntry, TabStoreError, encode_state

__all__ = ["NATSTabStore"]

_EMPTY = encode_state({})


class NATSTabStore:
    """A :class:`~livepages.tabs.store.TabStore` in a JetStream KV bucket.

    ``server`` is a URL (or a cluster's, comma-separated), a connected client, or a
    function returning the app's shared client (see ``livepages.buckets``). ``grace``
    is the bucket's TTL in seconds, used when this store creates the bucket; an
    existing bucket keeps its own. ``replicas`` is the bucket's replica count.
    """

    def __init__(
        self,
        server: Server = "nats://127.0.0.1:4222",
        *,
        bucket: str = "livepages_tabs",
        grace: float = 60.0,
        replicas: int = 1,
        connect_timeout: float = 5.0,
    ) -> None:
        self._bucket = Bucket(
            server,
            name=bucket,
            ttl=grace,
            replicas=replicas,
            description="livepages tab state",
            error=TabStoreError,
            connect_timeout=connect_timeout,
            connection_name="livepages-tabs",
        )

    @property
    def client(self) -> Client:
        """The store's NATS connection, once :meth:`start` has made or taken it."""
        return self._bucket.client

    async def start(self) -> None:
        """Connect and create or bind the bucket. Idempotent; retried on failure."""
        await self._bucket.kv()

    async def get(self, tab_id: str) -> TabEntry | None:
        """The tab's state and revision, or ``None`` if it has none or it expired."""
        kv = await self._bucket.kv()
        with self._bucket.backend():
            try:
                entry = await kv.get(tab_id)
            except nats.js.errors.KeyNotFoundError as missing:
                if missing.entry is None or missing.entry.revision is None:
                    return None  # never written, or expired
                # Deleted by hand (``nats kv del``): empty, at the marker's revision, so
                # the next write goes over the marker.
                return TabEntry(_EMPTY, missing.entry.revision)
        assert entry.revision is not None  # set on every entry read from the stream
        return TabEntry(entry.value or b"", entry.revision)

    async def put(self, tab_id: str, state: bytes, revision: int) -> int:
        """Write ``state`` over ``revision`` (0: none yet); :class:`TabConflict` if stale."""
        kv = await self._bucket.kv()
        with self._bucket.backend():
            try:
                return await kv.update(tab_id, state, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError as error:
                raise TabConflict(f"tab {tab_id} is at another revision") from error

    async def close(self) -> None:
        """Close the connection if the store made it."""
        await self._bucket.close()
