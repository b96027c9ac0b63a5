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

The NATS connection's options come from the settings too (:func:`nats_options`): the
URL(s), ``nats_name``, ``nats_credentials`` and the ``nats_tls_*`` files, checked when
the ``App`` is made, so a missing file is an error naming its setting before anything
connects. Buckets are made with ``nats_kv_replicas`` copies (``livepages.kv``).

nats-py is imported only when ``nats_url`` is set, so an app without it never needs it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from livepages.broker.base import Broker, BrokerError
from livepages.broker.memory import MemoryBroker
from livepages.sessions.session import SessionManager
from livepages.sessions.store import SessionStoreError
from livepages.settings import Settings

if TYPE_CHECKING:
    from nats.aio.client import Client

    from livepages.broker.nats import NATSBroker, NATSOptions
    from livepages.sessions.nats import NATSSessionStore

__all__ = ["backends", "nats_options", "nats_servers"]


def backends(
    settings: Settings, broker: Broker | None, sessions: SessionManager | bool | None
) -> tuple[Broker, SessionManager | None]:
    """The app's broker (before its subject prefix) and its session manager."""
    if not settings.nats_url:  # unset, or set empty (LIVEPAGES_NATS_URL=)
        return broker or MemoryBroker(), _manager(sessions, None)
    options = nats_options(settings)
    made = _nats_broker(options) if broker is None else None
    store = _nats_store(options, made, settings.nats_kv_replicas) if sessions is True else None
    return broker if broker is not None else _made(made), _manager(sessions, store)


def nats_options(settings: Settings) -> NATSOptions:
    """How to reach NATS, from ``settings`` (``nats_url`` must be set).

    ``ValueError`` naming the setting for a file that does not exist, a TLS key without
    its certificate, credentials without the ``nkeys`` package, or replicas below 1.
    """
    from livepages.broker.nats import NATSOptions  # needs nats-py: only when asked for

    assert settings.nats_url, "nats_options() needs Settings.nats_url"
    if settings.nats_kv_replicas < 1:
        raise ValueError(
            f"Settings.nats_kv_replicas must be at least 1, not {settings.nats_kv_replicas}"
        )
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


def _nats_broker(options: NATSOptions) -> NATSBroker:
    from livepages.broker.nats import NATSBroker  # needs nats-py: only when asked for

    return NATSBroker.from_options(options)


def _nats_store(options: NATSOptions, broker: NATSBroker | None, replicas: int) -> NATSSessionStore:
    from livepages.sessions.nats import NATSSessionStore  # needs nats-py, as above

    if broker is None:
        # Its own connection: the given broker may be on another server.
        own = dataclasses.replace(options, name=f"{options.name or 'livepages'}-sessions")
        return NATSSessionStore(own, replicas=replicas)
    return NATSSessionStore(_shared_client(broker), replicas=replicas)


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
