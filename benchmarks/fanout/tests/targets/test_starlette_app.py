from __future__ import annotations

import asyncio
from html import escape

import pytest

from benchmarks.fanout.page import PAGE_ENV, PageName, find_counter, viewer_name
from benchmarks.fanout.targets.starlette_app import Board, Update

pytestmark = pytest.mark.anyio


async def test_a_stream_gets_the_page_then_each_change_and_leaves_the_board() -> None:
    board = Board()
    queue: asyncio.Queue[Update] = asyncio.Queue()
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


async def test_a_personal_board_greets_each_stream_by_its_own_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PAGE_ENV, PageName.SITE.value)
    board = Board(personal=True)
    streams = []
    for _ in range(2):
        queue: asyncio.Queue[Update] = asyncio.Queue()
        board.queues.add(queue)
        streams.append(board.events(queue))
    firsts = [await anext(events) for events in streams]
    board.change()
    seconds = [await anext(events) for events in streams]
    for index, (first, second) in enumerate(zip(firsts, seconds, strict=True), start=1):
        name = escape(viewer_name(index))
        assert name in first
        assert name in second
        assert find_counter(second.encode()) == 1
    for events in streams:
        await events.aclose()
