"""Which presence backend an app runs on, and with which TTL and bucket."""

from __future__ import annotations

import pytest

from livepages import App, Settings
from livepages.backends import backends
from livepages.broker.memory import MemoryBroker
from livepages.presence import MemoryPresence
from livepages.presence.nats import BUCKET, DEFAULT_TTL, NATSPresence, bucket_name

URL = "nats://127.0.0.1:4222"  # never connected to: nothing here starts an app


def test_the_ttl_defaults_to_ten_seconds_and_reads_the_environment() -> None:
    assert Settings().presence_ttl == DEFAULT_TTL == 10.0
    assert Settings.from_env({"LIVEPAGES_PRESENCE_TTL": "2.5"}).presence_ttl == 2.5


def test_one_process_keeps_presence_in_memory() -> None:
    assert isinstance(backends(Settings(), None, None).presence, MemoryPresence)
    assert isinstance(App().presence.backend, MemoryPresence)


def test_on_nats_presence_shares_the_apps_connection() -> None:
    app = App(settings=Settings(nats_url=URL, presence_ttl=3.0))
    backend = app.presence.backend
    assert isinstance(backend, NATSPresence)
    assert (backend.ttl, backend.heartbeat, backend.stale_after) == (3.0, 1.0, 2.5)
    assert backend.bucket == BUCKET
    assert backend._shared is not None  # the broker's client, taken once it has started


def test_with_a_given_broker_presence_connects_on_its_own() -> None:
    settings = Settings(nats_url=f"{URL}, nats://127.0.0.1:4223", subject_prefix="shop")
    app = App(settings=settings, broker=MemoryBroker())
    backend = app.presence.backend
    assert isinstance(backend, NATSPresence)
    assert backend._options is not None
    assert backend._options.servers == (URL, "nats://127.0.0.1:4223")
    assert backend._options.name == "livepages-presence"
    assert backend.bucket == bucket_name("shop")


def test_a_given_nats_broker_puts_presence_on_its_connection() -> None:
    from livepages.broker.nats import NATSBroker

    app = App(settings=Settings(secret_key="k"), broker=NATSBroker([URL]))
    backend = app.presence.backend
    assert isinstance(backend, NATSPresence)
    assert backend._shared is not None


def test_a_bad_ttl_is_refused_when_the_app_is_made() -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        App(settings=Settings(nats_url=URL, presence_ttl=0))
