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

The NATS connection's options come from the settings too (:func:`nats_options`): the
URL(s), ``nats_name``, ``nats_credentials`` and the ``nats_tls_*`` files, checked when
the ``App`` is made, so a missing file is an error naming its setting before anything
connects. A store's own connection (the broker given) uses them too.

Without ``nats_url``, a ``NATSBroker`` given with ``App(broker=...)`` puts the app on
NATS just the same: ``App(sessions=True)`` and tab state go to JetStream KV on the given
broker's connection, and so does presence.

nats-py is imported only when ``nats_url`` is set (or a ``NATSBroker`` was made), so an
app without it never needs it.

Presence (who is on which page) is in memory without NATS; on NATS, a ``NATSPresence``
(JetStream KV) on the same connection as the stores.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from livepages.broker.base import Broker, BrokerError
from livepages.broker.memory import MemoryBroker
from livepages.presence.base import PresenceBackend
from livepages.presence.memory import MemoryPresence
from livepages.sessions.session import SessionManager
from livepages.sessions.store import SessionStoreError
from livepages.settings import Settings
from livepages.tabs import TabStore, TabStoreError

if TYPE_CHECKING:
    from nats.aio.client import Client

    from livepages.broker.nats import NATSBroker, NATSOptions
    from livepages.sessions.nats import NATSSessionStore
    from livepages.tabs.nats import NATSTabStore

__all__ = [
    "MAX_REPLICAS",
    "Backends",
    "backends",
    "kv_replicas",
    "nats_broker_of",
    "nats_options",
    "nats_servers",
]

#: The most replicas NATS keeps of a JetStream stream (a KV bucket is one).
MAX_REPLICAS = 5


class Backends(NamedTuple):
    """What an app runs on."""

    #: The broker, before the app's subject prefix.
    broker: Broker
    sessions: SessionManager | None
    #: Where tab state is shared between processes; None: in the process only.
    tab_store: TabStore | None
    #: Who is on which presence topic.
    presence: PresenceBackend


def backends(
    settings: Settings,
    broker: Broker | None,
    sessions: SessionManager | bool | None,
    tab_store: TabStore | None = None,
) -> Backends:
    """What the app runs on: the given broker, session manager and tab store, else NATS's
    (with ``nats_url``, or a given ``NATSBroker``), else the in-process ones."""
    given = nats_broker_of(broker)
    if not settings.nats_url and given is None:  # unset, or set empty (LIVEPAGES_NATS_URL=)
        memory = broker or MemoryBroker()
        return Backends(memory, _manager(sessions, None), tab_store, MemoryPresence())
    replicas = kv_replicas(settings)
    if settings.nats_url:
        options: NATSOptions | None = nats_options(settings)
        assert options is not None
        made = _nats_broker(options) if broker is None else None
        # The broker's connection when it is made here; else one of each store's own,
        # since the given broker may be on another server.
        shared = made
    else:  # App(broker=NATSBroker(...)): the app runs on NATS, on that connection
        options, made, shared = None, None, given
    store = _nats_store(options, shared, replicas) if sessions is True else None
    if tab_store is None:
        tab_store = _nats_tabs(options, shared, settings.tab_grace, replicas)
    presence = _nats_presence(options, shared, settings, replicas)
    chosen = broker if broker is not None else _made(made)
    return Backends(chosen, _manager(sessions, store), tab_store, presence)


def nats_servers(url: str) -> list[str]:
    """The server URLs of ``nats_url``: one, or several separated by commas."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError(f"nats_url names no server: {url!r}")
    return servers


def nats_options(settings: Settings) -> NATSOptions:
    """How to reach NATS, from ``settings`` (``nats_url`` must be set).

    ``ValueError`` naming the setting for a file that does not exist, a TLS key without
    its certificate, or credentials without the ``nkeys`` package.
    """
    from livepages.broker.nats import NATSOptions  # needs nats-py: only when asked for

    assert settings.nats_url, "nats_options() needs Settings.nats_url"
    credentials = _file(settings.nats_credentials, "nats_credentials")
    if credentials is not None and importlib.util.find_spec("nkeys") is None:
        raise ValueError(
            "Settings.nats_credentials needs the nkeys package to sign with its seed: "
            "pip install nkeys"
        )
    return NATSOptions(
        servers=tuple(nats_servers(settings.nats_url)),
        name=settings.nats_name or None,
        credentials=credentials,
        tls=_tls(settings),
    )


def _tls(settings: Settings) -> ssl.SSLContext | None:
    """The client TLS context of the ``nats_tls_*`` settings; None if none is set."""
    ca = _file(settings.nats_tls_ca, "nats_tls_ca")
    cert = _file(settings.nats_tls_cert, "nats_tls_cert")
    key = _file(settings.nats_tls_key, "nats_tls_key")
    if ca is None and cert is None and key is None:
        return None
    if key is not None and cert is None:
        raise ValueError("Settings.nats_tls_key is set without nats_tls_cert, its certificate")
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise ValueError(
                f"Settings.nats_tls_cert / nats_tls_key: cannot load {cert}: {exc}"
            ) from None
    return context


def _file(path: str | None, setting: str) -> Path | None:
    """The file a setting names, which must exist; None if the setting is unset or empty."""
    if not path:
        return None
    if not Path(path).is_file():
        raise ValueError(f"Settings.{setting}: no file at {path}")
    return Path(path)


def _own(options: NATSOptions | None, store: str) -> NATSOptions:
    """The options of a store's own connection: the app's, under a name of its own."""
    assert options is not None  # nats_url is set whenever no broker is shared
    return dataclasses.replace(options, name=f"{options.name or 'livepages'}-{store}")


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


def nats_broker_of(broker: Broker | None) -> NATSBroker | None:
    """``broker`` if it is a ``NATSBroker`` (without importing nats-py to find out)."""
    module = sys.modules.get("livepages.broker.nats")
    if module is not None and isinstance(broker, module.NATSBroker):
        given: NATSBroker = broker
        return given
    return None


def _nats_broker(options: NATSOptions) -> NATSBroker:
    from livepages.broker.nats import NATSBroker  # needs nats-py: only when asked for

    return NATSBroker.from_options(options)


def _nats_store(
    options: NATSOptions | None, broker: NATSBroker | None, replicas: int
) -> NATSSessionStore:
    """On ``broker``'s connection, or else on a connection of its own with ``options``."""
    from livepages.sessions.nats import NATSSessionStore  # needs nats-py, as above

    if broker is None:
        # Its own connection: the given broker may be on another server.
        return NATSSessionStore(_own(options, "sessions"), replicas=replicas)
    return NATSSessionStore(_shared_client(broker, SessionStoreError), replicas=replicas)


def _nats_tabs(
    options: NATSOptions | None, broker: NATSBroker | None, grace: float, replicas: int
) -> NATSTabStore:
    from livepages.tabs.nats import NATSTabStore  # needs nats-py, as above

    if broker is None:
        return NATSTabStore(_own(options, "tabs"), grace=grace, replicas=replicas)
    shared = _shared_client(broker, TabStoreError)
    return NATSTabStore(shared, grace=grace, replicas=replicas)


def _nats_presence(
    options: NATSOptions | None, broker: NATSBroker | None, settings: Settings, replicas: int
) -> PresenceBackend:
    """Presence on NATS KV: its bucket follows the subject prefix, its TTL ``presence_ttl``."""
    from livepages.presence.nats import NATSPresence, bucket_name  # needs nats-py, as above

    if broker is None:
        server: NATSOptions | Callable[[], Client] = _own(options, "presence")
    else:
        server = _shared_client(broker, BrokerError)
    bucket = bucket_name(settings.subject_prefix)
    return NATSPresence(server, ttl=settings.presence_ttl, bucket=bucket, replicas=replicas)


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
