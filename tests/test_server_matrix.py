"""The same live behaviour under uvicorn, hypercorn and granian, each a real process.

Every server serves ``tests.server_apps`` twice: the plain app, and the app
mounted at ``/app`` inside Starlette with ``GZipMiddleware`` around it. One
process per (server, app) serves the whole module; the stop tests start their own.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.fixtures.servers import SERVERS, ServerProcess, tab_of
from tests.server_apps import HEARTBEAT, WRITE_TIMEOUT

#: Filler bytes per render for the slow-consumer tests: a few renders fill the
#: buffers between the server and a client that stopped reading.
BIG = 512 * 1024

CASES = [(server, app) for server in SERVERS for app in ("plain", "mounted")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{s}-{a}" for s, a in CASES])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    kind, app = request.param
    process = ServerProcess(kind, app)
    yield process
    process.stop()
    assert b"Traceback" not in process.log, process.log.decode(errors="replace")
    assert b"ERROR" not in process.log, process.log.decode(errors="replace")


def test_a_stream_stays_open_over_ten_changes(server: ServerProcess) -> None:
    stream = server.stream("ten")
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.counter() == 0
        for n in range(1, 11):
            assert server.change("ten") == n
            assert stream.counter() == n
        assert not stream.closed
    finally:
        stream.close()


def test_two_viewers_see_every_change(server: ServerProcess) -> None:
    first, second = server.stream("two"), server.stream("two")
    try:
        assert first.counter() == second.counter() == 0
        for n in (1, 2, 3):
            server.change("two")
            assert first.counter() == second.counter() == n
    finally:
        first.close()
        second.close()


def test_heartbeats_reach_an_idle_stream(server: ServerProcess) -> None:
    stream = server.stream("idle")
    try:
        stream.next_event()
        assert stream.next_event(HEARTBEAT * 4, comments=True).comment
    finally:
        stream.close()


def test_a_slow_consumer_neither_delays_the_other_nor_outlives_the_write_timeout(
    server: ServerProcess,
) -> None:
    fast = server.stream("slow", BIG)
    fast.counter()
    before = server.open_fds()
    slow = server.stream("slow", BIG, rcvbuf=4096)  # reads its first bytes, then nothing
    try:
        # Enough changes to fill every buffer between the server and the slow client
        # several times over: from then on its writes wait, and must not hold up others.
        for n in range(1, 41):
            server.change("slow")
            sent = time.monotonic()
            assert fast.counter(WRITE_TIMEOUT * 2) == n
            # A viewer held up by the slow one would wait for the whole write timeout.
            assert time.monotonic() - sent < WRITE_TIMEOUT / 2, f"change {n} was held up"
        # The slow client is dropped once a write has waited for write_timeout.
        if server.server == "uvicorn":
            # Its connection is aborted: the server holds its socket no longer, although
            # the client has not read or closed anything (issue 8, item 6).
            deadline = time.monotonic() + WRITE_TIMEOUT + 5
            while server.open_fds() > before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.open_fds() == before
        else:
            # No abort there (docs/live.md): the server closes the connection once the
            # client has read what was queued for it.
            time.sleep(WRITE_TIMEOUT + 1)
        slow.wait_closed(10)
        assert not slow.finished  # dropped, not ended cleanly
        server.change("slow")
        assert fast.counter() == 41  # the other viewer carries on
    finally:
        slow.close()
        fast.close()


def test_streams_go_through_the_middleware(server: ServerProcess) -> None:
    stream = server.stream("encoding")
    try:
        stream.counter()
        if server.prefix:  # GZipMiddleware leaves event streams uncompressed
            assert "content-encoding" not in stream.headers
        else:  # livepages compresses, flushed per event
            assert stream.headers["content-encoding"] == "gzip"
    finally:
        stream.close()


@pytest.mark.parametrize("kind", SERVERS)
def test_sigterm_ends_open_streams(kind: str) -> None:
    process = ServerProcess(kind, "plain")
    try:
        stream = process.stream("stop")
        idle, tab = _keep_alive_connection(process)
        stream.counter()
        started = time.monotonic()
        process.terminate()
        stream.wait_closed(5)
        elapsed = time.monotonic() - started
        if kind == "uvicorn":  # livepages.server.run ends streams cleanly, at once
            assert stream.finished
            assert elapsed < 2.0, f"the stream ended after {elapsed:.2f} s"
            # A page reconnecting meanwhile is told to retry, never 204 (which stops it).
            assert _stream_on(idle, process, tab) in (503, None)
        assert process.process.wait(timeout=10) in (0, -15)
    finally:
        process.stop()
        idle.close()


def _keep_alive_connection(process: ServerProcess) -> tuple[socket.socket, str]:
    """A connection that loaded the page and stays open, as a browser keeps one."""
    sock = socket.create_connection(("127.0.0.1", process.port))
    sock.sendall(f"GET {process.page('stop')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    sock.settimeout(5)
    response = b""
    while b"</html>" not in response:
        response += sock.recv(65536)
    return sock, tab_of(response.decode())


def _stream_on(sock: socket.socket, process: ServerProcess, tab: str) -> int | None:
    """Request the stream on ``sock``: the status, or None if the connection was closed."""
    request = f"GET {process.page('stop')}/_live HTTP/1.1\r\nHost: x\r\nX-LP-Tab: {tab}\r\n\r\n"
    try:
        sock.sendall(request.encode())
        head = sock.recv(65536)
    except (ConnectionError, TimeoutError):
        return None
    return int(head.split()[1]) if head else None
