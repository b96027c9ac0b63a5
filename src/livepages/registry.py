"""The process registry: every process of an app on NATS, and whether their keys agree.

Processes behind one load balancer must open each other's cookies, CSRF tokens and
tab ids: their secret keys must agree. Each process of an app on NATS registers, in
the KV bucket ``livepages_processes``, an entry with the fingerprints of its keys
(``Keys.fingerprints``: HMACs of a fixed label, never the keys) and renews it every
third of ``Settings.nats_registry_ttl``. An entry not renewed for that many seconds
no longer counts, so a process that died without a word (``kill -9``) stops counting
by then; each entry carries its own TTL and the time of its renewal (the machines'
clocks are compared: keep them synchronised), since the bucket, shared by every app
on the server, keeps keys an hour (``REGISTRY_BUCKET_TTL``), only to clear them away.
A process deletes its entry when it stops.

At start-up a process registers, then reads the entries of the other processes of the
same app (the same ``subject_prefix``) and refuses to start (:class:`StartupRefused`)
if its keys and any one's do not open each other's cookies: each one's current key
must be the other's current key or one of its previous keys. A key rotation during a
rolling deploy therefore takes two steps, each deployed everywhere before the next:

1. add the new key as a previous key (``previous_secret_keys``), keeping the current;
2. make the new key current, the old one previous (and later drop the old one).

Registering before reading means that of two processes with different keys started
at the same moment, at least the second sees the first (both may refuse).

If NATS KV fails under the registry at start-up (a bucket it cannot make, say more
replicas than the cluster has), the process starts, as it does when its session store
cannot start, and logs the error; it registers and checks as soon as it can, and logs
an error if it then finds processes with other keys (it is too late to refuse).

Without ``Settings.secret_key`` a process outside debug mode has a random key of its
own, which no other process can share, so it refuses to start on NATS at all. In debug
mode the development secret (``.livepages/secret``) is shared by the processes started
from one folder, and the fingerprints check the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client

from livepages.broker.nats import NATSBroker
from livepages.buckets import Bucket
from livepages.decoding import DECODE_ERRORS
from livepages.guards import StartupRefused
from livepages.keys import Keys
from livepages.settings import Settings

__all__ = [
    "BUCKET",
    "REGISTRY_BUCKET_TTL",
    "ProcessEntry",
    "ProcessRegistry",
    "RegistryError",
    "compatible",
]

log = logging.getLogger("livepages")

#: The KV bucket of the registry, shared by every app on the NATS server.
BUCKET = "livepages_processes"
#: How long the bucket keeps an entry after its last write: a clean-up, not the check.
REGISTRY_BUCKET_TTL = 3600.0


class RegistryError(Exception):
    """NATS KV failed under the registry (NATS away, a bucket it cannot make)."""


class ProcessEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What a process says about itself in the registry."""

    #: The fingerprint of the key it signs and seals with.
    current: str
    #: Those of the keys it still accepts (``previous_secret_keys``).
    previous: tuple[str, ...] = ()
    host: str = ""
    pid: int = 0
    #: When it was last written (Unix time), and how long it counts from then.
    renewed_at: float = 0.0
    ttl: float = 0.0

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host or '?'}"

    def alive(self, now: float) -> bool:
        """Whether the entry still counts at ``now``: renewed within its TTL."""
        return now <= self.renewed_at + self.ttl


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(ProcessEntry).decode


def compatible(one: ProcessEntry, other: ProcessEntry) -> bool:
    """Whether each process opens the cookies the other seals."""
    return (one.current == other.current or one.current in other.previous) and (
        other.current == one.current or other.current in one.previous
    )


class ProcessRegistry:
    """This process's entry in the registry, checked at start-up and kept fresh."""

    def __init__(
        self,
        client: Callable[[], Client],
        entry: ProcessEntry,
        *,
        app: str = "",
        ttl: float = 30.0,
        replicas: int = 1,
        ephemeral_key: bool = False,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"the registry's ttl must be positive, not {ttl}")
        self.entry = entry
        #: The app's key prefix: its processes' entries are ``<app>.<process id>``.
        self.app = hashlib.sha256(app.encode()).hexdigest()[:16]
        self.key = f"{self.app}.{secrets.token_hex(8)}"
        self.ttl = ttl
        self._bucket = Bucket(
            client,
            name=BUCKET,
            ttl=REGISTRY_BUCKET_TTL,
            replicas=replicas,
            description="livepages processes",
            error=RegistryError,
        )
        self._ephemeral_key = ephemeral_key
        self._checked = False  # whether the others were checked (at start-up, or later)
        self._heartbeat: asyncio.Task[None] | None = None

    @classmethod
    def for_app(cls, settings: Settings, broker: NATSBroker, keys: Keys) -> ProcessRegistry:
        """The registry entry of an app on ``broker``'s connection."""
        current, *previous = keys.fingerprints()
        entry = ProcessEntry(
            current=current,
            previous=tuple(previous),
            host=socket.gethostname(),
            pid=os.getpid(),
            ttl=settings.nats_registry_ttl,
        )
        return cls(
            lambda: broker.client,
            entry,
            app=settings.subject_prefix,
            ttl=settings.nats_registry_ttl,
            replicas=settings.nats_kv_replicas,
            ephemeral_key=keys.ephemeral,
        )

    async def start(self) -> None:
        """Register, check the others, and keep the entry fresh; ``StartupRefused`` if
        this process must not run beside them."""
        if self._heartbeat is not None:
            return
        if self._ephemeral_key:
            raise StartupRefused(
                "Settings.secret_key is not set, and this app runs on NATS, where its "
                "processes must open each other's cookies, CSRF tokens and tab ids: a "
                "random key per process cannot. Give every process the same "
                "LIVEPAGES_SECRET_KEY (see docs/scaling.md)."
            )
        try:
            await self._register()
        except RegistryError as exc:
            # As a session store that cannot start: logged, not fatal (its requests
            # answer 503 meanwhile). The heartbeat registers and checks when it can.
            log.error("could not check the other processes' secret keys (%s); trying again", exc)
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def _register(self) -> None:
        """Write the entry, then check the others: ``StartupRefused`` on a clash (the
        entry withdrawn), ``RegistryError`` if NATS KV fails."""
        await self._renew()
        try:
            clashing = [e for e in await self.others() if not compatible(self.entry, e)]
        except BaseException:
            await self._withdraw()
            raise
        if clashing:
            await self._withdraw()
            raise StartupRefused(_clash(clashing, self.ttl))
        self._checked = True

    async def others(self) -> list[ProcessEntry]:
        """The entries of the app's other processes, as the registry has them now."""
        kv = await self._bucket.kv()
        entries: list[ProcessEntry] = []
        now = time.time()
        for key in await self._bucket.live_keys(f"{self.app}.*"):
            if key == self.key:
                continue
            try:
                with self._bucket.backend():
                    found = _decode((await kv.get(key)).value or b"")
                if found.alive(now):
                    entries.append(found)
            except nats.js.errors.KeyNotFoundError:
                continue  # gone meanwhile: stopped, or aged out
            except DECODE_ERRORS:
                log.warning("ignoring an unreadable entry %r in %s", key, BUCKET)
        return entries

    async def _renew(self) -> None:
        kv = await self._bucket.kv()
        self.entry = msgspec.structs.replace(self.entry, renewed_at=time.time(), ttl=self.ttl)
        with self._bucket.backend():
            await kv.put(self.key, _encode(self.entry))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await (self._renew() if self._checked else self._register())
            except RegistryError as exc:  # NATS away: the next one may pass
                log.warning("could not renew this process's entry in %s: %s", BUCKET, exc)
            except StartupRefused as exc:  # too late to refuse: say it loudly
                self._checked = True
                log.error("this process runs beside processes it should not: %s", exc)

    async def stop(self) -> None:
        """Stop renewing and delete the entry. Idempotent; NATS away is not an error."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._withdraw()

    async def _withdraw(self) -> None:
        with contextlib.suppress(RegistryError, nats.errors.Error, OSError):
            kv = await self._bucket.kv()
            await kv.purge(self.key)


def _clash(clashing: list[ProcessEntry], ttl: float) -> str:
    shown = ", ".join(entry.describe() for entry in clashing[:5])
    return (
        f"this process's secret keys and those of {len(clashing)} running process(es) of "
        f"this app ({shown}) do not open each other's cookies: LIVEPAGES_SECRET_KEY "
        "differs. Give every process the same key; to rotate it, first add the new key "
        "to LIVEPAGES_PREVIOUS_SECRET_KEYS everywhere, then make it the current one "
        f"(docs/scaling.md). A process that died without stopping counts for {ttl:g} s "
        "(Settings.nats_registry_ttl)."
    )
