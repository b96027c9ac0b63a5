"""``Metrics``: Prometheus series of one app, counted from its lifecycle hooks.

::

    app = App()
    metrics = Metrics(app)            # GET /metrics serves them
    metrics = Metrics(app, path=None)
    metrics.serve(9100)               # or on a port of their own

Each ``Metrics`` has its own ``CollectorRegistry`` (``metrics.registry``), never the
global one, so two apps in one process do not clash; an app registers its own
collectors on it. Every process serves its own series: scrape each one (see
docs/observability.md). Counting costs nothing on the fan-out path: patches,
bytes and broker drops are read from counters the app keeps anyway, at scrape time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livepages.hooks import (
    ActionDone,
    CSRFRefused,
    ErrorReported,
    Published,
    Rendered,
    RequestDone,
    RequestStarted,
    SessionClosed,
    SessionCreated,
    SessionRead,
    StreamClosed,
    StreamOpened,
)

if TYPE_CHECKING:
    from livepages.app import App

__all__ = ["METRICS_PATH", "Metrics"]

#: Where ``Metrics(app)`` serves the series unless told otherwise.
METRICS_PATH = "/metrics"

#: Latency buckets, in seconds: from a cached render to a slow request.
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Stream lifetimes, in seconds: from a bounce to a page left open all day.
_LIFETIME = (1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


class Metrics:
    """The app's Prometheus series, on ``path`` (None: none) and/or :meth:`serve`."""

    def __init__(
        self,
        app: App,
        *,
        path: str | None = METRICS_PATH,
        namespace: str = "livepages",
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.app = app
        self.registry = registry if registry is not None else CollectorRegistry()
        self._series(namespace)
        self.registry.register(_Counted(app, namespace))
        self._listen()
        if path is not None:
            # First: a page at "/{slug}" must not take the metrics' path.
            app.router.routes.insert(0, Route(path, self.endpoint, methods=["GET"]))

    def _series(self, ns: str) -> None:
        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, namespace=ns, registry=self.registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...], *labels: str) -> Histogram:
            return Histogram(
                name, doc, labels, namespace=ns, registry=self.registry, buckets=buckets
            )

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(name, doc, labels, namespace=ns, registry=self.registry)

        self.requests = counter(
            "http_requests", "HTTP requests answered", "method", "route", "status"
        )
        self.request_seconds = histogram(
            "http_request_duration_seconds", "HTTP request latency", _LATENCY, "method", "route"
        )
        self.in_flight = gauge("http_in_flight_requests", "HTTP requests being served")
        self.streams = gauge("sse_connections", "Open live streams", "page")
        self.stream_seconds = histogram(
            "sse_connection_duration_seconds", "Live stream lifetime", _LIFETIME, "page"
        )
        self.disconnects = counter("sse_disconnects", "Live streams ended, by reason", "reason")
        self.renders = counter("renders", "Live renders", "page")
        self.render_seconds = histogram(
            "render_duration_seconds", "Live render latency", _LATENCY, "page"
        )
        self.dedup_skips = counter(
            "render_dedup_skips", "Renders identical to the last: nothing sent", "page"
        )
        self.render_errors = counter("render_errors", "Live renders that failed", "page")
        self.actions = counter("actions", "Action calls, by outcome", "action", "outcome")
        self.action_seconds = histogram(
            "action_duration_seconds", "Action latency", _LATENCY, "action"
        )
        self.publishes = counter(
            "event_broker_publishes_by_kind", "Events published, by subject kind", "kind"
        )
        self.session_creations = counter(
            "session_creations", "Sessions stored the first time", "result"
        )
        self.session_closures = counter("session_closures", "Sessions closed", "result")
        self.session_reads = counter("session_reads", "Session cookies read", "result")
        self.csrf_refusals = counter("csrf_refusals", "Actions refused by the CSRF checks")
        self.errors_recovered = counter(
            "internal_errors_recovered", "Unexpected errors after which the request went on"
        )
        self.errors_not_recovered = counter(
            "internal_errors_not_recovered", "Unexpected errors that made the response a 500"
        )

    def _listen(self) -> None:
        hooks = self.app.hooks
        hooks.add(RequestStarted, lambda e: self.in_flight.inc())
        hooks.add(RequestDone, self._request)
        hooks.add(StreamOpened, lambda e: self.streams.labels(e.page).inc())
        hooks.add(StreamClosed, self._stream_closed)
        hooks.add(Rendered, self._rendered)
        hooks.add(ActionDone, self._action)
        hooks.add(Published, lambda e: self.publishes.labels(subject_kind(e.subject)).inc())
        hooks.add(SessionCreated, lambda e: self.session_creations.labels(_result(e.ok)).inc())
        hooks.add(SessionClosed, lambda e: self.session_closures.labels(_result(e.ok)).inc())
        hooks.add(SessionRead, lambda e: self.session_reads.labels(e.outcome.value).inc())
        hooks.add(CSRFRefused, lambda e: self.csrf_refusals.inc())
        hooks.add(ErrorReported, self._error)

    def _request(self, event: RequestDone) -> None:
        self.in_flight.dec()
        self.requests.labels(event.method, event.route, str(event.status)).inc()
        self.request_seconds.labels(event.method, event.route).observe(event.duration)

    def _stream_closed(self, event: StreamClosed) -> None:
        self.streams.labels(event.page).dec()
        self.stream_seconds.labels(event.page).observe(event.duration)
        self.disconnects.labels(event.reason.value).inc()

    def _rendered(self, event: Rendered) -> None:
        self.renders.labels(event.page).inc()
        self.render_seconds.labels(event.page).observe(event.duration)
        if event.dedup:
            self.dedup_skips.labels(event.page).inc()
        if event.failed:
            self.render_errors.labels(event.page).inc()

    def _action(self, event: ActionDone) -> None:
        self.actions.labels(event.name, event.outcome.value).inc()
        self.action_seconds.labels(event.name).observe(event.duration)

    def _error(self, event: ErrorReported) -> None:
        (self.errors_recovered if event.recovered else self.errors_not_recovered).inc()

    def exposition(self) -> bytes:
        """The series in Prometheus's text format."""
        return generate_latest(self.registry)

    async def endpoint(self, request: Request) -> Response:
        """The route that serves :meth:`exposition`."""
        return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)

    def serve(self, port: int, addr: str = "127.0.0.1") -> tuple[WSGIServer, threading.Thread]:
        """Serve the series on a port of their own, from a thread (``port=0``: any free
        port, ``server.server_port``); ``server.shutdown()`` stops it."""
        return start_http_server(port, addr, registry=self.registry)


def subject_kind(subject: str) -> str:
    """The label of a subject: its first token (``chat.42`` is ``chat``), so that
    subjects with ids do not make a series each."""
    return subject.partition(".")[0]


def _result(ok: bool) -> str:
    return "success" if ok else "error"


class _Counted(Collector):
    """Series read at scrape time from counters the app keeps on its hot paths."""

    def __init__(self, app: App, namespace: str) -> None:
        self.app = app
        self.prefix = namespace + "_"

    def collect(self) -> Iterator[Metric]:
        stats, broker = self.app.live.stats, self.app.broker
        yield _counter(self.prefix + "patches", "Writes to live streams", stats.patches)
        sent = CounterMetricFamily(
            self.prefix + "sent_bytes",
            "Bytes sent on live streams: the events before compression, and on the wire",
            labels=["stage"],
        )
        sent.add_metric(["payload"], stats.payload_bytes)
        sent.add_metric(["wire"], stats.bytes)
        yield sent
        yield _counter(
            self.prefix + "event_broker_deliveries_dropped",
            "Broker deliveries dropped for slow consumers (every view re-rendered after)",
            broker.dropped,
        )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)
