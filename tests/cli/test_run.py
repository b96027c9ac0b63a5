"""``livepages run`` as a subprocess: workers on NATS, SIGTERM, TLS with HTTP/2."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from livepages.cli import main
from livepages.http2 import TLS_CLOSE_TIMEOUT
from tests.fixtures.browser import NewContext
from tests.fixtures.dev import LivepagesProcess, write
from tests.fixtures.servers import ROOT
from tests.fixtures.tls import self_signed_files

pytestmark = pytest.mark.timeout(60)

APP = """
import os
from dataclasses import dataclass
from starlette.responses import Response
from livepages import App, Event, Page, Settings, on

@dataclass
class Bumped(Event, subject="board"):
    count: int

settings = Settings.from_env(datastar_file=os.environ.get("DATASTAR_FILE") or None)
app = App(settings=settings, head='<link rel="icon" href="data:,">')
board = {"count": 0}

@app.page("/")
class Board(Page):
    def render(self) -> str:
        return f'<p id="count">{board["count"]}</p><p id="pid">{os.getpid()}</p>'

    @on(Bumped)
    async def bumped(self, event: Bumped) -> None:
        board["count"] = event.count  # on every process; then the view re-renders

async def bump(request):
    await app.publish(Bumped(board["count"] + 1))
    return Response(status_code=204)

app.add_route("/bump", bump, methods=["POST"])
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "pyproject.toml", '[tool.livepages]\napp = "board_app:app"\n')
    write(tmp_path, "board_app.py", APP)
    return tmp_path


def test_workers_need_nats_and_a_shared_secret(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.delenv("LIVEPAGES_NATS_URL", raising=False)
    monkeypatch.delenv("LIVEPAGES_SECRET_KEY", raising=False)
    result = CliRunner().invoke(main, ["run", "--workers", "2", "board_app:app"])
    assert result.exit_code == 1
    assert "--workers 2 needs a NATS broker and a shared secret key" in result.output
    assert "LIVEPAGES_NATS_URL" in result.output


def test_tls_needs_both_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["run", "--tls-cert", "cert.pem"])
    assert result.exit_code == 2
    assert "both a certificate" in result.output


def _stream(url: str, client: httpx.Client) -> httpx.Response:
    document = client.get(url + "/").text
    tab = re.search(r"_tab: &#x27;([^&]+)&#x27;", document)
    assert tab is not None
    request = client.build_request("GET", url + "/_live", headers={"X-LP-Tab": tab.group(1)})
    return client.send(request, stream=True)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_two_workers_on_nats_serve_and_stop_within_2_s_on_sigterm(
    project: Path, nats_server: str, tls: bool
) -> None:
    env = {"LIVEPAGES_NATS_URL": nats_server, "LIVEPAGES_SECRET_KEY": "one secret for all"}
    args = ["run", "--workers", "2", "--no-access-log"]
    if tls:
        cert, key = self_signed_files(project)
        args += ["--tls-cert", cert, "--tls-key", key]
    scheme = "https" if tls else "http"
    server = LivepagesProcess(project, args, env, scheme=scheme)
    streams: list[httpx.Response] = []
    readers = []
    clients: list[httpx.Client] = []
    try:
        server.wait_until_serving()
        pids = set()
        for _ in range(6):  # fresh connections: the kernel spreads them over the workers
            client = httpx.Client(timeout=10, http2=tls, verify=False)
            clients.append(client)
            response = _stream(server.url, client)
            assert response.http_version == ("HTTP/2" if tls else "HTTP/1.1")
            streams.append(response)
            reader = response.iter_bytes()
            readers.append(reader)
            first = next(reader)
            pids.update(re.findall(rb'id="pid">(\d+)<', first))
        assert httpx.post(server.url + "/bump", timeout=10, verify=False).status_code == 204
        for reader in readers:  # every stream, on either worker, sees the event (NATS)
            assert b'id="count">1<' in next(reader)
        started = time.monotonic()
        server.terminate()
        code = server.process.wait(timeout=10)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"stopped after {elapsed:.2f} s"
        assert code == 0, server.log()
        print(f"workers seen: {len(pids)}, stopped in {elapsed:.2f} s")
    finally:
        for response in streams:
            response.close()
        for client in clients:
            client.close()
        server.stop()


@pytest.fixture
def tls_server(project: Path, datastar_js: Path) -> Iterator[LivepagesProcess]:
    cert, key = self_signed_files(project)
    args = ["run", "--tls-cert", cert, "--tls-key", key, "--no-access-log"]
    server = LivepagesProcess(project, args, {"DATASTAR_FILE": str(datastar_js)}, scheme="https")
    try:
        server.wait_until_serving()
        yield server
    finally:
        server.stop()
        print(server.log())


def test_tls_serves_http2(tls_server: LivepagesProcess) -> None:
    with httpx.Client(http2=True, verify=False) as client:
        response = client.get(tls_server.url + "/")
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    assert 'id="count"' in response.text


def test_ten_tabs_of_one_page_stay_live_over_http2(
    tls_server: LivepagesProcess, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    context = browser_context(ignore_https_errors=True)
    pages = []
    for _ in range(10):
        page = context.new_page()
        page.goto(tls_server.url + "/")
        pages.append(page)
    for page in pages:  # each stream is open: a change reaches every tab
        expect(page.locator("#count")).to_have_text("0")
    with httpx.Client(http2=True, verify=False) as client:
        assert client.post(tls_server.url + "/bump").status_code == 204
    for page in pages:
        expect(page.locator("#count")).to_have_text("1", timeout=15_000)
    protocol = pages[-1].evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
    assert protocol == "h2"


def test_dev_and_run_have_help() -> None:
    for name in ("dev", "run"):
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0
        assert f"Usage: main {name} [OPTIONS] [APP]" in result.output
        assert "--tls-cert" in result.output


def test_tls_stops_within_2_s_though_a_client_stays_connected_without_reading(
    tls_server: LivepagesProcess,
) -> None:
    # The client neither reads nor closes: it never answers the server's TLS close.
    with httpx.Client(http2=True, verify=False) as client:
        assert client.get(tls_server.url + "/").status_code == 200
        started = time.monotonic()
        tls_server.terminate()
        assert tls_server.process.wait(timeout=10) == 0
        elapsed = time.monotonic() - started
    assert elapsed < 2.0, (
        f"stopped after {elapsed:.2f} s (TLS_CLOSE_TIMEOUT is {TLS_CLOSE_TIMEOUT} s)"
    )


def test_the_examples_run_on_two_workers_on_nats(nats_server: str) -> None:
    env = {"LIVEPAGES_NATS_URL": nats_server, "LIVEPAGES_SECRET_KEY": "one secret for all"}
    args = ["run", "examples.index:from_env()", "--workers", "2", "--no-access-log"]
    server = LivepagesProcess(ROOT, args, env)
    try:
        server.wait_until_serving()
        with httpx.Client(timeout=10) as client:
            assert "Counter" in client.get(server.url + "/").text
            document = client.get(server.url + "/counter/").text
            tab = re.search(r"_tab: &#x27;([^&]+)&#x27;", document)
            assert tab is not None
            live = client.build_request(
                "GET", server.url + "/counter/_live", headers={"X-LP-Tab": tab.group(1)}
            )
            stream = client.send(live, stream=True)
            assert stream.status_code == 200
            assert b"datastar-patch-elements" in next(stream.iter_bytes())
            started = time.monotonic()
            server.terminate()  # with the stream open
            assert server.process.wait(timeout=10) == 0, server.log()
            elapsed = time.monotonic() - started
            stream.close()
        assert elapsed < 2.0, f"stopped after {elapsed:.2f} s"
    finally:
        server.stop()
