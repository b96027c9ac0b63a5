"""Streaming responses: headers, per-event flushing, ordering, disconnects."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Message, Scope

from livepages.datastar import (
    DatastarResponse,
    ServerSentEventGenerator,
    patch_elements,
    patch_signals,
    sse_headers,
)
from livepages.datastar.response import EventSource
from livepages.testing import LiveServer


def test_headers_on_http_1_1() -> None:
    headers = dict(sse_headers({"type": "http", "http_version": "1.1"}))
    assert headers == {
        b"content-type": b"text/event-stream",
        b"cache-control": b"no-cache",
        b"x-accel-buffering": b"no",
        b"connection": b"keep-alive",
    }


@pytest.mark.parametrize("version", ["2", "3"])
def test_no_connection_header_on_http_2_and_3(version: str) -> None:
    headers = dict(sse_headers({"type": "http", "http_version": version}))
    assert b"connection" not in headers
    assert headers[b"content-type"] == b"text/event-stream"


class Recorder:
    """The ASGI side of a response: what the app sent, in order."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def receive(self) -> Message:
        await asyncio.Event().wait()  # the client never leaves in these tests
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        await asyncio.sleep(0)  # let another sender run between messages
        self.messages.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages)


SCOPE: Scope = {"type": "http", "http_version": "1.1", "method": "GET", "path": "/"}


@pytest.mark.anyio
async def test_each_event_is_its_own_body_message() -> None:
    recorder = Recorder()
    events = [patch_elements(f'<p id="p{i}">{i}</p>') for i in range(3)]
    await DatastarResponse(events)(SCOPE, recorder.receive, recorder.send)
    start, flush, *bodies, end = recorder.messages
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    assert flush == {"type": "http.response.body", "body": b"", "more_body": True}
    assert [m["body"] for m in bodies] == events
    assert all(m["more_body"] for m in bodies)
    assert end == {"type": "http.response.body", "body": b"", "more_body": False}


@pytest.mark.anyio
async def test_concurrent_senders_do_not_interleave() -> None:
    recorder = Recorder()
    sse = ServerSentEventGenerator(SCOPE, recorder.receive, recorder.send)

    async def sender(name: str) -> None:
        for i in range(50):
            await sse.patch_signals({name: i, "pad": "x" * 1000})

    await asyncio.gather(sender("a"), sender("b"), sender("c"))
    await sse.close()
    events = recorder.body.split(b"\n\n")[:-1]
    assert len(events) == 150
    assert all(e.startswith(b"event: datastar-patch-signals\ndata: signals {") for e in events)
    for name in "abc":
        seen = [e for e in events if f'{{"{name}":'.encode() in e]
        assert seen == [patch_signals({name: i, "pad": "x" * 1000})[:-2] for i in range(50)]


@pytest.mark.anyio
async def test_every_source_kind_streams() -> None:
    one = patch_signals({"a": 1})

    async def agen() -> AsyncIterator[bytes]:
        yield one
        yield one

    async def func(sse: ServerSentEventGenerator) -> None:
        await sse.patch_signals({"a": 1})
        await sse.remove_elements("#x")
        await sse.execute_script("go()")
        await sse.redirect("/next")
        await sse.remove_signals("a")

    sources: list[tuple[EventSource, int]] = [(one, 1), (agen(), 2), (func, 5), (None, 0)]
    for source, expected_events in sources:
        recorder = Recorder()
        await DatastarResponse(source, status_code=201, headers={"X-Extra": "1"})(
            SCOPE, recorder.receive, recorder.send
        )
        assert recorder.messages[0]["status"] == 201
        assert (b"x-extra", b"1") in recorder.messages[0]["headers"]
        assert recorder.body.count(b"\n\n") == expected_events


def _stream_app(gate: threading.Event, cancelled: threading.Event) -> Starlette:
    async def stream(request: Request) -> DatastarResponse:
        async def produce(sse: ServerSentEventGenerator) -> None:
            try:
                await sse.patch_elements('<p id="first">1</p>')
                # The test thread opens the gate once it has read the first event.
                await asyncio.to_thread(gate.wait, 5)
                await sse.patch_elements('<p id="second">2</p>')
                await asyncio.Event().wait()  # then stay open until the client leaves
            except asyncio.CancelledError:
                cancelled.set()
                raise

        return DatastarResponse(produce)

    return Starlette(routes=[Route("/stream", stream)])


@pytest.fixture
def flags() -> tuple[threading.Event, threading.Event]:
    return threading.Event(), threading.Event()


def test_events_are_flushed_as_sent_and_a_disconnect_stops_the_stream(
    flags: tuple[threading.Event, threading.Event],
) -> None:
    gate, cancelled = flags
    with (
        LiveServer(_stream_app(gate, cancelled)) as server,
        httpx.stream("GET", f"{server.url}/stream", timeout=5) as response,
    ):
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["connection"] == "keep-alive"
        chunks = response.iter_raw()
        first = next(chunks)
        # The first event arrived while the producer still waits on the gate.
        assert b'<p id="first">1</p>' in first
        assert b"second" not in first
        gate.set()
        assert b'<p id="second">2</p>' in next(chunks)
        response.close()
        assert cancelled.wait(5), "the producer was not cancelled after the client left"


def test_a_raw_client_sees_well_formed_http(
    flags: tuple[threading.Event, threading.Event],
) -> None:
    gate, cancelled = flags
    gate.set()
    with LiveServer(_stream_app(gate, cancelled)) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        data = b""
        while b"second" not in data:
            data += sock.recv(65536)
        sock.close()
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 200")
        assert b"cache-control: no-cache" in head
        assert b"x-accel-buffering: no" in head
        assert cancelled.wait(5)
