from __future__ import annotations

import asyncio

import pytest

from benchmarks.fanout.client import Crowd
from benchmarks.fanout.page import render
from benchmarks.fanout.targets.raw import Hub, chunk

pytestmark = pytest.mark.anyio


async def _exchange(port: int, *parts: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await asyncio.sleep(0.01)
        async with asyncio.timeout(5):
            return await reader.read()  # the server closes after answering
    finally:
        writer.close()


def test_chunk_frames_data_with_its_hex_length() -> None:
    assert chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"


def test_hub_encodes_the_event_once_per_change() -> None:
    hub = Hub(gzip_level=1, gzip_wbits=12, gzip_mem_level=4)
    hub.change()
    assert hub.counter == 1
    assert render(1).encode() in hub.event


async def test_post_change_answers_204_and_bumps_the_counter(raw_port: int) -> None:
    answer = await _exchange(raw_port, b"POST /change HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 204 ")
    crowd = Crowd([raw_port], 1, gzip=False)
    try:
        async with asyncio.timeout(5):
            await crowd.open(1)
    finally:
        await crowd.close()
    assert crowd.latest == 1


async def test_post_change_waits_for_its_body(raw_port: int) -> None:
    head = b"POST /change HTTP/1.1\r\nContent-Length: 2\r\n\r\n"
    answer = await _exchange(raw_port, head + b"{", b"}")
    assert answer.startswith(b"HTTP/1.1 204 ")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /other HTTP/1.1\r\n\r\n", b"404"),
        (b"PUT /change HTTP/1.1\r\n\r\n", b"404"),
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET /stream HTTP/1.1\r\nX-Pad: " + b"x" * 17_000, b"400"),
    ],
)
async def test_other_requests_are_refused(
    raw_port: int, request_bytes: bytes, status: bytes
) -> None:
    answer = await _exchange(raw_port, request_bytes)
    assert answer.split(b" ")[1] == status
