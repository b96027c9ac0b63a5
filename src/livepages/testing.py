"""Helpers for testing livepages apps.

``Client`` loads pages, opens their live streams and yields the Datastar events
they send, and calls actions the way the page's Datastar would (with the tab
and CSRF headers, and the client's cookies). It drives an app in process, or a
real server given its base URL; both modes have the same API::

    async with Client(app) as client:                       # in process
        page = await client.get("/rooms/42")
        async with page.stream() as stream:
            first = await stream.next_event()       # the initial render
            await page.action("send", {"text": "hi"})
            patch = await stream.next_event()
            assert "hi" in patch.elements

    async with Client("http://127.0.0.1:8000") as client:   # a real server
        ...

``LiveServer`` runs any ASGI app under a real uvicorn server on 127.0.0.1 in a
background thread, for tests that need real HTTP (a browser, the Datastar
conformance runner). ``goto_live`` and ``watch_console`` help browser tests
(Playwright's sync API); this module never imports Playwright itself.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import html
import json
import re
import socket
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import httpx
import uvicorn
from starlette.types import ASGIApp, Message

from livepages.protocol import ACTION_PREFIX, CSRF_SIGNAL, LIVE_PATH, TAB_SIGNAL

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Error
    from playwright.sync_api import Page as BrowserPage

__all__ = [
    "Client",
    "DatastarEvent",
    "LiveServer",
    "LiveStream",
    "LoadedPage",
    "PageWiring",
    "SSEParser",
    "goto_live",
    "parse_events",
    "watch_console",
]


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


# -- server-sent events ---------------------------------------------------------------


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
    """The complete events in ``text`` and the unfinished rest.

    A heartbeat comment is an event with ``comment=True``; a ``data:`` line is
    filed under its first word (``elements``, ``selector``, ``signals``...).
    """
    *blocks, rest = text.split("\n\n")
    return [_parse_block(block) for block in blocks], rest


def _parse_block(block: str) -> DatastarEvent:
    event = DatastarEvent(type="")
    for line in block.split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if line.startswith(":"):
            event.comment = True
        elif name == "event":
            event.type = value
        elif name == "id":
            event.id = value
        elif name == "data":
            key, _, content = value.partition(" ")
            event.data.setdefault(key, []).append(content)
    return event


class SSEParser:
    """Turns a stream's bytes, in chunks of any size, into events (``parse_events``)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._rest = ""

    def feed(self, data: bytes) -> list[DatastarEvent]:
        """The events that ``data`` completes (a character may span two chunks)."""
        events, self._rest = parse_events(self._rest + self._decoder.decode(data))
        return events


# -- a page as its document wires it ----------------------------------------------------

_SIGNALS = re.compile(r'<body data-signals="([^"]*)"')
_LIVE = re.compile(r'<[a-z]+ id="lp-live"[^>]* data-(?:init|effect)="([^"]*)"')
# A page with reflected query fields opens its stream at its path plus the address
# bar's query (``livepages.reflect``).
_GET = re.compile(r"@get\('((?:[^'\\]|\\.)*)'( \+ location\.search)?")
_JS_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)")
_JS_CHARACTERS = {"n": "\n", "r": "\r"}


@dataclass(frozen=True, slots=True)
class PageWiring:
    """What a page's document gives its Datastar: tab id, CSRF token, stream URL.

    ``tab`` and ``csrf`` are ``""`` and ``live_url`` is ``None`` when the
    document has none (a page that is not live, an error page).
    """

    tab: str = ""
    csrf: str = ""
    live_url: str | None = None
    #: The stream's URL takes the page's query (a page with reflected fields).
    live_query: bool = False

    @classmethod
    def read(cls, document: str) -> PageWiring:
        """The wiring of a livepages document."""
        signals = _SIGNALS.search(document)
        text = html.unescape(signals.group(1)) if signals else ""
        live = _LIVE.search(document)
        url = _GET.search(html.unescape(live.group(1))) if live else None
        return cls(
            tab=_signal(text, TAB_SIGNAL),
            csrf=_signal(text, CSRF_SIGNAL),
            live_url=_js_unquote(url.group(1)) if url else None,
            live_query=bool(url and url.group(2)),
        )


def _signal(signals: str, name: str) -> str:
    match = re.search(re.escape(name) + r": '((?:[^'\\]|\\.)*)'", signals)
    return _js_unquote(match.group(1)) if match else ""


def _js_unquote(text: str) -> str:
    """The value of a single-quoted JavaScript string's body (as ``js_string`` writes it)."""

    def character(match: re.Match[str]) -> str:
        escape = match.group(1)
        if len(escape) > 1:
            return chr(int(escape[1:], 16))
        return _JS_CHARACTERS.get(escape, escape)

    return _JS_ESCAPE.sub(character, text)


# -- live streams -------------------------------------------------------------------------

#: A stream is quiet until the next change or heartbeat: no read timeout.
_STREAM_TIMEOUT = httpx.Timeout(5.0, read=None)


class LiveStream:
    """A page's live stream, read as a browser's ``@get`` reads it.

    In process the app is called with this stream's ASGI ``receive`` and
    ``send``; against a server the stream is a real HTTP request. Either way the
    body goes through one ``SSEParser`` into ``events``. Clear ``reading`` to
    play a slow client: in process the app's ``send`` then waits, over HTTP the
    socket fills up.
    """

    def __init__(self, client: Client, request: httpx.Request) -> None:
        self.client = client
        #: The request as sent (the client's cookies included).
        self.request = request
        #: The request as an ASGI scope: what an app in process receives.
        self.scope = _scope_of(request)
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.events: asyncio.Queue[DatastarEvent] = asyncio.Queue()
        #: Set once the response has finished (not when it was cut).
        self.ended = asyncio.Event()
        #: Cleared to make the stream a slow client whose socket is full.
        self.reading = asyncio.Event()
        self.reading.set()
        self.received_bytes = 0
        self._responded = asyncio.Event()
        self._requested = False
        self._gone = asyncio.Event()
        self._parser = SSEParser()
        self._task: asyncio.Task[None] | None = None

    async def open(self, wait: float = 5.0) -> LiveStream:
        """Send the request; returns once the response has started (or after ``wait`` s)."""
        run = self._call_app() if self.client.in_process else self._fetch()
        self._task = asyncio.get_running_loop().create_task(run)
        responded = asyncio.get_running_loop().create_task(self._responded.wait())
        await asyncio.wait(
            {self._task, responded}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
        )
        responded.cancel()
        if self._task.done():
            self._task.result()
        return self

    async def _call_app(self) -> None:
        await self.client.app(self.scope, self._receive, self._send)

    async def _receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        """The ASGI ``send`` of the app in process."""
        if message["type"] == "http.response.start":
            head = httpx.Response(
                message["status"], headers=message.get("headers", []), request=self.request
            )
            self.client.http.cookies.extract_cookies(head)  # as httpx does over HTTP
            self._start(head)
            return
        await self._body(message.get("body", b""), more=message.get("more_body", False))

    async def _fetch(self) -> None:
        """The request over HTTP (httpx keeps the response's cookies)."""
        response = await self.client.http.send(self.request, stream=True)
        try:
            self._start(response)
            async for chunk in response.aiter_bytes():
                await self._body(chunk, more=True)
            await self._body(b"", more=False)
        except httpx.TransportError:
            return  # the connection was cut: the stream is over, though it never ended
        finally:
            await response.aclose()

    def _start(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.headers = dict(response.headers.items())
        self._responded.set()

    async def _body(self, body: bytes, *, more: bool) -> None:
        await self.reading.wait()
        self.received_bytes += len(body)
        for event in self._parser.feed(body):
            self.events.put_nowait(event)
        if not more:
            self.ended.set()
            self._gone.set()  # as uvicorn does: a finished response reads as a disconnect

    async def _next(self, comments: bool) -> DatastarEvent:
        while True:
            event = await self.events.get()
            if comments or not event.comment:
                return event

    async def next_event(self, wait: float = 5.0, *, comments: bool = False) -> DatastarEvent:
        """The next event within ``wait`` seconds (heartbeat comments skipped unless asked)."""
        return await asyncio.wait_for(self._next(comments), wait)

    async def until(
        self, wanted: Callable[[DatastarEvent], bool], wait: float = 5.0
    ) -> list[DatastarEvent]:
        """The events up to and including the first ``wanted`` one, within ``wait`` seconds."""

        async def scan() -> list[DatastarEvent]:
            seen = [await self._next(False)]
            while not wanted(seen[-1]):
                seen.append(await self._next(False))
            return seen

        return await asyncio.wait_for(scan(), wait)

    async def wait_for(
        self, wanted: Callable[[DatastarEvent], bool], wait: float = 5.0
    ) -> DatastarEvent:
        """The first ``wanted`` event within ``wait`` seconds; those before it are skipped."""
        return (await self.until(wanted, wait))[-1]

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
        if self._task is None:
            return
        if not self.client.in_process:
            self._task.cancel()  # closing the connection is what the server sees
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, 5)

    async def __aenter__(self) -> LiveStream:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _scope_of(request: httpx.Request) -> dict[str, Any]:
    url = request.url
    port = url.port or (443 if url.scheme == "https" else 80)
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": urllib.parse.unquote(url.path),
        "raw_path": url.raw_path.split(b"?")[0],
        "root_path": "",
        "query_string": url.query,
        "headers": [(name.lower(), value) for name, value in request.headers.raw],
        "client": ("127.0.0.1", 50000),
        "server": (url.host, port),
    }


# -- pages and the client -------------------------------------------------------------------


@dataclass
class LoadedPage:
    """A page as loaded by ``Client.get``: the response and what its Datastar would send."""

    client: Client
    url: str
    response: httpx.Response
    tab: str
    csrf: str
    #: The stream URL the document opens (``None`` for a page that is not live).
    live_url: str | None = None

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
        """The live stream that the document opens (use ``async with``, or ``open()``)."""
        if self.live_url is None:
            raise ValueError(f"{self.url} opens no live stream")
        url = self.response.url.join(self.live_url)
        return self.client.stream(str(url), headers={**self.headers, **(headers or {})})

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
        """Call one of the page's actions as its Datastar would.

        Signals go as a JSON body, or in the ``datastar`` query for GET and
        DELETE; ``form`` and ``files`` as a form, as ``contentType: 'form'`` does.
        """
        page = self.response.url
        target = page.copy_with(path=page.path.rstrip("/") + ACTION_PREFIX + name)
        all_headers = {**self.headers, **(headers or {})}
        http = self.client.http
        if form is not None or files is not None:
            return await http.request(method, target, data=form, files=files, headers=all_headers)
        if method.upper() in ("GET", "DELETE"):  # as Datastar: signals in the query
            datastar = {"datastar": json.dumps(dict(signals or {}))}
            return await http.request(method, target, params=datastar, headers=all_headers)
        return await http.request(method, target, json=dict(signals or {}), headers=all_headers)


class Client:
    """Loads pages, opens live streams and calls actions, like a browser with Datastar.

    ``Client(app)`` drives an ASGI app in process (``async with`` runs the app's
    start-up and shut-down; ``base_url`` is the origin its requests name).
    ``Client("http://127.0.0.1:8000")`` talks to a real server at that base
    URL. Both keep cookies in one jar (``http.cookies``) and answer with the
    same ``LoadedPage`` and ``LiveStream``; ``http`` is the underlying
    ``httpx.AsyncClient`` for any other request.
    """

    def __init__(self, target: ASGIApp | str, base_url: str | None = None) -> None:
        if isinstance(target, str):
            if base_url is not None:
                raise TypeError("give a server's URL or an app and its base_url, not both")
            self._app: ASGIApp | None = None
            self.base_url = target
            self.http = httpx.AsyncClient(base_url=target, follow_redirects=False)
        else:
            self._app = target
            self.base_url = base_url or "http://testserver"
            self.http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=target, raise_app_exceptions=False),
                base_url=self.base_url,
                follow_redirects=False,
            )
        self._streams: list[LiveStream] = []

    @property
    def in_process(self) -> bool:
        """Whether this client drives an app in process (not a server over HTTP)."""
        return self._app is not None

    @property
    def app(self) -> ASGIApp:
        """The app driven in process (``RuntimeError`` for a client of a real server)."""
        if self._app is None:
            raise RuntimeError(f"this client talks to {self.base_url}, not to an app in process")
        return self._app

    async def get(self, url: str, **kwargs: Any) -> LoadedPage:
        """Load a page; its tab id, CSRF token and stream URL are read from the document."""
        response = await self.http.get(url, **kwargs)
        wiring = PageWiring.read(response.text)
        live_url = wiring.live_url
        if live_url is not None and wiring.live_query and response.url.query:
            live_url += "?" + response.url.query.decode()
        return LoadedPage(self, url, response, wiring.tab, wiring.csrf, live_url)

    def stream(
        self, path: str, query: str = "", headers: Mapping[str, str] | None = None
    ) -> LiveStream:
        """A GET stream to ``path`` (with the client's cookies); open it to send it.

        The body comes uncompressed unless ``headers`` ask for an encoding (over
        HTTP httpx then decodes it; in process the parser gets it as sent).
        """
        all_headers = httpx.Headers({"Accept-Encoding": "identity"})
        all_headers.update(headers or {})
        request = self.http.build_request(
            "GET", path, params=query or None, headers=all_headers, timeout=_STREAM_TIMEOUT
        )
        stream = LiveStream(self, request)
        self._streams.append(stream)
        return stream

    async def __aenter__(self) -> Client:
        startup = getattr(self._app, "startup", None)
        if startup is not None:
            await startup()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for stream in self._streams:
            await stream.close()
        shutdown = getattr(self._app, "shutdown", None)
        if shutdown is not None:
            await shutdown()
        await self.http.aclose()


# -- browsers (Playwright's sync API) --------------------------------------------------------


def goto_live(page: BrowserPage, url: str) -> None:
    """Load ``url`` in the browser and return once the page's live stream has answered 200.

    Datastar opens the stream once it has wired the page, so after this a click
    reaches its action (before, a form might still submit natively).
    """
    live_path = urllib.parse.urlsplit(url).path.rstrip("/") + LIVE_PATH
    with page.expect_response(
        lambda response: urllib.parse.urlsplit(response.url).path == live_path
    ) as live:
        page.goto(url)
    if live.value.status != 200:
        raise AssertionError(f"the live stream of {url} answered {live.value.status}")


def watch_console(page: BrowserPage) -> list[str]:
    """A list that collects the page's console errors and uncaught exceptions from now on."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    def on_page_error(error: Error) -> None:
        problems.append(f"page error: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return problems
