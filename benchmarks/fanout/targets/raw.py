"""The floor: a hand-written HTTP/1.1 server on uvloop that fans out bytes encoded once.

It keeps the open streams' transports and, on a change, renders the board once,
encodes one ``datastar-patch-elements`` event once, frames it as one HTTP chunk
once, and writes that same ``bytes`` object to every plain stream. Streams that
asked for gzip each own a compressor, so they cost one ``compress`` + ``flush``
per client: the least work per-connection compression can cost.

It parses only what the benchmark sends (see ``benchmarks/fanout/README.md``)
and is not a general HTTP server. Run it with
``python -m benchmarks.fanout.targets.raw --port PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import zlib
from typing import cast

import uvloop

from benchmarks.fanout.page import current_page, renderer
from livepages.datastar import patch_elements

__all__ = ["Hub", "main"]

_MAX_HEAD = 16 * 1024

_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
)
_GZIP_HEADER = b"content-encoding: gzip\r\n"
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """``data`` framed as one HTTP/1.1 chunk."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class Hub:
    """The counter and the open streams; :meth:`change` fans one event out to all."""

    def __init__(self, gzip_level: int, gzip_wbits: int, gzip_mem_level: int) -> None:
        self.counter = 0
        self.gzip_level = gzip_level
        self.gzip_wbits = gzip_wbits
        self.gzip_mem_level = gzip_mem_level
        self.render = renderer(current_page())
        self.event = patch_elements(self.render(0, ""))
        # Dicts, not lists: a closing stream is removed in O(1), and iteration
        # order is insertion order.
        self.plain: dict[asyncio.Transport, None] = {}
        self.gzipped: dict[asyncio.Transport, zlib._Compress] = {}

    def open(self, transport: asyncio.Transport, gzip: bool) -> None:
        """Start a stream: the head and the current page."""
        if gzip:
            compressor = zlib.compressobj(
                self.gzip_level, zlib.DEFLATED, 16 + self.gzip_wbits, self.gzip_mem_level
            )
            body = compressor.compress(self.event) + compressor.flush(zlib.Z_SYNC_FLUSH)
            transport.write(_STREAM_HEAD + _GZIP_HEADER + b"\r\n" + chunk(body))
            self.gzipped[transport] = compressor
        else:
            transport.write(_STREAM_HEAD + b"\r\n" + chunk(self.event))
            self.plain[transport] = None

    def close(self, transport: asyncio.Transport) -> None:
        """Forget a stream whose connection ended."""
        self.plain.pop(transport, None)
        self.gzipped.pop(transport, None)

    def change(self) -> None:
        """Bump the counter and send the new board to every stream."""
        self.counter += 1
        self.event = patch_elements(self.render(self.counter, ""))
        frame = chunk(self.event)
        for transport in self.plain:
            transport.write(frame)
        event = self.event
        for transport, compressor in self.gzipped.items():
            transport.write(chunk(compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH)))


class Connection(asyncio.Protocol):
    """One client connection: a stream (``GET /stream``) or a change (``POST /change``)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.hub.close(self.transport)
            self.transport = None

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if self.streaming or transport is None:
            return  # a stream's client has nothing more to say
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD:
                self._finish(_BAD_REQUEST)
            return
        request_line, _, header_block = self.buffer[:end].partition(b"\r\n")
        parts = request_line.split(b" ")
        if len(parts) != 3:
            self._finish(_BAD_REQUEST)
            return
        method, target = parts[0], parts[1]
        headers = _headers(header_block)
        if method == b"GET" and target == b"/stream":
            self.streaming = True
            self.buffer = b""
            self.hub.open(transport, gzip=b"gzip" in headers.get(b"accept-encoding", b""))
        elif method == b"POST" and target == b"/change":
            length = int(headers.get(b"content-length", b"0") or b"0")
            if len(self.buffer) - end - 4 < length:
                return  # wait for the body, which is ignored
            # Answer first: the fan-out below takes a while at 10,000 streams.
            self._finish(_NO_CONTENT)
            self.hub.change()
        else:
            self._finish(_NOT_FOUND)

    def _finish(self, response: bytes) -> None:
        if self.transport is not None:
            self.transport.write(response)
            self.transport.close()
        self.buffer = b""


def _headers(block: bytes) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    for line in block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    return headers


async def serve(port: int, hub: Hub) -> None:
    """Listen on 127.0.0.1:``port`` until the process is stopped."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(hub), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """Run the raw target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gzip-level", type=int, default=1)
    parser.add_argument("--gzip-wbits", type=int, default=12, help="window bits (9-15)")
    # memLevel 4 with a 4 KiB window holds about 30 KiB per stream (memLevel 8: about
    # 95 KiB) and compresses this page's patches as well (about 140 bytes each).
    parser.add_argument("--gzip-mem-level", type=int, default=4, help="zlib memLevel (1-9)")
    args = parser.parse_args(argv)
    hub = Hub(args.gzip_level, args.gzip_wbits, args.gzip_mem_level)
    uvloop.run(serve(args.port, hub))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
