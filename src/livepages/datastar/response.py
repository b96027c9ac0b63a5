"""Streaming Datastar events over an ASGI HTTP response.

``ServerSentEventGenerator`` owns one ``text/event-stream`` response: it sends the
headers on ``start()``, writes each event as its own ASGI body message (so the
server flushes it at once), and serialises concurrent senders with a lock so
that two tasks can never interleave their bytes.

``DatastarResponse`` is the ASGI application most code wants: give it events,
an (async) iterable of events, or a coroutine function that receives the
generator, and it streams them, stopping cleanly when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from livepages.datastar import events

__all__ = ["DatastarResponse", "ServerSentEventGenerator", "sse_headers"]

EventSource = (
    bytes
    | Iterable[bytes]
    | AsyncIterable[bytes]
    | Callable[["ServerSentEventGenerator"], Awaitable[None]]
    | None
)


def sse_headers(scope: Scope, extra: Mapping[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    """The response headers of an event stream for this request.

    ``Connection: keep-alive`` is only valid in HTTP/1.1; HTTP/2 and HTTP/3
    forbid connection-specific headers, so it is left out there.
    """
    headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]
    if scope.get("http_version", "1.1") == "1.1":
        headers.append((b"connection", b"keep-alive"))
    if extra:
        headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    return headers


class ClientDisconnected(Exception):
    """Raised by a send after the client has gone away."""


class ServerSentEventGenerator:
    """Writes Datastar events to one ASGI response.

    Use it inside an ASGI app (or through ``DatastarResponse``)::

        sse = ServerSentEventGenerator(scope, receive, send)
        await sse.start()
        await sse.patch_elements('<div id="feed">1</div>')
    """

    __slots__ = ("_headers", "_lock", "_send", "closed", "scope", "started", "status_code")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.scope = scope
        self._send = send
        self._lock = asyncio.Lock()
        self._headers = sse_headers(scope, headers)
        self.status_code = status_code
        self.started = False
        self.closed = False

    async def start(self) -> None:
        """Send the status line and headers; an empty body chunk flushes them."""
        if self.started:
            return
        async with self._lock:
            if self.started:
                return
            await self._send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self._headers,
                }
            )
            await self._send({"type": "http.response.body", "body": b"", "more_body": True})
            self.started = True

    async def send(self, event: bytes) -> None:
        """Write one encoded event (or several concatenated) and flush it."""
        if not self.started:
            await self.start()
        if self.closed:
            raise ClientDisconnected
        async with self._lock:
            try:
                await self._send({"type": "http.response.body", "body": event, "more_body": True})
            except OSError as exc:  # the server reports a gone client this way
                self.closed = True
                raise ClientDisconnected from exc

    async def close(self) -> None:
        """Finish the response."""
        if self.closed:
            return
        if not self.started:
            await self.start()
        async with self._lock:
            self.closed = True
            with contextlib.suppress(OSError):  # the client may already be gone
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def patch_elements(self, elements: Any = None, **options: Any) -> None:
        """Send ``events.patch_elements(elements, **options)``."""
        await self.send(events.patch_elements(elements, **options))

    async def remove_elements(self, selector: str, **options: Any) -> None:
        """Send ``events.remove_elements(selector, **options)``."""
        await self.send(events.remove_elements(selector, **options))

    async def patch_signals(self, signals: Any, **options: Any) -> None:
        """Send ``events.patch_signals(signals, **options)``."""
        await self.send(events.patch_signals(signals, **options))

    async def remove_signals(self, paths: Any, **options: Any) -> None:
        """Send ``events.remove_signals(paths, **options)``."""
        await self.send(events.remove_signals(paths, **options))

    async def execute_script(self, script: str, **options: Any) -> None:
        """Send ``events.execute_script(script, **options)``."""
        await self.send(events.execute_script(script, **options))

    async def redirect(self, url: str) -> None:
        """Send ``events.redirect(url)``."""
        await self.send(events.redirect(url))


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


class DatastarResponse(Response):
    """An ASGI response that streams Datastar events.

    ``source`` is one encoded event, an iterable or async iterable of them, or
    ``async def stream(sse: ServerSentEventGenerator)`` which sends as it likes.
    The stream ends when the source is exhausted or the client disconnects,
    whichever comes first; a disconnect cancels the source. It is a Starlette
    ``Response``, so FastAPI and Starlette endpoints can return it as it is.
    """

    def __init__(
        self,
        source: EventSource = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        start_immediately: bool = True,
    ) -> None:
        self.source = source
        self.status_code = status_code
        self.start_immediately = start_immediately
        self.extra_headers = dict(headers) if headers else {}
        self.background = None
        self.init_headers(self.extra_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sse = ServerSentEventGenerator(
            scope, receive, send, status_code=self.status_code, headers=self.extra_headers
        )
        if self.start_immediately:
            await sse.start()
        producer = asyncio.ensure_future(self._produce(sse))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((producer, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (producer, watcher):
                task.cancel()
            await asyncio.gather(producer, watcher, return_exceptions=True)
        if producer.done() and not producer.cancelled():
            error = producer.exception()
            if error is not None and not isinstance(error, ClientDisconnected):
                raise error
        await sse.close()

    async def _produce(self, sse: ServerSentEventGenerator) -> None:
        source = self.source
        if source is None:
            return
        if isinstance(source, bytes):
            await sse.send(source)
        elif callable(source):
            await source(sse)
        elif isinstance(source, AsyncIterable):
            async for event in source:
                await sse.send(event)
        else:
            for event in source:
                await sse.send(event)
