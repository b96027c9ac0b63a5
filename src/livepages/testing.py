"""Helpers for testing livepages apps.

``Client`` drives an app in process: it loads pages, opens their live streams
and yields the Datastar events they send, and calls actions the way the page's
Datastar would (with the tab and CSRF headers)::

    async with Client(app) as client:
        page = await client.get("/rooms/42")
        async with page.stream() as stream:
            first = await stream.next_event()       # the initial render
            await page.action("send", {"text": "hi"})
            patch = await stream.next_event()
            assert "hi" in patch.elements

``LiveServer`` runs any ASGI app under a real uvicorn server on 127.0.0.1 in a
background thread, for tests that need real HTTP (a browser, the Datastar
conformance runner).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import httpx
import uvicorn
from starlette.types import ASGIApp, Message

from livepages.protocol import LIVE_PATH

__all__ = ["Client", "DatastarEvent", "LiveServer", "LiveStream", "LoadedPage"]


class LiveServer:
    """Serve an ASGI app on a free port of 127.0.0.1 until the block ends::

    with LiveServer(app) as server:
        httpx.get(server.url + "/")
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        lifespan: Literal["auto", "on", "off"] = "auto",
    ) -> None:
        self.app = app
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, lifespan=lifespan, log_level="warning", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="livepages-test-server", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """The server's base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._server.serve(sockets=[self._socket]))
        finally:
            self.loop.close()

    def start(self) -> None:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        for _ in range(500):
            if self._server.started:
                return
            if not self._thread.is_alive():
                raise RuntimeError("the test server failed to start")
            threading.Event().wait(0.01)
        raise RuntimeError("the test server did not start within 5 s")

    def stop(self) -> None:
        """End live streams, ask the server to shut down, and wait for its thread."""
        close_streams = getattr(self.app, "close_streams", None)
        if self.loop is not None and close_streams is not None and self._thread.is_alive():
            # uvicorn waits for open responses before it stops: end the streams first.
            future = asyncio.run_coroutine_threadsafe(close_streams(), self.loop)
            with contextlib.suppress(Exception):
                future.result(timeout=5)
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class DatastarEvent:
    """One parsed server-sent event."""

    type: str
    data: dict[str, list[str]] = field(default_factory=dict)
    id: str | None = None
    comment: bool = False

    @property
    def elements(self) -> str:
        """The HTML of a ``datastar-patch-elements`` event."""
        return "\n".join(self.data.get("elements", []))

    @property
    def signals(self) -> Any:
        """The JSON of a ``datastar-patch-signals`` event, decoded."""
        return json.loads("\n".join(self.data.get("signals", [])))

    def option(self, key: str) -> str | None:
        """A one-line option such as ``selector`` or ``mode``."""
        values = self.data.get(key)
        return values[0] if values else None


def parse_events(text: str) -> tuple[list[DatastarEvent], str]:
    """The complete events in ``text`` and the unfinished rest."""
    found = []
    *blocks, rest = text.split("\n\n")
    for block in blocks:
        event = DatastarEvent(type="")
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if line.startswith(":"):
                event.comment = True
            elif name == "event":
                event.type = value
            elif name == "id":
                event.id = value
            elif name == "data":
                key, _, content = value.partition(" ")
                event.data.setdefault(key, []).append(content)
        found.append(event)
    return found, rest


class LiveStream:
    """A page's live stream, driven in process like a browser's ``@get``."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        self.app = app
        self.scope = scope
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.events: asyncio.Queue[DatastarEvent] = asyncio.Queue()
        self.ended = asyncio.Event()
        self.started = asyncio.Event()
        #: Cleared to make the stream a slow client whose socket is full.
        self.reading = asyncio.Event()
        self.reading.set()
        self.received_bytes = 0
        self._gone = asyncio.Event()
        self._buffer = ""
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> Message:
        if not self.started.is_set():
            self.started.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            return
        await self.reading.wait()
        body = message.get("body", b"")
        self.received_bytes += len(body)
        self._buffer += body.decode()
        events, self._buffer = parse_events(self._buffer)
        for event in events:
            self.events.put_nowait(event)
        if not message.get("more_body", False):
            self.ended.set()
            self._gone.set()  # as uvicorn does: a finished response reads as a disconnect

    async def open(self) -> LiveStream:
        """Start the request; returns once the response has started."""
        self._task = asyncio.get_running_loop().create_task(
            self.app(self.scope, self._receive, self._send)  # type: ignore[arg-type]
        )
        for _ in range(1000):
            if self.status is not None or self._task.done():
                break
            await asyncio.sleep(0.001)
        if self._task.done():
            self._task.result()
        return self

    async def next_event(self, wait: float = 2.0, *, comments: bool = False) -> DatastarEvent:
        """The next event within ``wait`` seconds (heartbeat comments skipped unless asked)."""
        while True:
            event = await asyncio.wait_for(self.events.get(), wait)
            if comments or not event.comment:
                return event

    async def drain(self, quiet: float = 0.1) -> list[DatastarEvent]:
        """Every event that arrives until ``quiet`` seconds pass without one."""
        events = []
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                events.append(await self.next_event(quiet))
        return events

    async def close(self) -> None:
        """Disconnect, as a browser closing the tab."""
        self._gone.set()
        self.reading.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)

    async def __aenter__(self) -> LiveStream:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


@dataclass
class LoadedPage:
    """A page as loaded by ``Client.get``: the response and what its Datastar would send."""

    client: Client
    url: str
    response: httpx.Response
    tab: str
    csrf: str

    @property
    def status_code(self) -> int:
        """The page's HTTP status."""
        return self.response.status_code

    @property
    def html(self) -> str:
        """The document."""
        return self.response.text

    @property
    def headers(self) -> dict[str, str]:
        """What the page's own Datastar requests carry."""
        return {
            "datastar-request": "true",
            "X-LP-Tab": self.tab,
            "X-CSRF-Token": self.csrf,
        }

    def stream(self, headers: Mapping[str, str] | None = None) -> LiveStream:
        """The page's live stream (use ``async with``)."""
        path, _, query = self.url.partition("?")
        return self.client.stream(
            path.rstrip("/") + LIVE_PATH, query, {**self.headers, **(headers or {})}
        )

    async def action(
        self,
        name: str,
        signals: Mapping[str, Any] | None = None,
        *,
        form: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Call one of the page's actions as its Datastar would."""
        path, _, query = self.url.partition("?")
        target = path.rstrip("/") + "/_action/" + name + ("?" + query if query else "")
        all_headers = {**self.headers, **(headers or {})}
        if form is not None or files is not None:
            return await self.client.http.request(
                method, target, data=form, files=files, headers=all_headers
            )
        if method.upper() in ("GET", "DELETE"):  # as Datastar: signals in the query
            datastar = {"datastar": json.dumps(dict(signals or {}))}
            return await self.client.http.request(
                method, target, params=datastar, headers=all_headers
            )
        return await self.client.http.request(
            method, target, json=dict(signals or {}), headers=all_headers
        )


_SIGNALS = re.compile(r'<body data-signals="([^"]*)"')


class Client:
    """Drives an app in process: pages, live streams, actions, with the lifespan run."""

    def __init__(self, app: ASGIApp, base_url: str = "http://testserver") -> None:
        self.app = app
        self.base_url = base_url
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url=base_url,
            follow_redirects=False,
        )
        self._streams: list[LiveStream] = []

    async def get(self, url: str, **kwargs: Any) -> LoadedPage:
        """Load a page; its tab id and CSRF token are read from the document."""
        response = await self.http.get(url, **kwargs)
        tab = csrf = ""
        match = _SIGNALS.search(response.text)
        if match:
            signals = html.unescape(match.group(1))
            tab = _signal(signals, "_tab")
            csrf = _signal(signals, "_csrf")
        return LoadedPage(self, url, response, tab, csrf)

    def stream(
        self, path: str, query: str = "", headers: Mapping[str, str] | None = None
    ) -> LiveStream:
        """A GET stream to ``path`` with the client's cookies."""
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if cookie:
            raw_headers.append((b"cookie", cookie.encode()))
        raw_headers.append((b"host", urllib.parse.urlsplit(self.base_url).netloc.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": urllib.parse.unquote(path),
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        stream = LiveStream(self.app, scope)
        self._streams.append(stream)
        return stream

    async def __aenter__(self) -> Client:
        startup = getattr(self.app, "startup", None)
        if startup is not None:
            await startup()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for stream in self._streams:
            await stream.close()
        shutdown = getattr(self.app, "shutdown", None)
        if shutdown is not None:
            await shutdown()
        await self.http.aclose()


def _signal(signals: str, name: str) -> str:
    match = re.search(name + r": '([^']*)'", signals)
    return match.group(1) if match else ""
