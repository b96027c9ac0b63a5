"""The broker and session store an app runs on: the ones it was given, or NATS.

``App`` asks :func:`backends` once, at construction. With ``Settings.nats_url`` unset or
empty nothing changes: the given broker or a ``MemoryBroker``, and the given session
manager (``App(sessions=True)``: one on the in-memory store). With it set
(``LIVEPAGES_NATS_URL``):

- the broker, unless ``App(broker=...)`` gives one, is a ``NATSBroker`` on that URL;
- ``App(sessions=True)`` gets a ``SessionManager`` whose store is a ``NATSSessionStore``
  (JetStream KV). A ``SessionManager`` passed in keeps its own store.
- When both are made here, the store shares the broker's connection: one NATS
  connection per process. The broker starts first (``livepages.lifecycle``) and the
  store takes its client when it first needs it. If the broker was given, the store
  connects to ``nats_url`` on its own connection, since the given broker may be
  elsewhere.

Presence (:func:`presence_backend`) follows the same rule: in memory without
``nats_url``; with it, a ``NATSPresence`` (JetStream KV) on the connection of the broker
made here, or on its own connection when the broker was given.

nats-py is imported only when ``nats_url`` is set, so an app without it never needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from livepages.broker.base import Broker, BrokerError
from livepages.broker.memory import MemoryBroker
from livepages.presence.base import PresenceBackend
from livepages.presence.memory import MemoryPresence
from livepages.sessions.session import SessionManager
from livepages.sessions.store import SessionStoreError
from livepages.settings import Settings

if TYPE_CHECKING:
    from nats.aio.client import Client

    from livepages.broker.nats import NATSBroker
    from livepages.sessions.nats import NATSSessionStore

__all__ = ["CONNECTION_NAME", "backends", "nats_servers", "presence_backend"]

#: How the app's NATS connection is named in NATS's monitoring (``nats server report``).
CONNECTION_NAME = "livepages"


def backends(
    settings: Settings, broker: Broker | None, sessions: SessionManager | bool | None
) -> tuple[Broker, SessionManager | None]:
    """The app's broker (before its subject prefix) and its session manager."""
    if not settings.nats_url:  # unset, or set empty (LIVEPAGES_NATS_URL=)
        return broker or MemoryBroker(), _manager(sessions, None)
    servers = nats_servers(settings.nats_url)
    made = _nats_broker(servers) if broker is None else None
    store = _nats_store(servers, made) if sessions is True else None
    return broker if broker is not None else _made(made), _manager(sessions, store)


def nats_servers(url: str) -> list[str]:
    """The server URLs of ``nats_url``: one, or several separated by commas."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError(f"nats_url names no server: {url!r}")
    return servers


def _manager(
    sessions: SessionManager | bool | None, store: NATSSessionStore | None
) -> SessionManager | None:
    if sessions is True:
        return SessionManager(store=store)
    return sessions or None


def _nats_broker(servers: list[str]) -> NATSBroker:
    from livepages.broker.nats import NATSBroker  # needs nats-py: only when asked for

    return NATSBroker(servers, name=CONNECTION_NAME)


def _nats_store(servers: list[str], broker: NATSBroker | None) -> NATSSessionStore:
    from livepages.sessions.nats import NATSSessionStore  # needs nats-py, as above

    if broker is None:
        # Its own connection: the given broker may be on another server.
        return NATSSessionStore(",".join(servers))
    return NATSSessionStore(_shared_client(broker))


def _shared_client(broker: NATSBroker) -> Callable[[], Client]:
    """The broker's client, for the store to take once the broker has started."""

    def client() -> Client:
        try:
            return broker.client
        except BrokerError as exc:
            raise SessionStoreError(f"the app's NATS connection is not open: {exc}") from exc

    return client


def _made(broker: NATSBroker | None) -> Broker:
    assert broker is not None  # made whenever none was given
    return broker


def presence_backend(settings: Settings, made: Broker | None) -> PresenceBackend:
    """The app's presence backend: in memory, or on NATS KV when ``nats_url`` is set.

    On NATS it shares the connection of ``made``, the broker :func:`backends` made (so
    it starts once the broker has), or opens its own to ``nats_url`` when the broker
    was given. Its bucket follows the subject prefix, its TTL ``presence_ttl``.
    """
    if not settings.nats_url:
        return MemoryPresence()
    from livepages.broker.nats import NATSBroker  # needs nats-py: only when asked for
    from livepages.presence.nats import NATSPresence, bucket_name

    bucket = bucket_name(settings.subject_prefix)
    if isinstance(made, NATSBroker):
        broker = made
        return NATSPresence(lambda: broker.client, ttl=settings.presence_ttl, bucket=bucket)
    servers = ",".join(nats_servers(settings.nats_url))
    return NATSPresence(servers, ttl=settings.presence_ttl, bucket=bucket)
