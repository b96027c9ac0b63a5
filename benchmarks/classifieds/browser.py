"""One virtual user's browser: cookies, page loads, actions and live streams, timed.

A ``Browser`` sends each request to one of the servers' base URLs, chosen at random
per request, as a load balancer without sticky sessions would: a page may load from
one process, its stream run on the other and its actions go to either. Cookies and
connections are the user's own, as in a browser. One connection pool shared by every
user would be cheaper to set up, but httpcore's pool walks all its connections (500
held by streams) for every request that comes and goes: with 500 users, requests
waited seconds in it for a connection while the servers were idle.

Every request is timed into the run's ``Recorder`` under a route name, and every
failure (a status other than the expected one, a refused action, a timeout, a cut
connection) is recorded as an error there and raised as ``Failed``, so that the
virtual user can stop what it was doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.classifieds.outcome import Outcome, read_outcome
from benchmarks.classifieds.record import Recorder
from livepages.protocol import ACTION_PREFIX
from livepages.testing import DatastarEvent, PageWiring, SSEParser

__all__ = [
    "CONNECTIONS",
    "KEEPALIVE",
    "Browser",
    "Failed",
    "Page",
    "Stream",
    "route_of",
    "user_transport",
]

# Ids in paths become placeholders in route names: /chats/12 -> /chats/{id}.
_ID = re.compile(r"/\d+(?=/|$)")


def route_of(method: str, path: str) -> str:
    """The route name of a request: its method and path, ids and query left out."""
    bare, _, query = path.partition("?")
    name = f"{method} {_ID.sub('/{id}', bare)}"
    return name + "?query" if query else name


#: How long an idle connection is kept for the next request: well under the
#: server's own keep-alive timeout (uvicorn's is 5 s), so that a request never
#: goes out on a connection that the server is closing at that moment (the
#: connection reset that a browser would retry on its own).
KEEPALIVE = 1.0


#: The connections a user may hold at once: its page's stream, a listing's stream
#: while it looks at one, and a request.
CONNECTIONS = 4


@functools.cache
def _tls() -> ssl.SSLContext:
    # The servers speak plain HTTP; httpx makes a TLS context per transport all the
    # same, and making 500 of them costs seconds: one serves every user.
    return ssl.create_default_context()


def user_transport() -> httpx.AsyncHTTPTransport:
    """One user's connection pool."""
    limits = httpx.Limits(
        max_connections=CONNECTIONS,
        max_keepalive_connections=CONNECTIONS,
        keepalive_expiry=KEEPALIVE,
    )
    return httpx.AsyncHTTPTransport(verify=_tls(), limits=limits, retries=0)


class Failed(Exception):
    """A request failed; it has been recorded as an error already."""


@dataclass(frozen=True, slots=True)
class Page:
    """A loaded page: its path, its document and what its Datastar would send."""

    path: str
    html: str
    wiring: PageWiring

    @property
    def headers(self) -> dict[str, str]:
        """The headers of the page's own Datastar requests."""
        return {
            "datastar-request": "true",
            "X-LP-Tab": self.wiring.tab,
            "X-CSRF-Token": self.wiring.csrf,
        }


class Browser:
    """A user's cookies and requests, spread over ``bases``."""

    def __init__(
        self,
        bases: Sequence[str],
        recorder: Recorder,
        rng: random.Random,
        timeout: float,
    ) -> None:
        self.bases = bases
        self.recorder = recorder
        self.rng = rng
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            transport=user_transport(),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        )

    def base(self) -> str:
        """The server that takes the next request."""
        return self.bases[0] if len(self.bases) == 1 else self.rng.choice(self.bases)

    async def _send(
        self, route: str, method: str, path: str, **kwargs: Any
    ) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        try:
            response = await self.http.request(method, self.base() + path, **kwargs)
        except httpx.TimeoutException:
            self.recorder.error(route, f"no answer within {self.timeout:g} s")
            raise Failed(route) from None
        except httpx.HTTPError as exc:
            self.recorder.error(route, f"{type(exc).__name__} {exc}".strip())
            raise Failed(route) from None
        return response, time.monotonic() - started

    async def get(self, path: str) -> Page:
        """Load the page at ``path`` (a 200 with a live stream, or ``Failed``)."""
        route = route_of("GET", path)
        response, seconds = await self._send(route, "GET", path)
        if response.status_code != 200:
            self.recorder.error(route, f"status {response.status_code}")
            raise Failed(route)
        self.recorder.request(route, seconds)
        return Page(path, response.text, PageWiring.read(response.text))

    async def fetch(self, path: str) -> bytes:
        """Any other GET (a photo): its body, on a 200."""
        route = route_of("GET", path)
        response, seconds = await self._send(route, "GET", path)
        if response.status_code != 200:
            self.recorder.error(route, f"status {response.status_code}")
            raise Failed(route)
        self.recorder.request(route, seconds)
        return response.content

    async def action(
        self, page: Page, name: str, signals: Mapping[str, Any] | None = None
    ) -> Outcome:
        """Call the page's action ``name`` with ``signals``, as its Datastar would."""
        path = page.path.partition("?")[0].rstrip("/") + ACTION_PREFIX + name
        route = route_of("POST", path)
        response, seconds = await self._send(
            route, "POST", path, json=dict(signals or {}), headers=page.headers
        )
        # 204: an action with nothing to patch (a chat's "typing" and "seen").
        if response.status_code not in (200, 204):
            self.recorder.error(route, f"status {response.status_code}")
            raise Failed(route)
        outcome = read_outcome(response.text)
        if outcome.error is not None:
            self.recorder.error(route, outcome.error)
            raise Failed(route)
        self.recorder.request(route, seconds)
        return outcome

    async def redirected(
        self, page: Page, name: str, signals: Mapping[str, Any], to: re.Pattern[str]
    ) -> re.Match[str]:
        """Call an action that must redirect to a URL matching ``to``; the match."""
        outcome = await self.action(page, name, signals)
        match = to.fullmatch(outcome.redirect or "")
        if match is None:
            route = route_of("POST", page.path + ACTION_PREFIX + name)
            self.recorder.error(route, f"redirected to {outcome.redirect!r}, not {to.pattern}")
            raise Failed(route)
        return match

    def stream(self, page: Page, on_event: Callable[[DatastarEvent], None]) -> Stream:
        """The page's live stream (not open yet), which passes each event to ``on_event``."""
        if page.wiring.live_url is None:
            route = route_of("GET", page.path)
            self.recorder.error(route, "the page opens no live stream")
            raise Failed(route)
        url = page.wiring.live_url
        if page.wiring.live_query and "?" in page.path:
            url += "?" + page.path.partition("?")[2]
        return Stream(self, url, page.headers, on_event)

    async def close(self) -> None:
        """Close the user's connections (again: nothing)."""
        if not self.http.is_closed:
            await self.http.aclose()


class Stream:
    """A live stream held open until ``close``; its end before that is an error."""

    def __init__(
        self,
        browser: Browser,
        path: str,
        headers: Mapping[str, str],
        on_event: Callable[[DatastarEvent], None],
    ) -> None:
        self.browser = browser
        self.path = path
        self.headers = {**headers, "Accept-Encoding": "identity"}
        self.on_event = on_event
        self.route = "GET " + route_of("GET", path).removeprefix("GET ") + " (stream)"
        self.first = asyncio.Event()
        self.closing = False
        self.broken = False
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect, and return once the first event came (``Failed`` if it did not in time)."""
        started = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._read())
        first = asyncio.get_running_loop().create_task(self.first.wait())
        await asyncio.wait(
            {self._task, first}, timeout=self.browser.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        first.cancel()
        if self.first.is_set():
            self.browser.recorder.request(self.route, time.monotonic() - started)
            return
        if not self._task.done():
            self.browser.recorder.error(
                self.route, f"no first event within {self.browser.timeout:g} s"
            )
        await self.close()
        raise Failed(self.route)

    def _fail(self, what: str) -> None:
        if not self.closing and not self.broken:
            self.broken = True
            self.browser.recorder.error(self.route, what)

    async def _read(self) -> None:
        browser = self.browser
        timeout = httpx.Timeout(browser.timeout, read=None)  # quiet between changes
        url = browser.base() + self.path
        try:
            async with browser.http.stream(
                "GET", url, headers=self.headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    self._fail(f"status {response.status_code}")
                    return
                parser = SSEParser()
                async for chunk in response.aiter_bytes():
                    for event in parser.feed(chunk):
                        if not event.comment:
                            self.first.set()
                            self.on_event(event)
            self._fail("the stream ended")
        except httpx.HTTPError as exc:
            self._fail(f"the stream was cut: {type(exc).__name__} {exc}".strip())

    async def close(self) -> None:
        """Disconnect, as a tab being closed."""
        self.closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
