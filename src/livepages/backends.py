"""The broker, session store and tab store an app runs on: the given ones, or NATS.

``App`` asks :func:`backends` once, at construction. With ``Settings.nats_url`` unset or
empty nothing changes: the given broker or a ``MemoryBroker``, the given session
manager (``App(sessions=True)``: one on the in-memory store), and tab state in the
process. With it set (``LIVEPAGES_NATS_URL``):

- the broker, unless ``App(broker=...)`` gives one, is a ``NATSBroker`` on that URL;
- ``App(sessions=True)`` gets a ``SessionManager`` whose store is a ``NATSSessionStore``
  (JetStream KV). A ``SessionManager`` passed in keeps its own store.
- tab state (``tab.state``), unless ``App(tab_store=...)`` gives a store, is kept in
  JetStream KV too (``NATSTabStore``), so an action on any process sees it.
- The stores make their buckets with ``Settings.nats_kv_replicas`` replicas (1 to 5;
  anything else is a ``ValueError`` here, when the app is made).
- When the broker is made here, the stores share its connection: one NATS connection
  per process. The broker starts first (``livepages.lifecycle``) and each store takes
  its client when it first needs it. If the broker was given, each store connects to
  ``nats_url`` on its own connection, since the given broker may be elsewhere.

Without ``nats_url``, a ``NATSBroker`` given with ``App(broker=...)`` puts the app on
NATS just the same: ``App(sessions=True)`` and tab state go to JetStream KV on the given
broker's connection.

nats-py is imported only when ``nats_url`` is set (or a ``NATSBroker`` was made), so an
app without it never needs it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from livepages.broker.base import Broker, BrokerError
from livepages.broker.memory import MemoryBroker
from livepages.sessions.session import SessionManager
from livepages.sessions.store import SessionStoreError
from livepages.settings import Settings
from livepages.tabs import TabStore, TabStoreError

if TYPE_CHECKING:
    from nats.aio.client import Client

    from livepages.broker.nats import NATSBroker
    from livepages.sessions.nats import NATSSessionStore
    from livepages.tabs.nats import NATSTabStore

__all__ = [
    "CONNECTION_NAME",
    "MAX_REPLICAS",
    "Backends",
    "backends",
    "kv_replicas",
    "nats_servers",
]

#: How the app's NATS connection is named in NATS's monitoring (``nats server report``).
CONNECTION_NAME = "livepages"

#: The most replicas NATS keeps of a JetStream stream (a KV bucket is one).
MAX_REPLICAS = 5


class Backends(NamedTuple):
    """What an app runs on."""

    #: The broker, before the app's subject prefix.
    broker: Broker
    sessions: SessionManager | None
    #: Where tab state is shared between processes; None: in the process only.
    tab_store: TabStore | None


def backends(
    settings: Settings,
    broker: Broker | None,
    sessions: SessionManager | bool | None,
    tab_store: TabStore | None = None,
) -> Backends:
    """The app's broker, session manager and tab store: the given ones, else NATS's."""
    if not settings.nats_url:  # unset, or set empty (LIVEPAGES_NATS_URL=)
        given = _given_nats(broker)
        if given is not None:  # App(broker=NATSBroker(...)): the app runs on NATS
            replicas = kv_replicas(settings)
            store = _nats_store([], given, replicas) if sessions is True else None
            if tab_store is None:
                tab_store = _nats_tabs([], given, settings.tab_grace, replicas)
            return Backends(given, _manager(sessions, store), tab_store)
        return Backends(broker or MemoryBroker(), _manager(sessions, None), tab_store)
    servers = nats_servers(settings.nats_url)
    replicas = kv_replicas(settings)
    made = _nats_broker(servers) if broker is None else None
    store = _nats_store(servers, made, replicas) if sessions is True else None
    if tab_store is None:
        tab_store = _nats_tabs(servers, made, settings.tab_grace, replicas)
    return Backends(
        broker if broker is not None else _made(made), _manager(sessions, store), tab_store
    )


def nats_servers(url: str) -> list[str]:
    """The server URLs of ``nats_url``: one, or several separated by commas."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError(f"nats_url names no server: {url!r}")
    return servers


def kv_replicas(settings: Settings) -> int:
    """``settings.nats_kv_replicas``, checked: NATS replicates a stream 1 to 5 times."""
    replicas = settings.nats_kv_replicas
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"nats_kv_replicas must be 1 to {MAX_REPLICAS}, not {replicas}")
    return replicas


def _manager(
    sessions: SessionManager | bool | None, store: NATSSessionStore | None
) -> SessionManager | None:
    if sessions is True:
        return SessionManager(store=store)
    return sessions or None


def _given_nats(broker: Broker | None) -> NATSBroker | None:
    """``broker`` if it is a ``NATSBroker`` (without importing nats-py to find out)."""
    module = sys.modules.get("livepages.broker.nats")
    if module is not None and isinstance(broker, module.NATSBroker):
        given: NATSBroker = broker
        return given
    return None


def _nats_broker(servers: list[str]) -> NATSBroker:
    from livepages.broker.nats import NATSBroker  # needs nats-py: only when asked for

    return NATSBroker(servers, name=CONNECTION_NAME)


def _nats_store(servers: list[str], broker: NATSBroker | None, replicas: int) -> NATSSessionStore:
    from livepages.sessions.nats import NATSSessionStore  # needs nats-py, as above

    if broker is None:
        # Its own connection: the given broker may be on another server.
        return NATSSessionStore(",".join(servers), replicas=replicas)
    return NATSSessionStore(_shared_client(broker, SessionStoreError), replicas=replicas)


def _nats_tabs(
    servers: list[str], broker: NATSBroker | None, grace: float, replicas: int
) -> NATSTabStore:
    from livepages.tabs.nats import NATSTabStore  # needs nats-py, as above

    if broker is None:
        return NATSTabStore(",".join(servers), grace=grace, replicas=replicas)
    shared = _shared_client(broker, TabStoreError)
    return NATSTabStore(shared, grace=grace, replicas=replicas)


def _shared_client(broker: NATSBroker, error: type[Exception]) -> Callable[[], Client]:
    """The broker's client, for a store to take once the broker has started; ``error``
    (the store's own) if it has none."""

    def client() -> Client:
        try:
            return broker.client
        except BrokerError as exc:
            raise error(f"the app's NATS connection is not open: {exc}") from exc

    return client


def _made(broker: NATSBroker | None) -> Broker:
    assert broker is not None  # made whenever none was given
    return broker
