"""What each idle stream keeps alive in the server, uvicorn's own objects included.

``python -m benchmarks.fanout.held [--app livepages|livepages-personal|module:factory]
[--streams 2000] [--top 30]``

It serves the app with uvicorn (httptools, uvloop) in this process and opens
the streams from a client in another process (the fan-out's own client, so
that its objects are not counted). With one stream open to warm every cache, it
takes a ``tracemalloc`` snapshot and counts the objects the garbage collector
tracks; with all the streams open and idle, it does both again, and prints the
difference per stream: the bytes (Python allocations only, by file and by line)
and the tracked objects (by type). ``benchmarks/fanout/README.md`` ("Per-stream
cost") has the figures. ``profile.py`` gives the same without uvicorn, with the
per-connect work under ``cProfile``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import sys
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import uvicorn
import uvloop
from starlette.types import ASGIApp

from benchmarks.fanout.client import Crowd
from benchmarks.fanout.process import free_port
from benchmarks.fanout.profile import APPS
from benchmarks.fanout.serve import load_app

__all__ = ["main"]

_ROOT = Path(__file__).resolve().parents[2]
#: Seconds to wait for the client's streams (or the server) before giving up.
_TIMEOUT = 120.0


def _raise_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _client(port: int, streams: int) -> None:
    """The client process: open the streams, say so, hold them until told to stop."""
    _raise_file_limit()
    crowd = Crowd([port], streams, gzip=False)
    try:
        await crowd.open(256)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    finally:
        await crowd.close()


async def _open(port: int, streams: int) -> asyncio.subprocess.Process:
    """Start a client holding ``streams`` streams open; return once they all are."""
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.fanout.held",
        "--client-of",
        str(port),
        "--streams",
        str(streams),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=_ROOT,  # where ``benchmarks`` imports from
    )
    assert client.stdout is not None
    line = await asyncio.wait_for(client.stdout.readline(), _TIMEOUT)
    if line.strip() != b"ready":
        client.kill()
        await client.wait()
        raise RuntimeError(f"the client did not open its streams (it said {line!r})")
    return client


async def _close(client: asyncio.subprocess.Process) -> None:
    assert client.stdin is not None
    client.stdin.write(b"\n")
    await client.stdin.drain()
    await asyncio.wait_for(client.wait(), _TIMEOUT)


def _tracked() -> Counter[str]:
    return Counter(type(o).__name__ for o in gc.get_objects())


def report(
    before: tracemalloc.Snapshot,
    after: tracemalloc.Snapshot,
    tracked: Counter[str],
    streams: int,
    top: int,
) -> str:
    """The difference between two snapshots (and the tracked objects added), per stream."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(ignore), after.filter_traces(ignore)
    by_file = after.compare_to(before, "filename")
    total = sum(stat.size_diff for stat in by_file)
    lines = [
        f"{streams:,} idle streams under uvicorn: {total / streams:,.0f} B per stream "
        f"(Python allocations), {tracked.total() / streams:.1f} tracked objects per stream"
    ]
    lines.append("by file:")
    for stat in by_file[:top]:
        where = os.path.relpath(stat.traceback[0].filename)
        lines.append(
            f"  {stat.size_diff / streams:8.0f} B  {stat.count_diff / streams:6.2f}  {where}"
        )
    lines.append("by line:")
    for stat in after.compare_to(before, "lineno")[:top]:
        frame = stat.traceback[0]
        where = f"{os.path.relpath(frame.filename)}:{frame.lineno}"
        lines.append(
            f"  {stat.size_diff / streams:8.0f} B  {stat.count_diff / streams:6.2f}  {where}"
        )
    lines.append("tracked objects by type:")
    for name, count in tracked.most_common(top):
        lines.append(f"  {count / streams:6.2f}  {name}")
    return "\n".join(lines)


def _row(stat: tracemalloc.StatisticDiff, streams: int, where: str) -> str:
    return f"  {stat.size_diff / streams:8.0f} B  {stat.count_diff / streams:6.2f}  {where}"


async def held(app: ASGIApp, streams: int, top: int) -> str:
    """Serve ``app`` with uvicorn here and measure ``streams`` idle streams of it."""
    _raise_file_limit()
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="none",  # this process's loop: uvloop, as the fan-out's servers run
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    serving = asyncio.get_running_loop().create_task(server.serve())
    try:
        async with asyncio.timeout(_TIMEOUT):
            while not server.started:  # noqa: ASYNC110 - uvicorn has only this flag
                await asyncio.sleep(0.05)
        await _close(await _open(port, 1))  # warms every cache, then leaves
        await asyncio.sleep(0.2)
        gc.collect()
        tracemalloc.start()
        before, tracked = tracemalloc.take_snapshot(), _tracked()
        client = await _open(port, streams)
        try:
            await asyncio.sleep(0.5)  # every stream idle
            gc.collect()
            after = tracemalloc.take_snapshot()
            tracked = _tracked() - tracked
            tracemalloc.stop()
        finally:
            await _close(client)
    finally:
        server.should_exit = True
        await serving
    return report(before, after, tracked, streams, top)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print; 0 on success."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout.held")
    parser.add_argument("--app", default="livepages", help=f"{', '.join(APPS)} or module:factory")
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--client-of", type=int, help=argparse.SUPPRESS)  # the client process
    args = parser.parse_args(argv)
    if args.client_of is not None:
        uvloop.run(_client(args.client_of, args.streams))
        return 0
    app = load_app(APPS.get(args.app, args.app))
    print(uvloop.run(held(app, args.streams, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
