from __future__ import annotations

import asyncio

import pytest

from benchmarks.fanout.page import find_counter
from benchmarks.fanout.targets.starlette_app import Board

pytestmark = pytest.mark.anyio


async def test_a_stream_gets_the_page_then_each_change_and_leaves_the_board() -> None:
    board = Board()
    queue: asyncio.Queue[str] = asyncio.Queue()
    board.queues.add(queue)
    events = board.events(queue)
    first = await anext(events)
    assert first.startswith("event: datastar-patch-elements\n")
    assert find_counter(first.encode()) == 0
    board.change()
    board.change()
    assert find_counter((await anext(events)).encode()) == 1
    assert find_counter((await anext(events)).encode()) == 2
    await events.aclose()
    assert queue not in board.queues
