"""The TLS fan-out benchmark: a short real run against hypercorn over HTTP/2."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from benchmarks.fanout.tls import Seen, measure, self_signed


def test_the_certificate_loads_for_localhost(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)


def test_seen_finds_counters_split_across_reads() -> None:
    async def run() -> None:
        seen = Seen(1)
        seen.expect(7)
        tail = seen.feed(0, b"", b"<div data-coun")
        seen.feed(0, tail, b'ter="7">')
        assert seen.done.is_set()
        assert seen.latest == [7]

    asyncio.run(run())


def test_a_short_run_measures_hypercorn_over_http2(tmp_path: Path) -> None:
    row = asyncio.run(measure("hypercorn-h2", self_signed(tmp_path), 20, 10, 2))
    assert row.connections == 2
    assert row.streams == 20
    assert row.last_ms > 0
