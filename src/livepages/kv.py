"""How livepages makes its JetStream KV buckets: one place for every KV user.

Sessions (``livepages.sessions.nats``), the process registry (``livepages.registry``)
and any other state livepages keeps in NATS KV describe their bucket with a
:class:`Bucket` and bind it with :func:`bind_bucket`, so they all follow one rule:

- the bucket is created if missing, with the app's replica count
  (``Settings.nats_kv_replicas``: 1 on a single server, 3 in a three-node cluster);
- a bucket that exists is bound as it is: its settings were chosen when it was made
  (by another process, or by an operator with ``nats kv add``), and rewriting them
  from every process at start-up would fight. A replica count that differs from the
  app's is logged, so a cluster running on one replica is noticed.

Two processes may race to create a bucket: creating a stream with the same settings
twice succeeds, so both end up bound to the one bucket.

nats-py is imported with this module: only apps on NATS import it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

__all__ = ["Bucket", "bind_bucket", "live_keys"]

log = logging.getLogger("livepages.kv")


@dataclass(frozen=True)
class Bucket:
    """A KV bucket as livepages creates it.

    ``ttl``: seconds each key lives after its last write (0: for ever). ``replicas``:
    copies of it in a NATS cluster (at most the number of servers). ``history``: the
    revisions kept per key (1: the latest only).
    """

    name: str
    description: str
    ttl: float = 0.0
    replicas: int = 1
    history: int = 1

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"bucket {self.name!r}: replicas must be at least 1")
        if self.ttl < 0:
            raise ValueError(f"bucket {self.name!r}: ttl must not be negative")


async def bind_bucket(js: JetStreamContext, bucket: Bucket) -> KeyValue:
    """The KV bucket ``bucket.name``, created as described if it does not exist yet."""
    try:
        kv = await js.key_value(bucket.name)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(
            bucket=bucket.name,
            description=bucket.description,
            ttl=bucket.ttl or None,
            replicas=bucket.replicas,
            history=bucket.history,
        )
    replicas = (await kv.status()).stream_info.config.num_replicas or 1
    if replicas != bucket.replicas:
        log.warning(
            "the KV bucket %r has %d replica(s), not %d: it is used as it is "
            "(change it with `nats kv edit`, or delete it to have it made again)",
            bucket.name,
            replicas,
            bucket.replicas,
        )
    return kv


async def live_keys(js: JetStreamContext, kv: KeyValue, bucket: str, pattern: str) -> list[str]:
    """The keys of ``bucket`` that match ``pattern`` (``user.*``) and hold a value now.

    Not ``kv.keys()`` or ``kv.watch()``: nats-py may end a watch's initial listing
    (its ``None`` marker) before it has handled the messages already on their way, so
    a listing could miss keys. The stream's subject counts list every key with a
    message (its last may be a delete marker) in one request; a ``get`` of each then
    leaves out the deleted ones.
    """
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=prefix + pattern)
    keys = [subject.removeprefix(prefix) for subject in info.state.subjects or {}]
    found = await asyncio.gather(*(_holds_value(kv, key) for key in keys))
    return [key for key, live in zip(keys, found, strict=True) if live]


async def _holds_value(kv: KeyValue, key: str) -> bool:
    try:
        await kv.get(key)
    except nats.js.errors.KeyNotFoundError:  # deleted or purged (or aged out meanwhile)
        return False
    return True
