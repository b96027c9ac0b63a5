"""A JetStream KV bucket, bound on first use, on the app's NATS connection or its own.

The NATS-backed stores (sessions, tab state) and the process registry each keep their
data in one bucket. What they share is here: where the connection comes from (with
the app's credentials and TLS, ``NATSOptions``), creating the bucket with the app's
replicas or binding to it as it is (a replica count that differs is logged), listing
keys, failing at once while NATS is away, and turning NATS and network failures into
the store's own error. Needs nats-py.
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

from livepages.broker.nats import NATSOptions, open_connection

__all__ = ["Bucket", "Server"]

logger = logging.getLogger("livepages.nats")

#: Where a bucket's connection comes from: a URL (or a cluster's URLs separated by
#: commas) or the ``NATSOptions`` of a connection (credentials, TLS) to connect with; a
#: connected client to share; or a function returning the client to share, asked when
#: the bucket is first used (the app's connection, made by its broker at start-up).
Server = str | NATSOptions | Client | Callable[[], Client]


class Bucket:
    """One KV bucket, created with ``ttl`` and ``replicas`` if it does not exist yet.

    Errors from NATS or the network come out as ``error(message)``, so each store
    keeps the one exception its callers expect. A connection the bucket makes itself
    gives up its first attempt after ``connect_timeout`` seconds (the next call tries
    again) and, once made, reconnects for as long as it takes; :meth:`close` closes
    it (from ``NATSOptions``: after their ``timeout``; at once if NATS refuses its TLS
    or credentials). A shared connection is left open.
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
        if isinstance(server, str):
            servers = tuple(url.strip() for url in server.split(",") if url.strip())
            server = NATSOptions(servers, name=connection_name, timeout=connect_timeout)
        self._options = server if isinstance(server, NATSOptions) else None
        self._client = server if isinstance(server, Client) else None
        # A shared connection that may not exist yet: asked for on first use.
        self._shared = None if isinstance(server, NATSOptions | Client) else server
        self._ttl = ttl
        self._description = description
        self._error = error
        self.replicas = replicas
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
        if self._options is not None and self._client is not None:
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
            assert self._options is not None
            self._client = await self._connect(self._options)
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
        status = await kv.status()
        self.ttl = status.ttl if status.ttl else math.inf  # 0 or None: keys never age out
        replicas = status.stream_info.config.num_replicas or 1
        if replicas != self.replicas:
            logger.warning(
                "the KV bucket %r has %d replica(s), not %d: it is used as it is "
                "(change it with `nats kv edit`, or delete it to have it made again)",
                self.name,
                replicas,
                self.replicas,
            )
        return kv

    async def _connect(self, options: NATSOptions) -> Client:
        name = self.name

        async def log_error(error: Exception) -> None:
            logger.warning("NATS KV bucket %r, connection: %r", name, error)

        # Reconnects forever: the store must come back however long NATS was away.
        return await open_connection(options, error_cb=log_error)

    async def live_keys(self, pattern: str) -> list[str]:
        """The keys that match ``pattern`` (``user.*``) and hold a value now.

        Not ``kv.keys()`` or ``kv.watch()``: nats-py may end a watch's initial listing
        (its ``None`` marker) before it has handled the messages already on their way,
        so a listing could miss keys. The stream's subject counts list every key with a
        message (its last may be a delete marker) in one request; a ``get`` of each
        then leaves out the deleted ones.
        """
        kv = await self.kv()
        prefix = f"$KV.{self.name}."
        with self.backend():
            info = await self.client.jetstream().stream_info(
                f"KV_{self.name}", subjects_filter=prefix + pattern
            )
            keys = [subject.removeprefix(prefix) for subject in info.state.subjects or {}]
            found = await asyncio.gather(*(_holds_value(kv, key) for key in keys))
        return [key for key, live in zip(keys, found, strict=True) if live]


async def _holds_value(kv: KeyValue, key: str) -> bool:
    try:
        await kv.get(key)
    except nats.js.errors.KeyNotFoundError:  # deleted or purged (or aged out meanwhile)
        return False
    return True
