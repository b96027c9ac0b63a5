"""livepages.server.run bounds request heads and idle connections, with httptools and h11.

Each test talks to a real server process over raw sockets, because the limits
live in uvicorn's protocol layer, below anything an in-process client reaches.
"""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from livepages.limits import HttpToolsProtocol, ServerLimits, protocol_class
from livepages.server import run
from tests.test_server import free_port, wait_until_serving

#: The limits of the test server: small, so that the tests are quick.
MAX_HEAD = 32 * 1024
TIMEOUT = 1.0

SCRIPT = textwrap.dedent(
    """
    import sys
    from livepages import App, Page
    from livepages.server import run

    async def echo(scope, receive, send):  # answers with the size of the body it read
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = str(size).encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    app = App()

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "<p>home</p>"

    app.mount("/echo", echo)
    port, http, max_head, timeout = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    run(app, port=int(port), http=http, max_header_size=int(max_head),
        header_timeout=float(timeout), idle_timeout=float(timeout), log_level="warning")
    """
)


class Server:
    """A running server process and where to reach it."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def rss(self) -> int:
        """The process's resident memory, in bytes."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024


@contextlib.contextmanager
def serving(tmp_path: Path, argv: list[str], port: int) -> Iterator[Server]:
    """Run the server ``argv`` starts on ``port``; stop it by its PID."""
    process = subprocess.Popen(argv, cwd=tmp_path, text=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", process)
        yield Server(process, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("server")
    (tmp_path / "serve.py").write_text(SCRIPT)
    port = free_port()
    argv = [sys.executable, "serve.py", str(port), request.param, str(MAX_HEAD), str(TIMEOUT)]
    with serving(tmp_path, argv, port) as running:
        yield running


def head(size: int, *, end: bool = True, path: str = "/") -> bytes:
    """A GET head of about ``size`` bytes, most of them in one header line."""
    start = f"GET {path} HTTP/1.1\r\nHost: test\r\nX-Pad: ".encode()
    return start + b"a" * max(0, size - len(start) - 4) + (b"\r\n\r\n" if end else b"")


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset ends it too)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def send_refused_head(server: Server, size: int) -> bytes:
    """Send a head of ``size`` bytes at once; what came back before the close."""
    with server.connect() as sock:
        # The server may refuse and close before it has all the bytes.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head(size))
        return read_all(sock)


def test_a_head_over_the_limit_is_431_and_one_under_it_is_served(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(head(MAX_HEAD - 100)[:-4] + b"\r\nConnection: close\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 200 ")
    # Sent in one piece the server reads whole, so the reply is not lost to a reset.
    with server.connect() as sock:
        sock.sendall(head(MAX_HEAD + 100))
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close" in reply


def test_bodies_and_later_heads_do_not_count_towards_the_limit(server: Server) -> None:
    body = b"x" * (4 * MAX_HEAD)
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/echo/", content=body).text == str(len(body))
        # Many heads on one connection, more than MAX_HEAD together.
        for _ in range(8):
            response = client.get("/", headers={"X-Pad": "a" * (MAX_HEAD // 4)})
            assert response.status_code == 200
    # Pipelined: a big body, then the next head, in one write.
    post = b"POST /echo/ HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % len(body)
    close = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    with server.connect() as sock:
        sock.sendall(post + body + close)
        replies = read_all(sock)
    assert replies.count(b"HTTP/1.1 200 ") == 2


def test_a_huge_head_is_refused_without_slowing_other_requests(server: Server) -> None:
    replies: list[bytes] = []

    def flood() -> None:
        for _ in range(10):
            replies.append(send_refused_head(server, 1024 * 1024))

    with httpx.Client(base_url=server.url) as client:
        client.get("/")  # connected and warm
        sender = threading.Thread(target=flood)
        sender.start()
        served = 0
        while sender.is_alive():
            # Each answered while the floods are being read and refused: the server reads
            # a refused head no further than its limit and never stops serving the rest.
            # (No timing bound here: a loaded machine may be slow, never stuck.)
            assert client.get("/", timeout=5).status_code == 200
            served += 1
        sender.join()
    assert served >= 1
    # The client may see the 431, or a reset if its own bytes were still arriving.
    assert all(reply == b"" or reply.startswith(b"HTTP/1.1 431 ") for reply in replies), replies


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_a_header_flood_does_not_grow_memory(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        client.get("/")
    before = server.rss()
    sockets = [server.connect() for _ in range(4)]
    try:
        for sock in sockets:  # 8 MiB of one unfinished header on each, as fast as they go
            sock.sendall(head(0, end=False))
            try:
                for _ in range(128):
                    sock.sendall(b"a" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
        time.sleep(0.2)  # for the server to read what was sent
        grown = server.rss() - before
    finally:
        for sock in sockets:
            sock.close()
    assert grown < 4 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"
    assert httpx.get(server.url + "/").status_code == 200


def test_a_half_sent_head_is_408_after_the_header_timeout(server: Server) -> None:
    with server.connect() as sock:
        started = time.monotonic()
        # A byte every 0.1 s for 0.7 s: the deadline runs from the first byte, so
        # this does not push it back.
        for byte in head(7, end=False):
            sock.sendall(bytes([byte]))
            if select.select([sock], [], [], 0.1)[0]:
                break
        reply = read_all(sock)
        elapsed = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 0.6, elapsed


def test_an_idle_connection_is_closed_after_the_idle_timeout(server: Server) -> None:
    with server.connect() as sock:  # a connection that never sends a byte
        started = time.monotonic()
        assert read_all(sock) == b""
        assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + 1
    with server.connect() as sock:  # and one that is idle after a response
        sock.sendall(head(0))
        started = time.monotonic()
        assert read_all(sock).startswith(b"HTTP/1.1 200 ")
        assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + 1


def test_the_protocols_serve_under_plain_uvicorn(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from livepages import App, Page\napp = App()\n\n"
        "@app.page('/')\nclass Home(Page):\n    def render(self) -> str:\n        return ''\n"
    )
    port = free_port()
    protocol = "livepages.limits:HttpToolsProtocol"
    argv = [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)]
    argv += ["--log-level", "warning", "--timeout-keep-alive", "1", "--http", protocol]
    with serving(tmp_path, argv, port) as server, server.connect() as sock:
        started = time.monotonic()
        assert read_all(sock) == b""  # plain uvicorn keeps a silent connection open
        assert time.monotonic() - started < 3


def test_limits_are_checked() -> None:
    assert ServerLimits() == ServerLimits(64 * 1024, 10.0, 5.0)
    with pytest.raises(ValueError, match="header_timeout must be positive"):
        ServerLimits(header_timeout=0)
    assert protocol_class("auto") is HttpToolsProtocol
    with pytest.raises(ValueError, match="http must be"):
        protocol_class("zttp")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout_keep_alive is set by livepages' idle_timeout"):
        run(object(), timeout_keep_alive=3)
