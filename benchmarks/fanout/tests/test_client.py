from __future__ import annotations

import asyncio
import itertools
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.fanout.client import Crowd, RunError, Stream, Tracker, stream_request
from benchmarks.fanout.page import render
from benchmarks.fanout.targets.raw import Connection, Hub, chunk
from benchmarks.fanout.targets.starlette_app import create_app
from livepages.datastar import patch_elements
from livepages.testing import LiveServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("gzip", [False, True])
async def test_crowd_times_every_stream_for_every_change(raw_port: int, gzip: bool) -> None:
    crowd = Crowd([raw_port], 20, gzip=gzip)
    try:
        async with asyncio.timeout(10):
            await crowd.open(concurrency=4)
            assert crowd.ready == 20
            assert crowd.latest == 0
            for expected in (1, 2, 3):
                latencies = await crowd.change()
                assert len(latencies) == 20
                assert all(latency > 0 for latency in latencies)
                assert crowd.latest == expected
                assert crowd.missing == 0
    finally:
        await crowd.close()
    assert all(stream.gzip is gzip and stream.chunked for stream in crowd.streams)
    assert crowd.tracker.open == 0
    assert crowd.tracker.failure is None


async def test_a_crowd_spreads_its_streams_over_its_ports() -> None:
    # Two listening sockets on one hub: two "processes" that share their changes.
    hub = Hub(gzip_level=1, gzip_wbits=12, gzip_mem_level=4)
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lambda: Connection(hub), "127.0.0.1", 0) for _ in "ab"]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    crowd = Crowd(ports, 5, gzip=False)
    try:
        async with asyncio.timeout(10):
            await crowd.open(concurrency=5)
            assert [crowd.port_of(stream) for stream in crowd.streams] == [*ports, *ports, ports[0]]
            assert len(hub.plain) == 5
            assert len(await crowd.change()) == 5
            assert crowd.latest == 1
    finally:
        await crowd.close()
        for server in servers:
            server.close()
        for transport in hub.plain:
            transport.close()


def test_a_crowd_needs_a_port() -> None:
    with pytest.raises(ValueError, match="at least one port"):
        Crowd([], 1, gzip=False)


async def test_compressed_streams_receive_fewer_bytes(raw_port: int) -> None:
    received = {}
    for gzip in (False, True):
        crowd = Crowd([raw_port], 2, gzip=gzip)
        try:
            async with asyncio.timeout(10):
                await crowd.open(concurrency=2)
                before = crowd.received
                await crowd.change()
                received[gzip] = crowd.received - before
        finally:
            await crowd.close()
    assert received[False] > len(render(1))
    assert received[True] * 5 < received[False]


async def test_crowd_reads_uvicorn_streams_of_the_starlette_target() -> None:
    with LiveServer(create_app()) as server:
        crowd = Crowd([server.port], 5, gzip=True)
        try:
            async with asyncio.timeout(10):
                await crowd.open(concurrency=5)
                assert await crowd.change()
                assert crowd.latest == 1
        finally:
            await crowd.close()
    stream = crowd.streams[0]
    assert stream.chunked
    assert not stream.gzip


async def test_a_stream_closed_by_the_server_fails_the_wait(raw_port: int) -> None:
    crowd = Crowd([raw_port], 3, gzip=False)
    try:
        async with asyncio.timeout(10):
            await crowd.open(concurrency=3)
            # Cut without Crowd.close, so it counts as the server ending the stream.
            crowd.streams[1].transport.abort()  # type: ignore[union-attr]
            with pytest.raises(RunError, match="stream 1 was closed by the server"):
                await crowd.change()
    finally:
        await crowd.close()


async def test_a_change_answered_with_an_error_is_a_run_error() -> None:
    async def reject(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(reject, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    crowd = Crowd([port], 0, gzip=False)
    try:
        with pytest.raises(RunError, match="403"):
            async with asyncio.timeout(10):
                await crowd.change()
    finally:
        server.close()


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"HTTP/1.1 404 Not Found\r\n\r\n", "expected 200"),
        (b"HTTP/1.1 200 OK\r\ncontent-encoding: br\r\n\r\n", "unexpected content-encoding"),
        (b"HTTP/1.1 200 OK\r\nx-pad: " + b"x" * 17000, "response head larger"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "undecodable body"),
        (
            b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\n\r\nnot gzip at all",
            "undecodable body",
        ),
    ],
)
async def test_bad_responses_fail_the_stream(response: bytes, message: str) -> None:
    tracker = Tracker(1)
    first = asyncio.get_running_loop().create_future()
    stream = Stream(0, tracker, b"", first)
    stream.data_received(response)
    with pytest.raises(RunError, match=message):
        await first
    assert tracker.failure is not None
    assert message in tracker.failure


class _Recorder(Tracker):
    """A tracker that remembers every counter a stream reported."""

    def __init__(self) -> None:
        super().__init__(1)
        self.counters: list[int] = []

    def saw(self, index: int, counter: int) -> None:
        self.counters.append(counter)


def _frames(gzip: bool) -> list[bytes]:
    """A stream's writes as the raw target makes them: the head, then three chunked events."""
    events = [patch_elements(render(n)) for n in range(3)]
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
    if not gzip:
        return [head + b"\r\n", *(chunk(e) for e in events)]
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + 12, 4)
    body = [chunk(compressor.compress(e) + compressor.flush(zlib.Z_SYNC_FLUSH)) for e in events]
    return [head + b"content-encoding: gzip\r\n\r\n", *body]


_WIRES = {gzip: b"".join(_frames(gzip)) for gzip in (False, True)}


def _feed(pieces: list[bytes]) -> tuple[Stream, _Recorder]:
    tracker = _Recorder()
    loop = asyncio.new_event_loop()
    try:
        stream = Stream(0, tracker, b"", loop.create_future())
        for piece in pieces:
            stream.data_received(piece)
    finally:
        loop.close()
    return stream, tracker


@pytest.mark.parametrize("gzip", [False, True])
def test_one_chunk_per_read_is_decoded(gzip: bool) -> None:
    stream, tracker = _feed(_frames(gzip))
    assert tracker.counters == [0, 1, 2]
    assert stream.pending == b""


@settings(max_examples=60, deadline=None)
@given(gzip=st.booleans(), cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_events_are_found_however_the_bytes_are_split(gzip: bool, cuts: list[int]) -> None:
    wire = _WIRES[gzip]
    bounds = sorted({0, len(wire), *(c % len(wire) for c in cuts)})
    stream, tracker = _feed([wire[start:end] for start, end in itertools.pairwise(bounds)])
    assert tracker.counters == [0, 1, 2]
    assert stream.pending == b""
    assert stream.raw == b""
    assert stream.chunk_left == 0
    assert stream.received == len(wire)


def test_stream_request_asks_for_the_encoding() -> None:
    assert b"Accept-Encoding: gzip\r\n" in stream_request(8000, gzip=True)
    assert b"Accept-Encoding: identity\r\n" in stream_request(8000, gzip=False)
    assert stream_request(8000, gzip=False).startswith(b"GET /stream HTTP/1.1\r\n")
    assert stream_request(8000, gzip=False).endswith(b"\r\n\r\n")
