"""The load client: thousands of SSE streams on raw asyncio Protocols.

One :class:`Stream` per connection reads the HTTP/1.1 response head, undoes the
chunked transfer coding and gzip (each incrementally, as bytes arrive), splits
the body into SSE events at blank lines and reads the board's counter from each.
The first time a stream sees a counter at least :attr:`Tracker.expected`, the
:class:`Tracker` stamps the time. Nothing else happens per event, so the client
stays cheaper per patch than the servers it measures.

Events must end lines with ``\\n`` (every Datastar SDK does).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from typing import cast

from benchmarks.fanout.page import find_counter

__all__ = ["Crowd", "RunError", "Stream", "Tracker", "stream_request"]

_MAX_HEAD = 16 * 1024
_NOT_YET = -1.0


class RunError(Exception):
    """A run could not be measured (a server misbehaved or a phase timed out)."""


class Tracker:
    """When each stream first saw a counter at least :attr:`expected`."""

    __slots__ = ("all_closed", "done", "expected", "failure", "open", "remaining", "times")

    def __init__(self, count: int) -> None:
        self.times = [_NOT_YET] * count
        self.expected = sys.maxsize
        self.remaining = 0
        self.open = 0
        self.all_closed = asyncio.Event()
        self.failure: str | None = None
        self.done: asyncio.Future[None] | None = None

    def expect(self, counter: int) -> asyncio.Future[None]:
        """Start waiting for ``counter`` on every stream; the future ends when all saw it."""
        self.times = [_NOT_YET] * len(self.times)
        self.expected = counter
        self.remaining = len(self.times)
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def saw(self, index: int, counter: int) -> None:
        """Stream ``index`` completed an event carrying ``counter``."""
        if counter < self.expected or self.times[index] != _NOT_YET:
            return
        self.times[index] = time.perf_counter()
        self.remaining -= 1
        if self.remaining == 0 and self.done is not None and not self.done.done():
            self.done.set_result(None)

    def fail(self, message: str) -> None:
        """Record the first failure and end the current wait with it."""
        if self.failure is None:
            self.failure = message
        if self.done is not None and not self.done.done():
            self.done.set_exception(RunError(message))


def stream_request(port: int, gzip: bool) -> bytes:
    """The request that opens a stream, as Datastar's ``@get`` would send it."""
    encoding = b"gzip" if gzip else b"identity"
    return (
        b"GET /stream HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\n"
        b"Accept: text/event-stream\r\n"
        b"Cache-Control: no-cache\r\n"
        b"Datastar-Request: true\r\n"
        b"Accept-Encoding: %b\r\n"
        b"\r\n" % (port, encoding)
    )


class Stream(asyncio.Protocol):
    """One SSE connection, decoded incrementally."""

    __slots__ = (
        "chunk_left",
        "chunked",
        "closing",
        "first",
        "gzip",
        "head",
        "index",
        "inflater",
        "pending",
        "raw",
        "received",
        "request",
        "seen",
        "tracker",
        "transport",
    )

    def __init__(
        self, index: int, tracker: Tracker, request: bytes, first: asyncio.Future[None]
    ) -> None:
        self.index = index
        self.tracker = tracker
        self.request = request
        self.first = first  # ends with the first event (the current page)
        self.transport: asyncio.Transport | None = None
        self.head: bytes | None = b""  # None once the response head is read
        self.chunked = False
        self.gzip = False
        self.inflater: zlib._Decompress | None = None
        self.chunk_left = 0
        self.raw = b""  # undecoded bytes of a chunk-size line
        self.pending = b""  # decoded bytes of an unfinished event
        self.seen = -1
        self.received = 0  # bytes on the wire, head included
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.tracker.open += 1
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.tracker.open -= 1
        if self.tracker.open == 0:
            self.tracker.all_closed.set()
        if not self.closing:
            self._fail(f"stream {self.index} was closed by the server ({exc or 'EOF'})")

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports it

    def close(self) -> None:
        """Close the connection on purpose."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.head is not None:
            body = self._read_head(data)
            if body is None:
                return
            data = body
        try:
            if self.chunked:
                data = self._dechunk(data)
            if self.inflater is not None and data:
                data = self.inflater.decompress(data)
        except (ValueError, zlib.error) as exc:
            self._fail(f"stream {self.index}: undecodable body: {exc}")
            return
        if data:
            self._scan(data)

    def _read_head(self, data: bytes) -> bytes | None:
        """Parse the response head; return the body bytes after it, or None until complete."""
        assert self.head is not None
        head = self.head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            self.head = head
            if len(head) > _MAX_HEAD:
                self._fail(f"stream {self.index}: response head larger than {_MAX_HEAD} bytes")
            return None
        self.head = None
        status_line, _, block = head[:end].partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or parts[1] != b"200":
            self._fail(
                f"stream {self.index}: expected 200, got {status_line.decode(errors='replace')!r}"
            )
            return None
        for line in block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"transfer-encoding":
                self.chunked = b"chunked" in value
            elif name == b"content-encoding" and value not in (b"", b"identity"):
                if value != b"gzip":
                    self._fail(f"stream {self.index}: unexpected content-encoding {value!r}")
                    return None
                self.gzip = True
                self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return head[end + 4 :]

    def _dechunk(self, data: bytes) -> bytes:
        """Undo the chunked transfer coding for the bytes that have arrived."""
        if not self.raw and not self.chunk_left:
            # The usual case: exactly one whole chunk (one event) per read.
            eol = data.find(b"\r\n", 0, 18)
            if eol > 0 and b";" not in data[:eol]:
                end = eol + 2 + int(data[:eol], 16)
                if len(data) == end + 2 and end > eol + 2:
                    return data[eol + 2 : end]
        return self._dechunk_any(data)

    def _dechunk_any(self, data: bytes) -> bytes:
        if self.raw:
            data = self.raw + data
            self.raw = b""
        pieces: list[bytes] = []
        pos = 0
        size = len(data)
        while pos < size:
            left = self.chunk_left
            if left:
                take = min(left, size - pos)
                pieces.append(data[pos : pos + take])
                pos += take
                self.chunk_left = left - take
                continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                self.raw = data[pos:]
                break
            line = data[pos:eol]
            pos = eol + 2
            if not line:
                continue  # the CRLF that ends a chunk's data
            chunk_size = int(line.split(b";", 1)[0], 16)
            if chunk_size == 0:
                break  # last chunk: the server ended the stream; connection_lost follows
            self.chunk_left = chunk_size
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)

    def _scan(self, data: bytes) -> None:
        """Split decoded body bytes into events and read each one's counter."""
        if self.pending:
            data = self.pending + data
        start = 0
        while True:
            end = _blank_line(data, start)
            if end < 0:
                break
            counter = find_counter(data, start, end)
            if counter is not None and counter > self.seen:
                self.seen = counter
                if not self.first.done():
                    self.first.set_result(None)
                self.tracker.saw(self.index, counter)
            start = end + 2
        self.pending = data[start:]

    def _fail(self, message: str) -> None:
        if not self.first.done():
            self.first.set_exception(RunError(message))
        self.tracker.fail(message)
        self.close()


class Crowd:
    """``count`` streams and the :class:`Tracker` they report to.

    The streams are spread over ``ports`` in turn (stream ``i`` to
    ``ports[i % len(ports)]``): one port for one server, several for several
    processes of one app. Changes go to the first port. The caller bounds each
    phase with ``asyncio.timeout`` and always calls :meth:`close`, also after a
    failure.
    """

    def __init__(self, ports: Sequence[int], count: int, *, gzip: bool) -> None:
        if not ports:
            raise ValueError("a crowd needs at least one port")
        self.ports = tuple(ports)
        self.tracker = Tracker(count)
        requests = [stream_request(port, gzip) for port in self.ports]
        loop = asyncio.get_running_loop()
        self.streams = [
            Stream(i, self.tracker, requests[i % len(requests)], loop.create_future())
            for i in range(count)
        ]

    def port_of(self, stream: Stream) -> int:
        """The port ``stream`` connects to."""
        return self.ports[stream.index % len(self.ports)]

    @property
    def ready(self) -> int:
        """How many streams have received their first event."""
        return sum(1 for s in self.streams if s.seen >= 0)

    @property
    def latest(self) -> int:
        """The highest counter any stream has seen (-1 before the first event)."""
        return max((s.seen for s in self.streams), default=-1)

    @property
    def received(self) -> int:
        """Bytes received on all streams so far."""
        return sum(s.received for s in self.streams)

    async def open(self, concurrency: int) -> None:
        """Open every stream, at most ``concurrency`` at a time, each until its first event."""
        loop = asyncio.get_running_loop()
        queue = iter(self.streams)

        async def worker() -> None:
            for stream in queue:  # a shared iterator: each stream is taken once
                await loop.create_connection(_factory(stream), "127.0.0.1", self.port_of(stream))
                await stream.first

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(concurrency, len(self.streams))):
                    group.create_task(worker())
        except ExceptionGroup as errors:
            first = errors.exceptions[0]
            raise RunError(f"opening streams failed: {type(first).__name__}: {first}") from None
        if self.tracker.failure is not None:
            raise RunError(self.tracker.failure)

    async def change(self) -> list[float]:
        """Trigger one change; return each stream's seconds from the trigger to the new event."""
        if self.tracker.failure is not None:
            raise RunError(self.tracker.failure)
        done = self.tracker.expect(self.latest + 1)
        port = self.ports[0]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            sent = time.perf_counter()
            writer.write(_CHANGE_REQUEST % port)
            status_line = await reader.readline()
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[1].startswith(b"2"):
                raise RunError(f"POST /change answered {status_line!r}")
        finally:
            writer.close()
        await done
        return [t - sent for t in self.tracker.times]

    @property
    def missing(self) -> int:
        """How many streams have not yet seen the change being waited for."""
        return self.tracker.remaining

    async def close(self) -> None:
        """Close every stream and wait until their sockets are released (at most 10 s)."""
        for stream in self.streams:
            stream.close()
            if not stream.first.done():
                stream.first.cancel()
            elif not stream.first.cancelled():
                stream.first.exception()  # retrieved: nobody waits on it any more
        if self.tracker.open > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self.tracker.all_closed.wait()


_CHANGE_REQUEST = (
    b"POST /change HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
)


def _blank_line(data: bytes, start: int) -> int:
    """Where the first ``\\n\\n`` at or after ``start`` is, or -1.

    Hopping from newline to newline is several times faster than
    ``data.find(b"\\n\\n")``: a one-byte search is a ``memchr``, and an event
    has only a few newlines (one per field line).
    """
    last = len(data) - 1
    i = data.find(b"\n", start)
    while 0 <= i < last:
        if data[i + 1] == 10:  # "\n"
            return i
        i = data.find(b"\n", i + 2)
    return -1


def _factory(stream: Stream) -> Callable[[], Stream]:
    return lambda: stream
