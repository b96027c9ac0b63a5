"""nginx and Caddy, configured as docs/scaling.md shows, in front of two app processes.

Each proxy runs the configuration block of the doc itself (``tests.fixtures.docblocks``),
with only its addresses changed to free ports of 127.0.0.1, in front of two processes of
``tests.scaling_app`` on one real nats-server. Through the proxy: pages load, requests
reach both processes, and a live stream receives the patch of an action while it stays
open, which a proxy that buffered the stream would hold back.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from livepages.testing import Client
from tests.fixtures import common
from tests.fixtures.cluster import AppProcess, app_processes
from tests.fixtures.docblocks import doc_block, replaced
from tests.fixtures.proxies import Proxy, ProxyKind, proxy_binary, start_proxy
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.anyio

#: What "at once" means for a patch that crosses a proxy and NATS.
CROSSING = 1.0

#: The block of docs/scaling.md each proxy runs.
LANGUAGE = {ProxyKind.NGINX: "nginx", ProxyKind.CADDY: "caddyfile"}


@pytest.fixture(scope="module")
def pair(nats_server: str) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Two processes of one app on the session's nats-server."""
    key = f"proxies-{uuid.uuid4().hex}"
    with app_processes(2, "tests.scaling_app", nats_server, key, ready_path="/notes") as procs:
        a, b = procs
        yield a, b


def documented(kind: ProxyKind, port: int, a: AppProcess, b: AppProcess) -> str:
    """The doc's configuration for ``kind``, listening on ``port`` in front of ``a`` and ``b``."""
    addresses = {"127.0.0.1:8001": f"127.0.0.1:{a.port}", "127.0.0.1:8002": f"127.0.0.1:{b.port}"}
    listen = {
        ProxyKind.NGINX: {"listen 80;": f"listen 127.0.0.1:{port};"},
        ProxyKind.CADDY: {"app.example.com {": f"http://127.0.0.1:{port} {{"},
    }
    return replaced(doc_block("scaling.md", LANGUAGE[kind]), {**addresses, **listen[kind]})


@pytest.fixture(scope="module", params=list(ProxyKind), ids=lambda kind: kind.value)
def proxy(
    request: pytest.FixtureRequest,
    pair: tuple[AppProcess, AppProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Proxy]:
    """nginx, then Caddy, running the doc's configuration in front of the pair."""
    kind: ProxyKind = request.param
    port = free_port()
    config = documented(kind, port, *pair)
    running = start_proxy(kind, config, tmp_path_factory.mktemp(kind.value), port)
    try:
        yield running
    finally:
        running.stop()


def origin_headers(proxy: Proxy) -> dict[str, str]:
    """What a browser on the proxy's page sends with an action."""
    return {"Origin": proxy.url, "Sec-Fetch-Site": "same-origin"}


async def test_pages_load_through_the_proxy(proxy: Proxy) -> None:
    async with Client(proxy.url) as client:
        page = await client.get("/notes")
    assert page.status_code == 200, proxy.log_tail()
    assert '<p id="note">none yet</p>' in page.html
    assert page.live_url is not None


def test_requests_reach_both_processes(proxy: Proxy, pair: tuple[AppProcess, AppProcess]) -> None:
    pids = {str(app.process.pid) for app in pair if app.process is not None}
    assert len(pids) == 2
    with httpx.Client(base_url=proxy.url) as http:
        answered = {http.get("/process").text for _ in range(6)}
    assert answered == pids


async def test_a_stream_through_the_proxy_gets_an_action_at_once(proxy: Proxy) -> None:
    text = f"through {proxy.kind.value} {uuid.uuid4().hex[:8]}"
    async with Client(proxy.url) as client:
        page = await client.get("/notes")
        async with page.stream() as stream:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            await stream.next_event(wait=CROSSING)  # the first render, through the proxy
            started = time.monotonic()
            answer = await page.action("post", {"text": text}, headers=origin_headers(proxy))
            assert answer.status_code == 200
            patch = await stream.wait_for(lambda event: text in event.elements, wait=CROSSING)
            elapsed = time.monotonic() - started
            assert not stream.ended.is_set()  # delivered while open, not at the end
    assert patch.elements == f'<p id="note">{text}</p>'
    assert elapsed < CROSSING


async def test_an_action_from_another_origin_is_refused_through_the_proxy(proxy: Proxy) -> None:
    # The proxy forwards the browser's Host (with its port): only its own origin passes.
    async with Client(proxy.url) as client:
        page = await client.get("/notes")
        answer = await page.action(
            "post",
            {"text": "x"},
            headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
    assert answer.status_code == 403


def test_a_documented_block_that_changed_shape_is_an_error() -> None:
    # A doc without the addresses the tests replace would fail above, not pass half-run.
    with pytest.raises(AssertionError, match="no longer in the documented block"):
        replaced("listen 81;", {"listen 80;": "listen 127.0.0.1:1;"})


@pytest.mark.parametrize("require_all", [False, True])
def test_a_missing_proxy_skips_or_fails_under_require_all(
    monkeypatch: pytest.MonkeyPatch, require_all: bool
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    monkeypatch.setattr(common, "REQUIRE_ALL", require_all)
    outcome = pytest.fail.Exception if require_all else pytest.skip.Exception
    with pytest.raises(outcome, match="caddy not found: apt-get install caddy"):
        proxy_binary(ProxyKind.CADDY)
