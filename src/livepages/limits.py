"""Limits on request heads and idle connections, for uvicorn's HTTP/1.1 protocols.

uvicorn (up to at least 0.54) leaves three holes that ``livepages.server.run``
closes with the two protocol classes here, one per uvicorn HTTP implementation:

- **Head size.** httptools has no limit on the request line and headers, and
  joins the pieces of a header with ``bytes +=``: a 96 MiB header line costs
  seconds of CPU (quadratic) and all of its bytes in memory. Here the parser is
  never fed more than ``max_header_size`` bytes of a head; past them the client
  gets ``431`` and the connection closes. h11 gets the same limit (and the same
  431 instead of its own 400 at 16 KiB).
- **Head time.** A client may send a head one byte at a time, forever. Here a
  head must be complete ``header_timeout`` seconds after its first byte; past
  that the client gets ``408`` and the connection closes.
- **Idle connections.** uvicorn arms its keep-alive timer only once a response
  is complete, so a connection that never sends a byte stays open. Here the
  same timer (``idle_timeout``, uvicorn's ``timeout_keep_alive``) also runs
  from the moment a connection opens.

A refusal is written only when no earlier request of the connection is still
being answered (pipelining): otherwise the client would read it as that
request's response, so the connection just closes.
"""

from __future__ import annotations

import asyncio
import http
from dataclasses import dataclass
from typing import Any, Literal

import h11
import uvicorn
from uvicorn.protocols.http import h11_impl

__all__ = ["Config", "H11Protocol", "HttpToolsProtocol", "ServerLimits", "protocol_class"]

#: uvicorn's HTTP/1.1 implementations; ``auto`` is httptools when installed.
HTTP = Literal["auto", "httptools", "h11"]


@dataclass(frozen=True)
class ServerLimits:
    """What a client may send before its request reaches the app.

    ``max_header_size``: bytes of request line and headers (64 KiB); past it, 431.
    ``header_timeout``: seconds from a request's first byte to the end of its
    headers (10); past it, 408. ``idle_timeout``: seconds a connection may stay
    open with no request under way (5), before its first request as well as
    between requests (uvicorn's ``timeout_keep_alive``).
    """

    max_header_size: int = 64 * 1024
    header_timeout: float = 10.0
    idle_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_header_size", "header_timeout", "idle_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


class Config(uvicorn.Config):
    """uvicorn's ``Config``, serving HTTP/1.1 with the protocols below under ``limits``.

    ``options`` are ``uvicorn.Config``'s, except the two that ``limits`` sets.
    """

    def __init__(
        self, app: Any, *, limits: ServerLimits | None = None, http: HTTP = "auto", **options: Any
    ) -> None:
        for option, ours in (
            ("timeout_keep_alive", "idle_timeout"),
            ("h11_max_incomplete_event_size", "max_header_size"),
        ):
            if option in options:
                raise TypeError(f"{option} is set by livepages' {ours}")
        self.limits = limits or ServerLimits()
        super().__init__(
            app,
            http=protocol_class(http),
            # uvicorn annotates whole seconds but only hands the value to call_later.
            timeout_keep_alive=self.limits.idle_timeout,  # type: ignore[arg-type]
            h11_max_incomplete_event_size=self.limits.max_header_size,
            **options,
        )


def _refusal(status: int) -> bytes:
    """A complete response with ``status`` that closes the connection."""
    phrase = http.HTTPStatus(status).phrase
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(phrase)}\r\nconnection: close\r\n\r\n{phrase}"
    ).encode("ascii")


class _HeadLimits(asyncio.Protocol):
    """The limits, on top of one of uvicorn's HTTP/1.1 protocol classes.

    Subclasses say when the next bytes received belong to a request head.
    """

    # Set by uvicorn's protocol classes, which come after this one in the MRO.
    config: uvicorn.Config
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    timeout_keep_alive: int
    timeout_keep_alive_task: asyncio.TimerHandle | None

    _limits: ServerLimits
    _head_size: int = 0  # bytes of the current head fed to the parser
    _head_timer: asyncio.TimerHandle | None = None

    def _expects_head(self) -> bool:
        """Whether the bytes received next are (part of) a request head."""
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        config = self.config
        # Under plain uvicorn (``--http livepages.limits:H11Protocol``): the defaults.
        self._limits = config.limits if isinstance(config, Config) else ServerLimits()
        super().connection_made(transport)
        # uvicorn's data_received cancels this timer: the first byte ends idleness.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.transport.close
        )

    def data_received(self, data: bytes) -> None:
        # Once the connection is closing or handed over (a WebSocket upgrade), the rest
        # of ``data`` is not this protocol's to parse.
        while data and not self.transport.is_closing() and self.transport.get_protocol() is self:
            if not self._expects_head():
                # Body bytes do not count. The start of a pipelined head in the same
                # read as a body's end is not counted either: one read at most.
                super().data_received(data)
                return
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(
                    self._limits.header_timeout, self._head_late
                )
            room = self._limits.max_header_size - self._head_size
            piece, data = data[:room], data[room:]
            self._head_size += len(piece)
            super().data_received(piece)
            if not self._expects_head():
                self._head_done()
            elif self._head_size >= self._limits.max_header_size:
                self._refuse(431)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        super().connection_lost(exc)

    def _head_done(self) -> None:
        """The current head is complete (or abandoned): the next one starts afresh."""
        self._head_size = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        """The header timeout fired before the head was complete."""
        self._head_timer = None
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        """Answer ``status`` unless an earlier request is still being answered; close."""
        if not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_refusal(status))
            self.transport.close()


class H11Protocol(_HeadLimits, h11_impl.H11Protocol):
    """uvicorn's h11 protocol under ``ServerLimits``."""

    def _expects_head(self) -> bool:
        # IDLE until the head is parsed, and again once both sides finished a request.
        return self.conn.their_state is h11.IDLE


try:
    from uvicorn.protocols.http import httptools_impl
except ImportError:  # pragma: no cover - httptools is installed on CPython only
    HTTPTOOLS = False
else:
    HTTPTOOLS = True

    class HttpToolsProtocol(_HeadLimits, httptools_impl.HttpToolsProtocol):
        """uvicorn's httptools protocol under ``ServerLimits``."""

        _reading_body: bool = False

        def _expects_head(self) -> bool:
            # A head ends at on_headers_complete, a body at on_message_complete.
            return not self._reading_body

        def on_headers_complete(self) -> None:
            self._reading_body = True
            self._head_done()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._reading_body = False
            super().on_message_complete()


def protocol_class(http: HTTP) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn's ``http`` implementation, under ``ServerLimits``."""
    if http not in ("auto", "httptools", "h11"):
        raise ValueError(f"http must be 'auto', 'httptools' or 'h11', not {http!r}")
    if http == "h11" or (http == "auto" and not HTTPTOOLS):
        return H11Protocol
    if not HTTPTOOLS:
        raise RuntimeError("http='httptools' needs httptools installed")
    return HttpToolsProtocol
