"""Presence on NATS JetStream KV: every process's members, kept alive by heartbeats.

One KV bucket per app (``livepages_presence``, or one named after the app's subject
prefix: :func:`bucket_name`), one revision per key. Each process writes one key per
topic and member it holds::

    <topic hash>.<process id>.<member id>

whose value is the entry (``livepages.presence.wire``): the topic, the member and
when it was named. A process:

- writes a key when a member's first stream on a topic opens (or its name changes),
  and deletes it when the last one closes: every watcher sees both at once;
- re-writes all of its keys every ``ttl / 3`` (the heartbeat);
- watches the whole bucket (an ordered consumer) and keeps its roster from what it
  hears, with when it last heard each key;
- drops from its roster every key of another process not heard for ``ttl * 5 / 6``.

That last rule is what removes the members of a process that died without a word
(SIGKILL, a lost machine, a partition): the bucket's ``max_age`` (the ttl) clears
their keys from the bucket too, but a key that ages out tells no watcher. A dead
process's last heartbeat came at most ``ttl / 3`` before it died, so its members leave
every roster between ``ttl / 2`` and ``ttl * 5 / 6`` after its death: within the ttl,
with a sixth of it to spare for the news to reach the pages. When the process itself
loses NATS, it likewise drops the others after that time, and hears them again once
it is back.

Each heartbeat also writes the process's beacon, ``<process id>.beacon``, which its own
watch must bring back. After NATS restarts, nats-py's ordered consumer can stay silent
for many seconds; a beacon that NATS took but the watch never delivered shows it, and
the process then watches afresh (loading the bucket as it is, and dropping what it no
longer holds).

Only nats-py knows NATS: it is imported here and nowhere else in ``livepages.presence``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from livepages.broker.base import BrokerError
from livepages.broker.nats import NATSOptions, open_connection
from livepages.presence.base import PresenceBackend, PresenceError
from livepages.presence.members import Member
from livepages.presence.roster import Entry
from livepages.presence.wire import decode_entry, encode_entry

try:
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
    from nats.js.api import KeyValueConfig
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue
except ImportError as error:  # pragma: no cover - the nats extra is installed in tests
    raise ImportError("NATSPresence needs nats-py: pip install 'livepages[nats]'") from error

__all__ = ["BUCKET", "DEFAULT_TTL", "NATSPresence", "bucket_name"]


def _options(server: str | NATSOptions, timeout: float) -> NATSOptions:
    """A connection of the presence's own: the given options, or a URL (a cluster's
    URLs separated by commas) under the name ``livepages-presence``."""
    if isinstance(server, NATSOptions):
        return server
    servers = tuple(part.strip() for part in server.split(",") if part.strip())
    return NATSOptions(servers=servers, name="livepages-presence", timeout=timeout)


log = logging.getLogger("livepages.presence")

#: The bucket of an app without a subject prefix.
BUCKET = "livepages_presence"
#: Seconds, as ``Settings.presence_ttl``: a dead process's members are gone within it.
DEFAULT_TTL = 10.0
#: How many writes go to NATS at once; a heartbeat of more waits for the first ones.
_WRITE_BATCH = 512
_DELETED = ("DEL", "PURGE")
#: The second token of a process's beacon key, ``<process>.beacon``: written every
#: heartbeat, it must come back through the process's own watch, or the watch is stuck.
_BEACON = "beacon"
_NOT_BUCKET_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")

# Failures that mean "NATS cannot be reached or refused": the presence carries on.
_NATS_ERRORS = (nats.errors.Error, OSError, BrokerError)


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


def bucket_name(subject_prefix: str) -> str:
    """The bucket of an app with ``subject_prefix``: apps that share one NATS under
    different prefixes never see each other's members.

    The prefix goes in readable (characters a bucket name cannot hold become ``_``)
    and hashed, so two prefixes that read alike still get two buckets.
    """
    if not subject_prefix:
        return BUCKET
    readable = _NOT_BUCKET_CHARACTERS.sub("_", subject_prefix)[:32]
    digest = hashlib.sha256(subject_prefix.encode()).hexdigest()[:8]
    return f"{BUCKET}_{readable}_{digest}"


def entry_key(topic: str, process: str, member_id: str) -> str:
    """The KV key of one process's entry for a member on a topic (see the module doc)."""
    topic_hash = hashlib.sha256(topic.encode()).hexdigest()[:32]
    return f"{topic_hash}.{process}.{member_id}"


class NATSPresence(PresenceBackend):
    """Presence shared by every process that reaches one NATS (JetStream on).

    ``server``: a NATS URL (or a cluster's, comma-separated; the backend connects and
    closes its connection in :meth:`close`), or a function that returns a connected
    ``nats.aio.client.Client`` when the backend starts, to share one connection per
    process (``lambda: broker.client``; it may raise ``BrokerError``). ``ttl``: see the
    module doc. ``bucket``: the KV bucket, created if missing, its ``max_age`` set to
    ``ttl``. ``replicas``: the bucket's replicas in a NATS cluster. ``timeout``:
    seconds to connect and to load the roster.

    If NATS cannot be reached at start, the backend logs it and tries again every
    heartbeat; meanwhile the roster holds this process's members alone.
    """

    def __init__(
        self,
        server: str | NATSOptions | Callable[[], Client] = "nats://127.0.0.1:4222",
        *,
        ttl: float = DEFAULT_TTL,
        bucket: str = BUCKET,
        replicas: int = 1,
        timeout: float = 5.0,
    ) -> None:
        super().__init__()
        if not (math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"the presence ttl must be a positive number of seconds, not {ttl}")
        self.ttl = ttl
        #: Seconds between two writes of every key of this process.
        self.heartbeat = ttl / 3
        #: Seconds without hearing a key of another process before it is dropped.
        self.stale_after = ttl * 5 / 6
        self.bucket = bucket
        #: This process's token in its keys: random, new at each start of the app.
        self.process = secrets.token_hex(8)
        self._beacon = f"{self.process}.{_BEACON}"
        self._options: NATSOptions | None = None
        self._shared: Callable[[], Client] | None = None
        if isinstance(server, str | NATSOptions):
            self._options = _options(server, timeout)  # a connection of its own
        else:
            self._shared = server
        self._replicas = replicas
        self._timeout = timeout
        self._client: Client | None = None
        self._kv: KeyValue | None = None  # the bound bucket: writes go there
        self._watcher: KeyValue.KeyWatcher | None = None  # the watch that feeds the roster
        self._watching = 0  # which watch is the current one; older ones stop feeding
        self._state = _State.NEW
        self._own: dict[str, bytes] = {}  # this process's keys and values
        self._pending: dict[str, bytes | None] = {}  # writes to make, latest per key; None deletes
        self._writing: dict[str, bytes | None] = {}  # the writes on their way now
        self._heard: dict[str, float] = {}  # other processes' keys: when last heard (monotonic)
        self._beacon_sent = -math.inf  # when the last beacon that NATS took was sent
        self._beacon_heard = -math.inf  # when the watch last brought a beacon back
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False

    def __repr__(self) -> str:
        return f"<NATSPresence {self.bucket} {self._state.value} ttl={self.ttl:g}>"

    @property
    def connected(self) -> bool:
        """Whether the bucket is bound and watched."""
        return self._kv is not None and self._watcher is not None

    # -- this process's members -----------------------------------------------------

    def join(self, topic: str, member: Member) -> None:
        """Add or rename ``member`` on ``topic``: in the roster now, in NATS at once."""
        key = entry_key(topic, self.process, member.id)
        entry = Entry(topic, member, time.time())
        self.roster.put(key, entry)
        self._own[key] = self._pending[key] = encode_entry(entry)
        self._wake.set()

    def leave(self, topic: str, member_id: str) -> None:
        """Remove the member from ``topic``: from the roster now, its key from NATS at once."""
        key = entry_key(topic, self.process, member_id)
        self.roster.remove(key)
        if self._own.pop(key, None) is not None:
            self._pending[key] = None
            self._wake.set()

    # -- start and close --------------------------------------------------------------

    async def start(self) -> None:
        """Bind the bucket and load the roster; start the heartbeat. Idempotent.

        NATS out of reach is logged, not raised: the backend keeps trying.
        """
        if self._state is not _State.NEW:
            return
        self._state = _State.RUNNING
        try:
            await self._watch()
        except PresenceError as exc:
            log.error("presence: %s; trying again every %.1f s", exc, self.heartbeat)
        self._spawn(self._beat())
        self._spawn(self._write_loop())
        self._spawn(self._sweep_loop())

    async def close(self) -> None:
        """Delete this process's keys (others see its members leave now) and stop."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        kv, self._kv = self._kv, None
        if kv is not None:
            # What it holds, and the deletes not made yet (the cancelled ones included).
            writes = {**self._writing, **self._pending}
            gone = [key for key, value in writes.items() if value is None]
            keys = [*self._own, *gone, self._beacon]
            with contextlib.suppress(TimeoutError):
                deletes = asyncio.gather(*(self._write(kv, key, None) for key in keys))
                await asyncio.wait_for(deletes, self._timeout)
        self._own.clear()
        self._pending.clear()
        await self._unwatch()
        if self._options is not None and self._client is not None:
            with contextlib.suppress(*_NATS_ERRORS):
                await self._client.close()
        self._client = None

    # -- binding and watching ---------------------------------------------------------

    async def _watch(self) -> None:
        """Bind the bucket if it is not, and watch it afresh: the roster is loaded again
        from what the bucket holds now."""
        self._watching += 1
        watching = self._watching
        await self._unwatch()  # gone quiet or ended, if there is one: it feeds no more
        try:
            kv = self._kv or await self._bucket((await self._connection()).jetstream())
            self._kv = kv
            watcher = await kv.watch(">")
        except _NATS_ERRORS as exc:
            raise PresenceError(f"NATS KV bucket {self.bucket!r} is unavailable: {exc!r}") from exc
        loaded = asyncio.get_running_loop().create_future()
        self._spawn(self._read(watcher, watching, loaded))
        try:
            await asyncio.wait_for(asyncio.shield(loaded), self._timeout)
        except TimeoutError:
            with contextlib.suppress(*_NATS_ERRORS):
                await watcher.stop()  # type: ignore[no-untyped-call]  # untyped in nats-py
            raise PresenceError(f"the roster did not load within {self._timeout:g} s") from None
        self._watcher = watcher
        self._beacon_sent = self._beacon_heard = -math.inf
        self._wake.set()  # what joined meanwhile goes out now

    async def _unwatch(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            with contextlib.suppress(*_NATS_ERRORS):
                await watcher.stop()  # type: ignore[no-untyped-call]

    def _watch_is_quiet(self) -> bool:
        """Whether a beacon NATS took never came back through the watch: the watch is
        stuck (nats-py's ordered consumer may stay so for long after NATS restarts)."""
        return self._beacon_heard < self._beacon_sent

    async def _connection(self) -> Client:
        if self._client is None:
            if self._shared is not None:
                self._client = self._shared()
            else:
                self._client = await self._connect()
        return self._client

    async def _connect(self) -> Client:
        """A connection of its own, that reconnects for as long as it takes once made."""
        assert self._options is not None

        async def log_error(error: Exception) -> None:
            log.warning("presence, NATS connection: %r", error)

        return await open_connection(self._options, error_cb=log_error)

    async def _bucket(self, js: JetStreamContext) -> KeyValue:
        """The bucket, created if missing; its ``max_age`` made the ttl if it differs."""
        try:
            kv = await js.key_value(self.bucket)
        except nats.js.errors.BucketNotFoundError:
            # Two processes may race here: the same settings twice make one bucket.
            config = KeyValueConfig(
                bucket=self.bucket,
                ttl=self.ttl,
                history=1,
                replicas=self._replicas,
                description="livepages presence",
            )
            return await js.create_key_value(config)
        stream = (await js.stream_info(f"KV_{self.bucket}")).config
        if stream.max_age is None or not math.isclose(stream.max_age, self.ttl):
            # The newest start decides: a key a dead process left must not outlive the ttl.
            log.info("presence: setting the max_age of bucket %r to %g s", self.bucket, self.ttl)
            stream.max_age = self.ttl
            stream.duplicate_window = min(stream.duplicate_window or self.ttl, self.ttl)
            await js.update_stream(stream)
        return kv

    # -- what the other processes hold --------------------------------------------------

    async def _read(
        self, watcher: KeyValue.KeyWatcher, watching: int, loaded: asyncio.Future[None]
    ) -> None:
        """Feed the roster from one watch; ``loaded`` once the bucket's keys are in."""
        seen: set[str] | None = set()  # the keys loaded; None once loaded
        try:
            async for update in watcher:
                if watching != self._watching:
                    return  # a newer watch feeds the roster now
                if update is None:  # nats-py's marker: the keys there were have all come
                    assert seen is not None
                    self._forget_all_but(seen)
                    seen = None
                    loaded.set_result(None)
                    continue
                try:
                    self._heard_entry(update, seen)
                except Exception:
                    log.exception("presence: failed on the update of %r", update.key)
        except _NATS_ERRORS as exc:  # the next heartbeat watches afresh
            log.warning("presence: the watch of bucket %r ended: %r", self.bucket, exc)
            if self._watcher is watcher:
                self._watcher = None

    def _heard_entry(self, update: KeyValue.Entry, seen: set[str] | None) -> None:
        """Take one update of the watch into the roster (``seen``: the keys loaded so far,
        while loading)."""
        key = update.key
        if key == self._beacon:
            self._beacon_heard = time.monotonic()
            return
        parts = key.split(".")
        if len(parts) != 3 or parts[1] == self.process:
            return  # another's beacon, not a presence key, or ours: we know ours better
        if update.operation in _DELETED:
            self._heard.pop(key, None)
            self.roster.remove(key)
            return
        try:
            entry = decode_entry(update.value or b"")
        except ValueError as exc:
            log.warning("presence: ignoring the entry %s: %s", key, exc)
            return
        if key != entry_key(entry.topic, parts[1], entry.member.id):
            log.warning("presence: ignoring the entry %s: its key does not match it", key)
            return
        age = 0.0
        written = _written_at(update.created)
        if seen is not None:
            seen.add(key)
            if written is not None:
                # Written before this watch began: it has been that long unheard.
                age = min(max(time.time() - written, 0.0), self.stale_after)
        self._heard[key] = time.monotonic() - age
        self.roster.put(key, entry)

    def _forget_all_but(self, loaded: set[str]) -> None:
        """After watching afresh: drop the keys the bucket no longer holds (deleted while
        the last watch was stuck or away)."""
        for key in [key for key in self._heard if key not in loaded]:
            del self._heard[key]
            self.roster.remove(key)

    async def _sweep_loop(self) -> None:
        """Drop the keys of other processes not heard for ``stale_after``, each one on time."""
        while True:
            now = time.monotonic()
            expired = [key for key, heard in self._heard.items() if now - heard >= self.stale_after]
            for key in expired:
                del self._heard[key]
                self.roster.remove(key)
            # Keys heard later expire later: sleeping until the oldest one's end misses none.
            oldest = min(self._heard.values(), default=now)
            await asyncio.sleep(max(oldest + self.stale_after - now, 0.001))

    # -- writing ----------------------------------------------------------------------

    async def _beat(self) -> None:
        """Every heartbeat: re-write this process's keys and its beacon, and watch afresh
        if there is no watch or it has gone quiet."""
        while True:
            await asyncio.sleep(self.heartbeat)
            if self._watcher is None or self._watch_is_quiet():
                if self._watcher is not None:
                    log.warning("presence: the watch of bucket %r went quiet", self.bucket)
                try:
                    await self._watch()
                except PresenceError as exc:
                    log.debug("presence: %s", exc)
                    if self._kv is None:
                        continue
                else:
                    log.info("presence: watching bucket %r", self.bucket)
            for key, value in self._own.items():
                self._pending.setdefault(key, value)
            self._pending[self._beacon] = b""
            self._wake.set()

    async def _write_loop(self) -> None:
        """Make the pending writes, one at a time per key, latest first."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            kv = self._kv
            while kv is not None and self._pending:
                batch = self._writing = dict(list(self._pending.items())[:_WRITE_BATCH])
                for key in batch:
                    del self._pending[key]
                done = await asyncio.gather(*(self._write(kv, k, v) for k, v in batch.items()))
                self._writing = {}
                for (key, value), ok in zip(batch.items(), done, strict=True):
                    if not ok and key != self._beacon:
                        self._pending.setdefault(key, value)  # again at the next heartbeat
                if not all(done):
                    break

    async def _write(self, kv: KeyValue, key: str, value: bytes | None) -> bool:
        sent = time.monotonic()
        try:
            if value is None:
                await kv.delete(key)
            else:
                await kv.put(key, value)
        except _NATS_ERRORS as exc:
            if not self._failing:
                self._failing = True
                log.warning("presence: cannot write to NATS (%r); retrying each heartbeat", exc)
            return False
        if self._failing:
            self._failing = False
            log.info("presence: writing to NATS again")
        if key == self._beacon and value is not None:
            self._beacon_sent = sent  # its echo comes after this, through the watch
        return True

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks = [task for task in self._tasks if not task.done()]  # ended watches
        self._tasks.append(asyncio.get_running_loop().create_task(work))


def _written_at(created: object) -> float | None:
    """When the server stored a KV entry, in Unix time: nats-py gives a ``datetime``
    (though it types it ``int``)."""
    return created.timestamp() if isinstance(created, datetime) else None
