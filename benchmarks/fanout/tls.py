"""Fan-out over TLS: which server ``livepages run`` should use when it has a certificate.

``python -m benchmarks.fanout.tls [--streams 1000] [--changes 5]``

The livepages fan-out app (``targets/livepages_app.py``) is served over TLS with a
throw-away self-signed certificate by:

- ``hypercorn-h2``: ``livepages.http2.run_tls`` (hypercorn), HTTP/2;
- ``granian-h2``: granian, HTTP/2;
- ``uvicorn-h1``: uvicorn with TLS, HTTP/1.1 (one connection per stream), for reference;
- ``granian-h1``: granian over TLS with HTTP/1.1, for reference.

The HTTP/2 clients put ``--per-connection`` (100) streams on each connection, as one
browser's tabs share one connection. Each server runs pinned to CPU 0 and this client
to CPU 1 (``benchmarks.fanout.process``). Per change: the time from ``POST /change``
until each stream has the event with the new counter (uncompressed), and the server's
CPU time per delivered patch.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from benchmarks.fanout.page import find_counter
from benchmarks.fanout.process import ServerProcess, free_port
from benchmarks.fanout.stats import ChangeStats, summarize

__all__ = ["SERVERS", "main", "self_signed"]

APP = "benchmarks.fanout.targets.livepages_app:create_app"
#: name -> (server, HTTP/2 client?)
SERVERS = {
    "hypercorn-h2": ("hypercorn", True),
    "granian-h2": ("granian", True),
    "uvicorn-h1": ("uvicorn", False),
    "granian-h1": ("granian", False),
}
_MARK_TAIL = 64  # bytes kept between reads, so a counter split across two is found


def self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and localhost and its key, written to ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def _client_context(h2_: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"] if h2_ else ["http/1.1"])
    return context


class Seen:
    """The highest counter each stream has shown, and when each reached the target."""

    def __init__(self, count: int) -> None:
        self.latest = [-1] * count
        self.target = 1 << 62
        self.stamps: list[float] = []
        self.done = asyncio.Event()
        self.failure: str | None = None

    def expect(self, counter: int) -> None:
        self.target, self.stamps = counter, []
        self.done.clear()

    def feed(self, index: int, tail: bytes, data: bytes) -> bytes:
        buffer = tail + data
        start = 0
        while True:
            at = buffer.find(b'data-counter="', start)
            if at < 0:
                break
            counter = find_counter(buffer, at)
            if counter is None:
                break
            start = at + 1
            if counter > self.latest[index]:
                before = self.latest[index]
                self.latest[index] = counter
                if before < self.target <= counter:
                    self._reached()
        return buffer[-_MARK_TAIL:]

    def _reached(self) -> None:
        self.stamps.append(time.perf_counter())
        if len(self.stamps) == len(self.latest):
            self.done.set()

    def fail(self, reason: str) -> None:
        self.failure = self.failure or reason
        self.done.set()


async def _h2_connection(port: int, first: int, count: int, seen: Seen) -> asyncio.Task[None]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=_client_context(True), server_hostname="localhost"
    )
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    conn.increment_flow_control_window(1 << 30)
    streams: dict[int, int] = {}
    for index in range(first, first + count):
        stream_id = conn.get_next_available_stream_id()
        streams[stream_id] = index
        conn.send_headers(
            stream_id,
            [
                (b":method", b"GET"),
                (b":path", b"/stream"),
                (b":scheme", b"https"),
                (b":authority", b"localhost"),
                (b"accept", b"text/event-stream"),
                (b"accept-encoding", b"identity"),
                (b"datastar-request", b"true"),
            ],
            end_stream=True,
        )
    writer.write(conn.data_to_send())
    tails = dict.fromkeys(streams, b"")

    async def read() -> None:
        try:
            while data := await reader.read(1 << 20):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        sid = event.stream_id
                        tails[sid] = seen.feed(streams[sid], tails[sid], event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, sid)
                    elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                        seen.fail(f"the server ended stream {event.stream_id}")
                writer.write(conn.data_to_send())
        finally:
            writer.close()

    return asyncio.get_running_loop().create_task(read())


async def _h1_connection(port: int, index: int, seen: Seen) -> asyncio.Task[None]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=_client_context(False), server_hostname="localhost"
    )
    writer.write(
        b"GET /stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
        b"Accept-Encoding: identity\r\nDatastar-Request: true\r\n\r\n"
    )

    async def read() -> None:
        tail = b""
        try:
            while data := await reader.read(1 << 16):
                tail = seen.feed(index, tail, data)
        finally:
            writer.close()

    return asyncio.get_running_loop().create_task(read())


async def _change(port: int) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=_client_context(False), server_hostname="localhost"
    )
    writer.write(b"POST /change HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    if not head.startswith(b"HTTP/1.1 2"):
        raise RuntimeError(f"/change answered {head[:40]!r}")


@dataclass(frozen=True)
class Row:
    """One server's figures."""

    name: str
    streams: int
    connections: int
    p50_ms: float
    p99_ms: float
    last_ms: float
    patches_per_s: float
    cpu_us_per_patch: float


async def measure(
    name: str, cert: tuple[str, str], streams: int, per_connection: int, changes: int
) -> Row:
    """Serve the app with ``name``'s server and fan ``changes`` changes out to ``streams``."""
    server, uses_h2 = SERVERS[name]
    port = free_port()
    argv = [
        *(sys.executable, "-m", "benchmarks.fanout.serve", "--server", server),
        *("--app", APP, "--port", str(port), "--backpressure", str(streams + 256)),
        *("--certfile", cert[0], "--keyfile", cert[1]),
    ]
    if server == "granian" and not uses_h2:
        argv += ["--http", "1"]
    process = ServerProcess(argv, port, cpu=0)
    seen = Seen(streams)
    tasks: list[asyncio.Task[None]] = []
    try:
        await process.wait_ready(30)
        if uses_h2:
            for first in range(0, streams, per_connection):
                count = min(per_connection, streams - first)
                tasks.append(await _h2_connection(port, first, count, seen))
            connections = len(tasks)
        else:
            for index in range(streams):
                tasks.append(await _h1_connection(port, index, seen))
            connections = streams
        await _wait(seen, lambda: min(seen.latest) >= 0, "the first event on every stream")
        results = []
        cpu_before = process.cpu_seconds()
        for _ in range(changes):
            target = max(seen.latest) + 1
            seen.expect(target)
            started = time.perf_counter()
            await _change(port)
            await asyncio.wait_for(seen.done.wait(), 60)
            if seen.failure:
                raise RuntimeError(seen.failure)
            results.append(ChangeStats.from_latencies([t - started for t in seen.stamps]))
            await asyncio.sleep(0.3)
        cpu = process.cpu_seconds() - cpu_before
        summary = summarize(results)
        return Row(
            name,
            streams,
            connections,
            summary.p50 * 1000,
            summary.p99 * 1000,
            summary.max * 1000,
            summary.patches_per_second,
            cpu / (streams * changes) * 1e6,
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await process.stop()


async def _wait(seen: Seen, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        if seen.failure:
            raise RuntimeError(seen.failure)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within 60 s")
        await asyncio.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    """Measure each server and print a table (Markdown)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--per-connection", type=int, default=100)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--servers", default=",".join(SERVERS))
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {1})
    print(
        "| server | streams | connections | p50 ms | p99 ms | last ms | patches/s | CPU µs/patch |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    status = 0
    with tempfile.TemporaryDirectory(prefix="livepages-tls-bench-") as folder:
        cert = self_signed(Path(folder))
        for name in args.servers.split(","):
            try:
                row = asyncio.run(
                    measure(name, cert, args.streams, args.per_connection, args.changes)
                )
            except Exception as exc:
                print(f"| {name} | failed: {exc} |||||||", flush=True)
                status = 1
                continue
            print(
                f"| {row.name} | {row.streams:,} | {row.connections:,} | {row.p50_ms:.0f} |"
                f" {row.p99_ms:.0f} | {row.last_ms:.0f} | {row.patches_per_s:,.0f} |"
                f" {row.cpu_us_per_patch:.1f} |",
                flush=True,
            )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
