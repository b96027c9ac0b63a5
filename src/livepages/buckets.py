"""A JetStream KV bucket, bound on first use, on the app's NATS connection or its own.

The NATS-backed stores (sessions, tab state) each keep their data in one bucket.
What they share is here: where the connection comes from, creating the bucket or
binding to it, failing at once while NATS is away, and turning NATS and network
failures into the store's own error. Needs nats-py.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

try:
    import nats
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
    from nats.js.kv import KeyValue
except ImportError as error:  # pragma: no cover - the nats extra is installed in tests
    raise ImportError("the NATS stores need nats-py: pip install 'livepages[nats]'") from error

__all__ = ["Bucket", "Server"]

logger = logging.getLogger("livepages.nats")

#: Where a bucket's connection comes from: a URL (or a cluster's URLs separated by
#: commas) to connect to; a connected client to share; or a function returning the
#: client to share, asked when the bucket is first used (the app's connection, made
#: by its broker at start-up).
Server = str | Client | Callable[[], Client]


class Bucket:
    """One KV bucket, created with ``ttl`` and ``replicas`` if it does not exist yet.

    Errors from NATS or the network come out as ``error(message)``, so each store
    keeps the one exception its callers expect. A connection the bucket makes itself
    gives up its first attempt after ``connect_timeout`` seconds (the next call tries
    again) and, once made, reconnects for as long as it takes; :meth:`close` closes
    it. A shared connection is left open.
    """

    def __init__(
        self,
        server: Server,
        *,
        name: str,
        ttl: float,
        description: str,
        error: type[Exception],
        replicas: int = 1,
        connect_timeout: float = 5.0,
        connection_name: str = "livepages",
    ) -> None:
        self.name = name
        self._url = server if isinstance(server, str) else None
        self._client = server if isinstance(server, Client) else None
        # A shared connection that may not exist yet: asked for on first use.
        self._shared = None if isinstance(server, str | Client) else server
        self._ttl = ttl
        self._description = description
        self._error = error
        self.replicas = replicas
        self._connect_timeout = connect_timeout
        self._connection_name = connection_name
        self._kv: KeyValue | None = None
        self._starting = asyncio.Lock()
        #: The bound bucket's own TTL (it may predate this process): inf if none.
        self.ttl = ttl

    @property
    def client(self) -> Client:
        """The connection, once :meth:`kv` has made or taken it."""
        assert self._client is not None, "the bucket is not bound yet"
        return self._client

    async def kv(self) -> KeyValue:
        """The bound bucket, connecting and creating it on first use."""
        if self._kv is not None:
            self.check_connected()
            return self._kv
        async with self._starting:
            if self._kv is None:
                with self.backend():
                    self._kv = await self._bind()
            return self._kv

    async def close(self) -> None:
        """Forget the bucket; close the connection if the bucket made it."""
        if self._url is not None and self._client is not None:
            # A connection NATS already dropped has nothing left to flush: no error.
            with suppress(nats.errors.Error, OSError):
                await self._client.close()
        self._kv = None

    def check_connected(self) -> None:
        """Fail at once while the connection is reconnecting, rather than after a
        JetStream timeout: the request answers 503 now, as a publish does."""
        if self._client is not None and not self._client.is_connected:
            raise self._error(
                f"NATS KV bucket {self.name!r}: NATS is unreachable (reconnecting), "
                "try again shortly"
            )

    @contextmanager
    def backend(self) -> Iterator[None]:
        """Turn NATS and network failures into the store's error."""
        try:
            yield
        except (nats.errors.Error, OSError) as error:  # OSError covers TimeoutError
            # str() carries what the server said (nats-py's repr of a ServerError is
            # just "ServerError()"); a bare TimeoutError has none, so its repr.
            detail = str(error) or repr(error)
            raise self._error(f"NATS KV bucket {self.name!r}: {detail}") from error

    async def _bind(self) -> KeyValue:
        if self._client is None and self._shared is not None:
            self._client = self._shared()
        if self._client is None:
            assert self._url is not None
            self._client = await asyncio.wait_for(self._connect(self._url), self._connect_timeout)
        js = self._client.jetstream()
        try:
            kv = await js.key_value(self.name)
        except nats.js.errors.BucketNotFoundError:
            # Two processes may race here: creating a stream with the same settings
            # twice succeeds, so both end up bound to one bucket.
            kv = await js.create_key_value(
                bucket=self.name,
                ttl=self._ttl,
                replicas=self.replicas,
                description=self._description,
            )
        ttl = (await kv.status()).ttl
        self.ttl = ttl if ttl else math.inf  # 0 or None: keys never age out
        return kv

    async def _connect(self, url: str) -> Client:
        name = self.name

        async def log_error(error: Exception) -> None:
            logger.warning("NATS KV bucket %r, connection: %r", name, error)

        # Reconnect forever: the store must come back however long NATS was away.
        servers = [server.strip() for server in url.split(",")]  # a cluster: comma-separated
        return await nats.connect(
            servers,
            name=self._connection_name,
            max_reconnect_attempts=-1,
            error_cb=log_error,
        )
