"""livepages.server.run: a stop ends live streams cleanly instead of waiting on them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from livepages import App, Page
from livepages.server import livepages_apps

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import contextlib
    import sys
    from dataclasses import dataclass
    from livepages import App, Event, Page
    from livepages.server import run

    @dataclass
    class Tick(Event, subject="tick"):
        n: int

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async def loop():  # background work that publishes until the lifespan ends
            n = 0
            while True:
                n += 1
                await app.publish(Tick(n=n))
                await asyncio.sleep(0.01)
        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = App(lifespan=lifespan)

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "<p id='hi'>hi</p>"

    run(app, port=int(sys.argv[1]), log_level="warning")
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[str]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


def test_a_stop_ends_open_streams_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, str(script), str(port)], stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_serving(url + "/", process)
        document = httpx.get(url + "/").text
        tab = re.search(r"_tab: &#x27;([^&]+)&#x27;", document)
        assert tab is not None
        with httpx.stream("GET", url + "/_live", headers={"X-LP-Tab": tab.group(1)}) as stream:
            chunks = stream.iter_bytes()
            assert b"hi" in next(chunks)
            os.kill(process.pid, signal.SIGTERM)
            # The response ends with its terminating chunk: httpx would raise
            # RemoteProtocolError on a connection cut mid-stream.
            rest = b"".join(chunks)
        assert rest == b""
        # uvicorn re-raises the signal it caught once it has shut down gracefully.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
        assert process.stderr is not None
        errors = process.stderr.read()
        assert "Application shutdown failed" not in errors
        assert "Traceback" not in errors
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_livepages_apps_finds_mounted_apps() -> None:
    inner, outer = App(), App()

    @inner.page("/")
    class Inner(Page):
        def render(self) -> str:
            return ""

    parent = Starlette(routes=[Mount("/a", app=inner), Mount("/b", app=Starlette())])
    outer.mount("/x", parent)
    assert list(livepages_apps(parent)) == [inner]
    assert list(livepages_apps(outer)) == [outer, inner]
