"""Structured logs: one record per request, per live stream closed and per error.

``Logs(app)`` subscribes to the app's lifecycle hooks and logs, on the
``livepages.access`` logger, one INFO record per answered request and one per
live stream that ended; the error record is the one ``livepages.reports`` already
writes, once per error. Each record carries its fields as ``record.livepages`` (a
dict), so any handler can use them; :class:`JSONFormatter` writes them as one JSON
line (production), :class:`ReadableFormatter` as a line to read (development).
:func:`configure_logging` puts one of them on the ``livepages`` logger::

    configure_logging(debug=app.settings.debug)
    Logs(app)

The fields never hold a cookie, a token or a header: a request is its id, method,
route template, status and duration, and its user an HMAC of the user id under the
app's key (``user``), the same across requests and processes of one app, useless
to anyone without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from livepages.hooks import RequestDone, StreamClosed
from livepages.traffic import request_id

if TYPE_CHECKING:
    from livepages.app import App

__all__ = [
    "ACCESS_LOGGER",
    "FIELDS",
    "JSONFormatter",
    "Logs",
    "ReadableFormatter",
    "configure_logging",
]

#: The logger of the request and stream records.
ACCESS_LOGGER = "livepages.access"
#: The attribute of a log record that holds its structured fields.
FIELDS = "livepages"


class Logs:
    """Logs each request and each closed live stream of ``app`` (see the module)."""

    def __init__(self, app: App, logger: str = ACCESS_LOGGER) -> None:
        self.log = logging.getLogger(logger)
        self._key = app.keys.derive("logs")
        app.hooks.add(RequestDone, self._request)
        app.hooks.add(StreamClosed, self._stream_closed)

    def user_hash(self, user_id: str | None) -> str | None:
        """The user's pseudonym in logs: 16 hex digits of an HMAC under the app's key."""
        if user_id is None:
            return None
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:16]

    def _request(self, event: RequestDone) -> None:
        if not self.log.isEnabledFor(logging.INFO):
            return
        fields = {
            "event": "request",
            "request_id": event.request_id,
            "method": event.method,
            "route": event.route,
            "status": event.status,
            "duration_ms": round(event.duration * 1000, 3),
            "user": self.user_hash(event.user_id),
        }
        self.log.info(
            "%s %s %d %.1f ms",
            event.method,
            event.route,
            event.status,
            event.duration * 1000,
            extra={FIELDS: fields},
        )

    def _stream_closed(self, event: StreamClosed) -> None:
        if not self.log.isEnabledFor(logging.INFO):
            return
        fields = {
            "event": "stream_closed",
            "request_id": request_id.get() or None,
            "page": event.page,
            "reason": event.reason.value,
            "duration_ms": round(event.duration * 1000, 3),
        }
        self.log.info(
            "stream of %s closed (%s) after %.1f s",
            event.page,
            event.reason.value,
            event.duration,
            extra={FIELDS: fields},
        )


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the record's
    structured fields, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, FIELDS, None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class ReadableFormatter(logging.Formatter):
    """``12:00:01 INFO  GET /rooms/{room} 200 3.1 ms [id]``: for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, FIELDS, None) or {}
        if fields.get("request_id"):
            first, newline, rest = text.partition("\n")
            text = f"{first} [{fields['request_id']}]{newline}{rest}"
        return text


def configure_logging(
    *, debug: bool, stream: IO[str] | None = None, logger: str = "livepages"
) -> logging.Handler:
    """Log ``logger`` (livepages's records) to ``stream`` (stderr): JSON lines at INFO,
    or readable lines at DEBUG in development. Returns the handler it added."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(ReadableFormatter() if debug else JSONFormatter())
    target = logging.getLogger(logger)
    target.addHandler(handler)
    target.setLevel(logging.DEBUG if debug else logging.INFO)
    return handler


def _iso(created: float) -> str:
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"
