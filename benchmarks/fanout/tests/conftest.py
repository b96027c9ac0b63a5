"""A raw target served in the test's own event loop, on a free port of 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from benchmarks.fanout.targets.raw import Connection, Hub


@pytest.fixture
async def raw_port() -> AsyncIterator[int]:
    """The port of a raw target with gzip level 1, a 4 KiB window and memLevel 4."""
    hub = Hub(gzip_level=1, gzip_wbits=12, gzip_mem_level=4)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(hub), "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        for transport in [*hub.plain, *hub.gzipped]:
            transport.close()
