"""One measurement: a fresh server, N idle streams, a few changes, then everything closed.

Each (target, clients, compression) gets its own server process, so that memory
and garbage left by one run cannot colour the next one.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from dataclasses import dataclass, field

from benchmarks.fanout.client import Crowd, RunError
from benchmarks.fanout.lineup import Target
from benchmarks.fanout.process import ServerProcess, Unavailable, free_port
from benchmarks.fanout.stats import ChangeStats, Summary, summarize

__all__ = [
    "ERROR",
    "NOT_AVAILABLE",
    "NOT_SUPPORTED",
    "OK",
    "NotSupported",
    "Result",
    "Settings",
    "measure",
]

OK = "ok"
ERROR = "error"
NOT_AVAILABLE = "not available"
NOT_SUPPORTED = "not supported"


class NotSupported(Exception):
    """The target runs but does not offer what this measurement needs (compression)."""


@dataclass(frozen=True)
class Settings:
    """How every run is done."""

    changes: int = 5
    phase_timeout: float = 60.0
    concurrency: int = 256
    pause: float = 0.5
    settle: float = 1.0
    server_cpu: int = 0


@dataclass
class Result:
    """What one run measured, or why it measured nothing (``status`` and ``reason``)."""

    target: str
    clients: int
    compression: str
    status: str = OK
    reason: str = ""
    summary: Summary | None = None
    changes: list[ChangeStats] = field(default_factory=list)
    connect_seconds: float | None = None
    connect_cpu_us_per_stream: float | None = None
    server_rss_kib: int | None = None
    rss_kib_per_stream: float | None = None
    cpu_us_per_patch: float | None = None
    client_cpu_us_per_patch: float | None = None
    wire_bytes_per_patch: float | None = None


def _log(result: Result, message: str) -> None:
    print(
        f"[{result.target} N={result.clients} {result.compression}] {message}",
        file=sys.stderr,
        flush=True,
    )


async def measure(target: Target, clients: int, gzip: bool, settings: Settings) -> Result:
    """Measure ``target`` with ``clients`` streams; never raises for a target's failure.

    A target of several processes gets them all, each on its own port; the
    streams are spread over them and the changes go to the first one.
    """
    result = Result(target.name, clients, "gzip" if gzip else "none")
    if target.unavailable is not None:
        result.status, result.reason = NOT_AVAILABLE, target.unavailable
        return result
    servers: list[ServerProcess] = []
    crowd: Crowd | None = None
    try:
        for _ in range(target.processes):
            port = free_port()
            argv = target.command(port, clients)
            servers.append(
                ServerProcess(argv, port, settings.server_cpu, target.pythonpath, dict(target.env))
            )
        ports = [server.port for server in servers]
        for server in servers:
            await server.wait_ready(settings.phase_timeout)
            await _probe(server.port, gzip, settings)
        await asyncio.sleep(settings.settle)
        before = _rss_kib(servers)
        crowd = Crowd(ports, clients, gzip=gzip)
        _log(result, f"opening {clients} streams")
        started, cpu_before = time.perf_counter(), _cpu_seconds(servers)
        try:
            async with asyncio.timeout(settings.phase_timeout):
                await crowd.open(settings.concurrency)
        except TimeoutError:
            raise RunError(
                f"only {crowd.ready} of {clients} streams got their first event "
                f"within {settings.phase_timeout:g} s"
            ) from None
        result.connect_seconds = time.perf_counter() - started
        connect_cpu = _cpu_seconds(servers) - cpu_before
        result.connect_cpu_us_per_stream = connect_cpu / clients * 1e6
        await asyncio.sleep(settings.settle)
        result.server_rss_kib = _rss_kib(servers)
        result.rss_kib_per_stream = (result.server_rss_kib - before) / clients
        await _changes(crowd, servers, result, settings)
        _log(result, "done")
    except Unavailable as exc:
        result.status, result.reason = NOT_AVAILABLE, str(exc)
    except NotSupported as exc:
        result.status, result.reason = NOT_SUPPORTED, str(exc)
    except (RunError, RuntimeError, OSError) as exc:
        result.status, result.reason = ERROR, f"{exc}"
        _log(result, f"error: {exc}")
    finally:
        if crowd is not None:
            await crowd.close()
        for server in servers:
            await server.stop()
        gc.collect()  # the client runs with the collector off (see run.py)
    return result


def _rss_kib(servers: list[ServerProcess]) -> int:
    return sum(server.rss_kib() for server in servers)


def _cpu_seconds(servers: list[ServerProcess]) -> float:
    return sum(server.cpu_seconds() for server in servers)


async def _probe(port: int, gzip: bool, settings: Settings) -> None:
    """Open one stream to check the contract and whether gzip is answered."""
    probe = Crowd([port], 1, gzip=gzip)
    try:
        async with asyncio.timeout(settings.phase_timeout):
            await probe.open(1)
    except TimeoutError:
        raise RunError("the first stream got no event with a counter") from None
    finally:
        await probe.close()
    if gzip and not probe.streams[0].gzip:
        raise NotSupported("answers Accept-Encoding: gzip without Content-Encoding: gzip")


async def _changes(
    crowd: Crowd, servers: list[ServerProcess], result: Result, settings: Settings
) -> None:
    clients = len(crowd.streams)
    cpu_before = _cpu_seconds(servers)
    client_before = time.process_time()
    bytes_before = crowd.received
    for number in range(1, settings.changes + 1):
        try:
            async with asyncio.timeout(settings.phase_timeout):
                latencies = await crowd.change()
        except TimeoutError:
            raise RunError(
                f"change {number}: only {clients - crowd.missing} of {clients} streams "
                f"got it within {settings.phase_timeout:g} s"
            ) from None
        change = ChangeStats.from_latencies(latencies)
        result.changes.append(change)
        _log(result, f"change {number}: last client after {change.max * 1000:.1f} ms")
        # Let the server finish what follows a fan-out (a GC, say) before the next.
        await asyncio.sleep(settings.pause)
    patches = clients * settings.changes
    result.cpu_us_per_patch = (_cpu_seconds(servers) - cpu_before) / patches * 1e6
    # The load client's own cost: if it nears the server's, the client is the bottleneck.
    result.client_cpu_us_per_patch = (time.process_time() - client_before) / patches * 1e6
    result.wire_bytes_per_patch = (crowd.received - bytes_before) / patches
    result.summary = summarize(result.changes)
