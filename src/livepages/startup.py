"""Which start-up guards an app gets (``livepages.guards`` says what they are for)."""

from __future__ import annotations

from pathlib import Path

from livepages.backends import nats_broker_of
from livepages.broker.base import Broker
from livepages.broker.memory import MemoryBroker
from livepages.guards import Guard
from livepages.keys import Keys
from livepages.settings import Settings

__all__ = ["guards"]


def guards(settings: Settings, broker: Broker, keys: Keys, source: Path | None) -> list[Guard]:
    """The guards of an app on ``broker`` (before its prefix), made by the module
    ``source``: made now, when the ``App`` is, since a lock is named after the order
    apps are made in."""
    if not settings.startup_checks:
        return []
    if isinstance(broker, MemoryBroker):
        from livepages.process_lock import ProcessLock

        return [ProcessLock.for_app(source)] if source is not None else []
    nats = nats_broker_of(broker)
    if nats is not None:
        from livepages.registry import ProcessRegistry

        return [ProcessRegistry.for_app(settings, nats, keys)]
    return []
