"""Uploads in real Chromium: progress, a server killed mid-upload, cancel, limits.

The app runs as its own process (``tests.upload_app``), so the test can kill it
(SIGKILL, as a crash would) while a 20 MB file is half sent, and start it again on
the same port: the page's upload asks where the server stands and finishes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livepages import App, Page, Settings, Uploaded, action, invoke
from livepages.testing import LiveServer, goto_live, watch_console
from tests.fixtures.browser import NewContext
from tests.fixtures.cluster import AppProcess

if TYPE_CHECKING:  # Playwright is imported by the browser fixture, or the test skips
    from playwright.sync_api import FilePayload
    from playwright.sync_api import Page as BrowserPage

MIB = 1024 * 1024
#: Wait this long at most for the upload to reach a state (it takes seconds).
WAIT_MS = 60_000


def upload_process(folder: Path, datastar_js: Path, **env: str) -> AppProcess:
    settings = {
        "LIVEPAGES_SECRET_KEY": "uploads-in-a-browser",
        "LIVEPAGES_UPLOAD_FOLDER": str(folder),
        "LIVEPAGES_DATASTAR_FILE": str(datastar_js),
        "LIVEPAGES_MAX_UPLOAD_SIZE": str(30 * MIB),
        "LIVEPAGES_UPLOAD_CHUNK_SIZE": str(256 * 1024),
        "LIVEPAGES_STARTUP_CHECKS": "false",
        **env,
    }
    return AppProcess("tests.upload_app", settings)


@pytest.fixture
def twenty_mb(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(20 * MIB))
    return path


@pytest.fixture
def slow_app(tmp_path: Path, datastar_js: Path) -> Iterator[AppProcess]:
    process = upload_process(
        tmp_path / "uploads",
        datastar_js,
        LIVEPAGES_TEST_CHUNK_DELAY="0.03",
        LIVEPAGES_UPLOAD_ACCEPT="image/*,.bin",
    )
    try:
        process.start()
        yield process
    finally:
        process.stop()


def state(page: BrowserPage) -> str:
    return page.inner_text("#state")


def wait_for_state(page: BrowserPage, wanted: str) -> None:
    page.wait_for_function(
        f"document.querySelector('#state').textContent === {wanted!r}", timeout=WAIT_MS
    )


def record_progress(page: BrowserPage) -> None:
    """Keep every ``lp-upload`` event's percent and state in ``window.seen``."""
    page.evaluate(
        "window.seen = []; document.addEventListener('lp-upload', "
        "(e) => window.seen.push([e.detail.state, e.detail.percent]), true)"
    )


def test_a_20_mb_upload_survives_a_killed_server(
    slow_app: AppProcess, browser_context: NewContext, twenty_mb: Path
) -> None:
    page = browser_context().new_page()
    problems = watch_console(page)
    goto_live(page, slow_app.url + "/")
    record_progress(page)
    page.set_input_files("#file", twenty_mb)
    # Half-way or so, the server dies without a word.
    page.wait_for_function(
        "Number(document.querySelector('#percent').textContent) >= 20", timeout=WAIT_MS
    )
    slow_app.kill()
    wait_for_state(page, "retrying")
    slow_app.start()  # the same port, the same folder and secret key
    wait_for_state(page, "done")
    assert page.inner_text("#percent") == "100"
    seen = page.evaluate("window.seen")
    uploading = [percent for name, percent in seen if name == "uploading"]
    # Progress was shown along the way, not only at the end.
    assert len({p for p in uploading if 0 < p < 100}) >= 10, seen
    assert sorted({name for name, _ in seen} - {"uploading", "done"}) == ["retrying"]

    page.click("#keep")
    digest = hashlib.sha256(twenty_mb.read_bytes()).hexdigest()
    page.wait_for_selector(f"#kept li:has-text('{digest}')", timeout=WAIT_MS)
    assert page.inner_text("#kept li") == f"big.bin {20 * MIB} {digest}"
    # The console's only complaints are about the requests that met the dead server
    # (ours, and the page's stream, which Datastar retries).
    expected = ("Failed to load resource", "Failed to fetch", "network error", "Datastar failed")
    others = [p for p in problems if not any(text in p for text in expected)]
    assert not others, others


def test_a_re_render_during_an_upload_keeps_it_going(
    slow_app: AppProcess, browser_context: NewContext, twenty_mb: Path
) -> None:
    page = browser_context().new_page()
    goto_live(page, slow_app.url + "/")
    page.set_input_files("#file", twenty_mb)
    page.wait_for_function(
        "Number(document.querySelector('#percent').textContent) >= 5", timeout=WAIT_MS
    )
    page.click("#bump")
    page.wait_for_function("document.querySelector('#bumps').textContent === '1'")
    assert state(page) == "uploading"
    wait_for_state(page, "done")
    page.click("#keep")
    page.wait_for_selector("#kept li", timeout=WAIT_MS)
    assert page.inner_text("#kept li").startswith(f"big.bin {20 * MIB} ")


def test_an_upload_can_be_cancelled(
    slow_app: AppProcess, browser_context: NewContext, twenty_mb: Path, tmp_path: Path
) -> None:
    page = browser_context().new_page()
    goto_live(page, slow_app.url + "/")
    page.set_input_files("#file", twenty_mb)
    page.wait_for_function(
        "Number(document.querySelector('#percent').textContent) >= 5", timeout=WAIT_MS
    )
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.click("#cancel")
    assert deleted.value.status == 204
    assert state(page) == "cancelled"
    assert list((tmp_path / "uploads").glob("*/*")) == []
    page.wait_for_timeout(300)  # no chunk goes out after the cancel
    assert state(page) == "cancelled"


@pytest.mark.parametrize(
    ("name", "content", "kind", "message"),
    [
        (
            "fake.png",
            b"not a picture at all",
            "image/png",
            "the content of fake.png is not image/png",
        ),
        (
            "doc.pdf",
            b"%PDF-1.7",
            "application/pdf",
            "doc.pdf is not a file of an accepted type (image/*, .bin)",
        ),
    ],
)
def test_a_refused_file_says_why_in_the_page(
    slow_app: AppProcess,
    browser_context: NewContext,
    name: str,
    content: bytes,
    kind: str,
    message: str,
) -> None:
    page = browser_context().new_page()
    goto_live(page, slow_app.url + "/")
    file: FilePayload = {"name": name, "mimeType": kind, "buffer": content}
    page.set_input_files("#file", files=[file])
    wait_for_state(page, "error")
    assert page.inner_text("#message") == message


#: A strict policy: scripts and requests only from the page's own origin (Datastar
#: evaluates its expressions, hence 'unsafe-eval'), no inline script at all.
STRICT_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:"
)


class StrictCSP:
    """Adds ``STRICT_CSP`` to every response."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = STRICT_CSP
            await send(message)

        await self.inner(scope, receive, with_policy)


def test_uploads_work_under_a_strict_content_security_policy(
    datastar_js: Path, tmp_path: Path, browser_context: NewContext
) -> None:
    app = App(settings=Settings(datastar_file=str(datastar_js), upload_folder=str(tmp_path)))
    names: list[str] = []

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return (
                f'<input id="file" type="file" {app.uploads.attributes("photos")}>'
                '<span id="state" data-text="$_uploads.photos.state"></span>'
                f'<button id="keep" data-on:click="{escape(invoke(self.keep))}">Keep</button>'
            )

        @action
        async def keep(self, photos: list[Uploaded]) -> None:
            names.extend(photo.name for photo in photos)

    with LiveServer(StrictCSP(app)) as server:
        page = browser_context().new_page()
        problems = watch_console(page)
        goto_live(page, server.url + "/")
        file: FilePayload = {"name": "a.txt", "mimeType": "text/plain", "buffer": b"x" * 5000}
        page.set_input_files("#file", files=[file])
        wait_for_state(page, "done")
        with page.expect_response(lambda r: "/_action/keep" in r.url):
            page.click("#keep")
        assert names == ["a.txt"]
        assert [p for p in problems if "favicon" not in p and "404" not in p] == []


def test_uploads_work_under_the_default_policy_on_a_page_loaded_twice(
    datastar_js: Path, tmp_path: Path, browser_context: NewContext
) -> None:
    # The app's own Content-Security-Policy (a nonce and 'strict-dynamic'), and the page
    # loaded a second time in the same tab, as a visitor coming back to it does.
    app = App(settings=Settings(datastar_file=str(datastar_js), upload_folder=str(tmp_path)))

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return (
                f'<input id="file" type="file" {app.uploads.attributes("photos")}>'
                '<span id="state" data-text="$_uploads.photos.state"></span>'
            )

    with LiveServer(app) as server:
        page = browser_context().new_page()
        problems = watch_console(page)
        goto_live(page, server.url + "/")
        goto_live(page, server.url + "/")
        file: FilePayload = {"name": "a.txt", "mimeType": "text/plain", "buffer": b"x" * 5000}
        page.set_input_files("#file", files=[file])
        wait_for_state(page, "done")
        assert [p for p in problems if "favicon" not in p and "404" not in p] == []


def test_two_inputs_on_one_page_upload_apart(
    datastar_js: Path, tmp_path: Path, browser_context: NewContext
) -> None:
    app = App(settings=Settings(datastar_file=str(datastar_js), upload_folder=str(tmp_path)))
    got: dict[str, list[str]] = {}

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            inputs = "".join(
                f'<input id="{name}" type="file" {app.uploads.attributes(name)}>'
                f'<span id="{name}-state" data-text="$_uploads.{name}.state"></span>'
                for name in ("avatar", "cover")
            )
            return inputs + f'<button id="save" data-on:click="{escape(invoke(self.save))}">'

        @action
        async def save(self, avatar: Uploaded, cover: list[Uploaded]) -> None:
            got["avatar"] = [avatar.name]
            got["cover"] = [photo.name for photo in cover]

    with LiveServer(app) as server:
        page = browser_context().new_page()
        problems = watch_console(page)
        goto_live(page, server.url + "/")
        for name in ("avatar", "cover"):
            file: FilePayload = {"name": f"{name}.txt", "mimeType": "text/plain", "buffer": b"x"}
            page.set_input_files(f"#{name}", files=[file])
            page.wait_for_function(
                f"document.querySelector('#{name}-state').textContent === 'done'"
            )
        with page.expect_response(lambda r: "/_action/save" in r.url):
            page.click("#save")
        assert got == {"avatar": ["avatar.txt"], "cover": ["cover.txt"]}
        assert [p for p in problems if "favicon" not in p and "404" not in p] == []
