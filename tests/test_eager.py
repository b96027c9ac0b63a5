"""run_eagerly: as far as an awaitable goes now, the rest in a task, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from livepages.eager import run_eagerly

pytestmark = pytest.mark.anyio


async def test_a_coroutine_that_never_waits_finishes_at_once() -> None:
    done: list[str] = []

    async def write() -> None:
        done.append("written")

    assert run_eagerly(write()) is None
    assert done == ["written"]


async def test_a_coroutine_that_waits_finishes_in_a_task_with_its_result() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def write() -> int:
        steps.append("before")
        value = await gate
        steps.append("after")
        return value + 1

    rest = run_eagerly(write())
    assert rest is not None
    assert steps == ["before"]
    task = asyncio.create_task(_await(rest))
    await asyncio.sleep(0)
    assert not task.done()
    gate.set_result(41)
    assert await task == 42
    assert steps == ["before", "after"]


async def test_a_bare_yield_and_several_waits_are_relayed() -> None:
    async def write() -> str:
        await asyncio.sleep(0)  # yields None to the task
        await asyncio.sleep(0.01)
        return "ok"

    rest = run_eagerly(write())
    assert rest is not None
    assert await _await(rest) == "ok"


async def test_an_error_before_the_first_wait_is_raised_at_once() -> None:
    async def write() -> None:
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        run_eagerly(write())


async def test_an_error_after_a_wait_reaches_the_task() -> None:
    async def write() -> None:
        await asyncio.sleep(0)
        raise ConnectionResetError("gone")

    rest = run_eagerly(write())
    assert rest is not None
    with pytest.raises(ConnectionResetError):
        await _await(rest)


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    cleaned: list[str] = []

    async def write() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append("finally")

    rest = run_eagerly(write())
    assert rest is not None
    task = asyncio.create_task(_await(rest))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally"]


async def test_a_rest_never_awaited_closes_its_coroutine() -> None:
    cleaned: list[str] = []

    async def write() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append("finally")

    rest = run_eagerly(write())
    assert rest is not None
    waiting = rest.__await__()
    next(waiting)  # the task took the first step, then the writer was dropped
    waiting.close()
    assert cleaned == ["finally"]


class ServerAwaitable:
    """An awaitable in the style of a server written in Rust: an iterator, no ``send``."""

    def __init__(self, waits: int) -> None:
        self.waits = waits
        self.finished = False

    def __await__(self) -> Generator[Any, None, None]:
        return _NoSend(self)  # type: ignore[return-value]


class _NoSend(Iterator[Any]):
    def __init__(self, owner: ServerAwaitable) -> None:
        self.owner = owner

    def __next__(self) -> Any:
        if self.owner.waits == 0:
            self.owner.finished = True
            raise StopIteration
        self.owner.waits -= 1
        return None  # a bare yield: the task runs it again on the next loop turn


async def test_any_other_awaitable_runs_eagerly_through_the_await_protocol() -> None:
    done = ServerAwaitable(waits=0)
    assert run_eagerly(done) is None  # finished at once, no task needed
    assert done.finished
    waiting = ServerAwaitable(waits=2)
    rest = run_eagerly(waiting)
    assert rest is not None
    assert waiting.waits == 1  # one step taken; the task takes the others
    await _await(rest)
    assert waiting.finished


async def test_a_coroutine_awaiting_such_an_awaitable_works_both_ways() -> None:
    for waits in (0, 2):
        awaitable = ServerAwaitable(waits)

        async def send(target: ServerAwaitable = awaitable) -> None:
            await target  # what a middleware's send wrapper does with the server's send

        rest = run_eagerly(send())
        if waits == 0:
            assert rest is None
        else:
            assert rest is not None
            await _await(rest)
        assert awaitable.finished


async def _await(awaitable: Any) -> Any:
    return await awaitable
