"""Where a fan-out's time and a stream's memory go, in-process: no server, no sockets.

``python -m benchmarks.fanout.profile [--app livepages|livepages-personal]
[--page board|site] [--clients 1000] [--top 25]``

It serves the benchmark's ASGI app (the same factories the fan-out targets
run) straight from this process: each stream is a task calling the app with a
``GET /stream`` scope whose ``send`` keeps only a count of the bytes. It reports

- connect: the wall time to open the streams (each until its first event),
  and the allocations still alive afterwards per stream (``tracemalloc``),
  grouped by the line that made them: what each idle stream keeps;
- change: one ``POST /change`` until every stream has its event, under
  ``cProfile``: the functions the time goes to.

What the server adds (uvicorn's protocol objects, the socket buffers) is not in
these figures: the fan-out benchmark measures those as RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import os
import pstats
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from starlette.types import ASGIApp, Message

from benchmarks.fanout.lineup import DEFAULT_LIVEPAGES_APP, PERSONAL_LIVEPAGES_APP
from benchmarks.fanout.page import PAGE_ENV, PageName
from benchmarks.fanout.serve import load_app

__all__ = ["APPS", "Streams", "main"]

APPS = {"livepages": DEFAULT_LIVEPAGES_APP, "livepages-personal": PERSONAL_LIVEPAGES_APP}


class Streams:
    """N in-process SSE streams of one ASGI app, counting the events each received."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.events: list[int] = []
        self.waiting: asyncio.Event = asyncio.Event()
        self.target = 0
        self.reached = 0
        self.disconnect: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tasks: list[asyncio.Task[None]] = []

    def open(self, index: int) -> None:
        """Start stream ``index``."""
        self.events.append(0)
        self.tasks.append(asyncio.get_running_loop().create_task(self._run(index)))

    async def _run(self, index: int) -> None:
        async def receive() -> Message:
            await self.disconnect
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                self.events[index] += message["body"].count(b"\n\n")
                if self.events[index] == self.target:
                    self.reached += 1
                    if self.reached == len(self.events):
                        self.waiting.set()

        await self.app(_scope("GET", "/stream"), receive, send)

    async def until(self, events: int) -> None:
        """Wait until every stream has received ``events`` events in all."""
        self.target, self.reached = events, sum(1 for n in self.events if n >= events)
        self.waiting.clear()
        if self.reached < len(self.events):
            await self.waiting.wait()

    async def close(self) -> None:
        """End every stream."""
        self.disconnect.set_result(None)
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _scope(method: str, path: str) -> dict[str, Any]:
    headers = [(b"accept", b"text/event-stream"), (b"datastar-request", b"true")]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def _post(app: ASGIApp, path: str) -> int:
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope("POST", path), receive, send)
    return status


async def _lifespan(app: ASGIApp) -> Callable[[], Any]:
    """Start the app's lifespan; returns the coroutine function that ends it."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def send(message: Message) -> None:
        await outbox.put(message)

    async def run() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)

    task = asyncio.get_running_loop().create_task(run())
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return stop


def _top(snapshot: tracemalloc.Snapshot, before: tracemalloc.Snapshot, n: int, top: int) -> str:
    stats = snapshot.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    lines = [f"alive after connect: {total / n:,.0f} B per stream (Python objects only)"]
    for stat in stats[:top]:
        frame = stat.traceback[0]
        where = f"{os.path.relpath(frame.filename)}:{frame.lineno}"
        per = stat.size_diff / n
        lines.append(f"  {per:8.0f} B  {stat.count_diff / n:6.2f} blocks  {where}")
    lines.append("by file:")
    for stat in snapshot.compare_to(before, "filename")[:top]:
        where = os.path.relpath(stat.traceback[0].filename)
        lines.append(f"  {stat.size_diff / n:8.0f} B  {stat.count_diff / n:6.2f} blocks  {where}")
    return "\n".join(lines)


async def profile(app_name: str, clients: int, top: int) -> None:
    """Open ``clients`` streams of ``app_name``, then profile one change.

    The first half of the streams connect under ``cProfile`` (the per-connect
    work), the second half under ``tracemalloc`` (what each keeps alive).
    """
    app = load_app(APPS[app_name])
    stop = await _lifespan(app)
    streams = Streams(app)
    streams.open(0)
    await streams.until(1)  # the first stream warms up every cache (templates, plans)
    half = clients // 2
    with _profiled(f"connect {half:,} streams", top, "tottime"):
        await _connect(streams, half)
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    await _connect(streams, clients - half)
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    print(_top(snapshot, before, clients - half, top))
    with _profiled(f"one change to {clients + 1:,} streams", top, "tottime"):
        if await _post(app, "/change") != 204:
            raise RuntimeError("POST /change failed")
        await streams.until(2)
    await streams.close()
    await stop()


async def _connect(streams: Streams, count: int) -> None:
    start = len(streams.events)
    for index in range(start, start + count):
        streams.open(index)
    await streams.until(1)


class Collections:
    """The garbage collector's passes and the time they took, by generation."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.count[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started

    def __str__(self) -> str:
        return ", ".join(
            f"gen{g} {self.count[g]}x {self.seconds[g] * 1000:,.0f} ms" for g in range(3)
        )


@contextlib.contextmanager
def _profiled(what: str, top: int, order: str) -> Iterator[None]:
    profiler = cProfile.Profile()
    collections = Collections()
    gc.callbacks.append(collections)
    started = time.perf_counter()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        gc.callbacks.remove(collections)
    took = time.perf_counter() - started
    print(f"\n{what}: {took * 1000:,.0f} ms under cProfile; collections: {collections}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
    print(out.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the profile and print it; 0 on success."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout.profile")
    parser.add_argument("--app", choices=list(APPS), default="livepages-personal")
    parser.add_argument("--page", choices=[p.value for p in PageName], default="site")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    os.environ[PAGE_ENV] = args.page
    asyncio.run(profile(args.app, args.clients, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
