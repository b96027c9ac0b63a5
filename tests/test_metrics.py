"""Prometheus metrics: exact deltas of the scraped series after known traffic."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from livepages import (
    App,
    Event,
    MemorySessionStore,
    Page,
    Session,
    SessionManager,
    Settings,
    action,
    on,
)
from livepages.metrics import Metrics, subject_kind
from livepages.sessions.store import SessionRecord, SessionStoreError
from livepages.testing import Client
from tests.fixtures.cluster import AppProcess, app_processes

pytestmark = pytest.mark.anyio


@dataclass
class Bumped(Event, subject="bumped.counter"):
    pass


@dataclass
class Amount:
    n: int


@dataclass
class Credentials:
    user: str


def make_app(*, sessions: bool = False) -> tuple[App, Metrics]:
    app = App(settings=Settings(secret_key="k"), sessions=sessions)
    metrics = Metrics(app)
    count = {"n": 0}

    @app.page("/counter/{room}")
    @on(Bumped)
    class Counter(Page):
        room: str

        def render(self) -> str:
            return f"<p>{count['n']}</p>"

        @action
        async def bump(self, amount: Amount) -> None:
            if amount.n == 7:
                raise RuntimeError("seven")
            count["n"] += amount.n
            await app.publish(Bumped())

    return app, metrics


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: Client) -> Samples:
    """Every sample of GET /metrics, by name and labels."""
    response = await client.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_two_page_views_count_two_by_route_template_not_path() -> None:
    app, _ = make_app()
    async with Client(app) as client:
        before = await scrape(client)
        await client.get("/counter/a")
        await client.get("/counter/b")
        await client.http.get("/nowhere/at/all")
        after = await scrape(client)
    route = {"method": "GET", "route": "/counter/{room}"}
    name = "livepages_http_requests_total"
    delta = get(after, name, **route, status="200") - get(before, name, **route, status="200")
    assert delta == 2
    hist = "livepages_http_request_duration_seconds_count"
    assert get(after, hist, **route) - get(before, hist, **route) == 2
    # No raw path ever becomes a label: an unknown URL is "<unmatched>".
    assert get(after, name, method="GET", route="<unmatched>", status="404") == 1
    assert not any("/counter/a" in str(key) for key in after)
    # The scrape in flight counts itself; every other request is done.
    assert get(after, "livepages_http_in_flight_requests") == 1


async def test_one_action_gives_one_latency_observation_and_its_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, _ = make_app()
    async with Client(app) as client:
        page = await client.get("/counter/a")
        before = await scrape(client)
        await page.action("bump", {"n": 1})
        middle = await scrape(client)
        with caplog.at_level(logging.CRITICAL):
            await page.action("bump", {"n": 7})
        after = await scrape(client)
    count = "livepages_action_duration_seconds_count"
    assert get(middle, count, action="bump") - get(before, count, action="bump") == 1
    assert get(after, "livepages_actions_total", action="bump", outcome="ok") == 1
    assert get(after, "livepages_actions_total", action="bump", outcome="failed") == 1
    kind = "livepages_event_broker_publishes_by_kind_total"
    assert get(after, kind, kind="bumped") == 1
    # The action's error made its response a 500: not recovered.
    assert get(after, "livepages_internal_errors_not_recovered_total") == 1
    assert get(after, "livepages_internal_errors_recovered_total") == 0


async def test_an_open_stream_is_one_and_closing_it_zero_and_a_dedup_skip_counts_once() -> None:
    app, _ = make_app()
    async with Client(app) as client:
        page = await client.get("/counter/a")
        async with page.stream() as stream:
            await stream.next_event()
            during = await scrape(client)
            await page.action("bump", {"n": 0})  # the same HTML: a dedup skip
            await page.action("bump", {"n": 2})
            await stream.next_event()
        await asyncio.sleep(0.05)
        after = await scrape(client)
    assert get(during, "livepages_sse_connections", page="Counter") == 1
    assert get(after, "livepages_sse_connections", page="Counter") == 0
    assert get(after, "livepages_sse_connection_duration_seconds_count", page="Counter") == 1
    assert get(after, "livepages_sse_disconnects_total", reason="client_left") == 1
    assert get(after, "livepages_render_dedup_skips_total", page="Counter") == 1
    assert get(after, "livepages_renders_total", page="Counter") == 3
    assert get(after, "livepages_render_duration_seconds_count", page="Counter") == 3
    assert get(after, "livepages_patches_total") >= 2
    assert get(after, "livepages_sent_bytes_total", stage="payload") > 0
    # Uncompressed, what went on the wire is what was handed to the stream.
    assert get(after, "livepages_sent_bytes_total", stage="wire") >= get(
        after, "livepages_sent_bytes_total", stage="payload"
    )


async def test_a_csrf_refusal_counts_once_and_sessions_are_counted() -> None:
    app, _ = make_app(sessions=True)
    async with Client(app) as client:
        page = await client.get("/counter/a")
        before = await scrape(client)
        refused = await client.http.post(
            "/counter/a/_action/bump", json={"n": 1}, headers={"datastar-request": "true"}
        )
        after = await scrape(client)
        await page.action("bump", {"n": 1})
    assert refused.status_code == 403
    name = "livepages_csrf_refusals_total"
    assert get(after, name) - get(before, name) == 1
    assert get(after, "livepages_session_reads_total", result="valid") >= 1
    assert get(before, "livepages_session_reads_total", result="none") >= 1


async def test_a_dropped_delivery_counts_once() -> None:
    app, _ = make_app()
    async with Client(app) as client:
        await app.startup()
        queue = app.broker.subscribe_queue("slow.>", max_pending=1)
        before = await scrape(client)
        await app.broker.publish("slow.a", b"1")
        await app.broker.publish("slow.a", b"2")  # the buffer holds one: dropped
        after = await scrape(client)
        queue.unsubscribe()
    name = "livepages_event_broker_deliveries_dropped_total"
    assert get(after, name) - get(before, name) == 1


async def test_apps_have_their_own_registries_and_their_own_collectors() -> None:
    one, metrics_one = make_app()
    two, _ = make_app()  # the same series names in the same process: no clash
    signups = Counter("signups", "Sign-ups", registry=metrics_one.registry)
    signups.inc()
    async with Client(one) as client:
        assert get(await scrape(client), "signups_total") == 1
    async with Client(two) as client:
        assert get(await scrape(client), "signups_total") == 0


async def test_metrics_on_a_port_of_their_own_and_off_the_app() -> None:
    app = App(settings=Settings(secret_key="k"))
    metrics = Metrics(app, path=None)
    server, thread = metrics.serve(0)
    try:
        async with Client(app) as client:
            assert (await client.http.get("/metrics")).status_code == 404
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        assert b"livepages_http_requests_total" in text
    finally:
        server.shutdown()
        thread.join(5)


def test_a_subject_kind_is_its_first_token() -> None:
    assert subject_kind("chat.42.messages") == "chat"
    assert subject_kind("bumped") == "bumped"


@pytest.fixture(scope="module")
def pair(nats_server: str) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Two processes of tests.metrics_app on the session's nats-server."""
    key = f"metrics-{uuid.uuid4().hex}"
    with app_processes(2, "tests.metrics_app", nats_server, key, ready_path="/board") as procs:
        a, b = procs
        yield a, b


async def test_each_process_serves_its_own_series(pair: tuple[AppProcess, AppProcess]) -> None:
    a, b = pair
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        before_a, before_b = await scrape(on_a), await scrape(on_b)
        page_a = await on_a.get("/board")
        page_b = await on_b.get("/board")
        await on_b.get("/board")
        async with page_b.stream() as stream:
            await stream.next_event()
            await page_a.action("bump")
            await stream.wait_for(lambda e: 'id="count">1<' in e.elements, wait=5)
        after_a, after_b = await scrape(on_a), await scrape(on_b)

    def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
        return get(after, name, **labels) - get(before, name, **labels)

    views = "livepages_http_requests_total"
    route = {"method": "GET", "route": "/board", "status": "200"}
    assert delta(after_a, before_a, views, **route) == 1
    assert delta(after_b, before_b, views, **route) == 2
    # The action and its publish happened on A; the re-render of the open stream on B.
    bumps = "livepages_action_duration_seconds_count"
    assert delta(after_a, before_a, bumps, action="bump") == 1
    assert delta(after_b, before_b, bumps, action="bump") == 0
    published = "livepages_event_broker_publishes_by_kind_total"
    assert delta(after_a, before_a, published, kind="board") == 1
    assert delta(after_b, before_b, "livepages_renders_total", page="Board") >= 1
    assert delta(after_a, before_a, "livepages_renders_total", page="Board") == 0


class FailingStore(MemorySessionStore):
    """A memory store that fails to create or delete while told to."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    async def create(self, record: SessionRecord) -> int:
        if self.failing:
            raise SessionStoreError("away")
        return await super().create(record)

    async def delete(self, id: str) -> None:
        if self.failing:
            raise SessionStoreError("away")
        await super().delete(id)


def session_app(store: FailingStore | None = None) -> App:
    app = App(settings=Settings(secret_key="k"), sessions=SessionManager(store))
    Metrics(app)
    broken = {"now": False}

    @app.page("/")
    @on(Bumped)
    class Home(Page):
        def render(self, session: Session[Any]) -> str:
            if broken["now"]:
                raise RuntimeError("render broke")
            return f"<p>{session.user_id or 'guest'}</p>"

        @action
        async def sign_in(self, session: Session[Any], credentials: Credentials) -> None:
            await session.sign_in(credentials.user)

        @action
        async def sign_out(self, session: Session[Any]) -> None:
            await session.sign_out()

        @action
        async def breaks(self) -> None:
            broken["now"] = True
            await app.publish(Bumped())

    return app


async def test_sessions_created_closed_and_read_by_outcome() -> None:
    app = session_app()
    async with Client(app) as client:
        start = await scrape(client)
        guest = await client.get("/")
        await guest.action("sign_in", {"user": "ann"})
        signed = await client.get("/")
        await signed.action("sign_out")
        middle = await scrape(client)
        client.http.cookies.set("livepages_session", "forged-value")
        await client.get("/")
        end = await scrape(client)

    def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
        return get(after, name, **labels) - get(before, name, **labels)

    assert delta(middle, start, "livepages_session_creations_total", result="success") == 1
    assert delta(middle, start, "livepages_session_closures_total", result="success") == 1
    assert delta(end, middle, "livepages_session_reads_total", result="invalid") == 1
    assert delta(middle, start, "livepages_session_reads_total", result="valid") >= 2


async def test_a_session_the_store_failed_to_create_or_close_counts_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FailingStore()
    app = session_app(store)
    async with Client(app) as client:
        guest = await client.get("/")
        store.failing = True
        with caplog.at_level(logging.CRITICAL):
            refused = await guest.action("sign_in", {"user": "ann"})
            store.failing = False
            guest = await client.get("/")
            await guest.action("sign_in", {"user": "ann"})
            signed = await client.get("/")
            store.failing = True
            kept = await signed.action("sign_out")
        store.failing = False
        samples = await scrape(client)
    # Answered in the page (a Datastar action): the error event says 503.
    assert "503" in refused.text
    assert "503" in kept.text
    assert get(samples, "livepages_session_creations_total", result="error") == 1
    assert get(samples, "livepages_session_creations_total", result="success") == 1
    assert get(samples, "livepages_session_closures_total", result="error") == 1
    assert get(samples, "livepages_session_closures_total", result="success") == 0


async def test_a_failed_live_render_is_an_error_recovered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = session_app()
    async with Client(app) as client:
        page = await client.get("/")
        async with page.stream() as stream:
            await stream.next_event()
            with caplog.at_level(logging.CRITICAL):
                await page.action("breaks")
                await stream.next_event()
        samples = await scrape(client)
    assert get(samples, "livepages_internal_errors_recovered_total") == 1
    assert get(samples, "livepages_internal_errors_not_recovered_total") == 0
    assert get(samples, "livepages_render_errors_total", page="Home") == 1
