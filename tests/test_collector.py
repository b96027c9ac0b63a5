"""The garbage collector, set for many streams when an app starts."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from livepages import App, Settings
from livepages.collector import prepare_for_streams
from livepages.testing import Client


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, *saved[1:])
    yield
    gc.set_threshold(*saved)


def test_the_first_threshold_is_raised_never_lowered() -> None:
    prepare_for_streams(5_000)
    assert gc.get_threshold()[0] == 5_000
    assert gc.get_freeze_count() > 0  # what start-up built is out of the collector's way
    prepare_for_streams(2_000)
    assert gc.get_threshold()[0] == 5_000


def test_zero_leaves_the_collector_alone() -> None:
    prepare_for_streams(0)
    assert gc.get_threshold()[0] == 700


def test_the_default_is_ten_thousand() -> None:
    assert Settings().gc_threshold == 10_000


@pytest.mark.anyio
async def test_an_app_sets_the_collector_when_it_starts() -> None:
    app = App(settings=Settings(gc_threshold=12_345))
    assert gc.get_threshold()[0] == 700  # nothing at construction
    async with Client(app):
        await app.startup()
        assert gc.get_threshold()[0] == 12_345
