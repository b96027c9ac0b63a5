"""``livepages dev`` in real Chromium: the dev server as a subprocess on a project.

Each test writes a small project (pyproject.toml, a module, a template, a static
folder), starts ``livepages dev`` on it, opens the page and edits files as a
developer would, then checks what the page shows, with no reload by hand.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from livepages.dev.supervisor import STOP_TIMEOUT
from tests.fixtures.browser import NewContext
from tests.fixtures.dev import LivepagesProcess, write
from tests.fixtures.tls import self_signed_files

pytestmark = pytest.mark.timeout(60)

#: Generous: a restart imports the app afresh on a loaded two-core machine.
RESTART_MS = 20_000

APP = """
import os
from livepages import App, Page, Redirect, Session, Settings, action, redirect

app = App(
    templates="templates",
    static="static",
    sessions=True,
    settings=Settings(datastar_file=os.environ["DATASTAR_FILE"]),
    head='<link rel="icon" href="data:,">',
)

@app.page("/")
class Home(Page):
    def render(self, session: Session) -> str:
        return self.template("home.html", who=session.user_id or "guest", word="python one")

    @action
    async def sign_in(self, session: Session) -> Redirect:
        await session.sign_in("alice")
        return redirect("/")

    @action
    async def fail(self) -> None:
        raise RuntimeError("the action broke")
"""

TEMPLATE = """
<p id="tpl">template one</p>
<p id="who">{{ who }}</p>
<p id="py">{{ word }}</p>
<button id="sign-in" data-on:click="{{ action(page.sign_in) }}">sign in</button>
<button id="fail" data-on:click="{{ action(page.fail) }}">fail</button>
"""

COPY = f"{shlex.quote(sys.executable)} copy_css.py"
PYPROJECT = f"""
[tool.livepages]
app = "site_app:app"

[tool.livepages.dev]
watch = [
    {{glob = "styles/*.css", command = {json.dumps(COPY)}}},
    {{glob = "broken/*.txt", command = "echo watcher-said-this; exit 3"}},
]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "pyproject.toml", PYPROJECT)
    write(
        tmp_path, "copy_css.py", "import shutil\nshutil.copy('styles/app.css', 'static/app.css')\n"
    )
    write(tmp_path, "site_app.py", APP)
    write(tmp_path, "templates/home.html", TEMPLATE)
    write(tmp_path, "static/app.css", "p { color: black }\n")
    write(tmp_path, "styles/app.css", "p { color: black }\n")
    (tmp_path / "broken").mkdir()
    return tmp_path


@pytest.fixture
def dev(project: Path, datastar_js: Path) -> Iterator[LivepagesProcess]:
    server = LivepagesProcess(project, ["dev"], {"DATASTAR_FILE": str(datastar_js)})
    try:
        server.wait_until_serving()
        yield server
    finally:
        server.stop()
    print(server.log())


#: Records what the page's Content-Security-Policy refused (the overlay must pass it).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e => window.__violations.push(
    e.violatedDirective + ' ' + e.blockedURI));
"""


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_templates_re_render_and_python_restarts_keep_the_user_signed_in(
    dev: LivepagesProcess, project: Path, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    page.goto(dev.url + "/")
    expect(page.locator("#who")).to_have_text("guest")
    page.click("#sign-in")
    expect(page.locator("#who")).to_have_text("alice")
    page.evaluate("window.sameDocument = true")

    edit(project / "templates/home.html", "template one", "template two")
    expect(page.locator("#tpl")).to_have_text("template two", timeout=RESTART_MS)
    assert page.evaluate("window.sameDocument") is True  # morphed in, not reloaded

    edit(project / "site_app.py", "python one", "python two")
    expect(page.locator("#py")).to_have_text("python two", timeout=RESTART_MS)
    expect(page.locator("#who")).to_have_text("alice")  # the session survived the restart
    assert page.evaluate("window.sameDocument") is None  # the page reloaded itself
    assert (project / ".livepages" / "sessions.db").exists()


def test_a_syntax_error_shows_the_overlay_until_it_is_fixed(
    dev: LivepagesProcess, project: Path, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(dev.url + "/")
    expect(page.locator("#py")).to_have_text("python one")
    module = project / "site_app.py"
    good = module.read_text()
    lines = good.count("\n")
    module.write_text(good + "def broken(:\n")

    overlay = page.locator("#lp-dev-overlay")
    expect(overlay).to_be_visible(timeout=RESTART_MS)  # patched into the open page
    expect(overlay).to_contain_text("SyntaxError")
    expect(overlay.locator(".lp-where")).to_have_text(f"{module}:{lines + 1}")
    expect(overlay.locator(".lp-code")).to_have_text("def broken(:")

    page.reload()  # a page asked for while the app cannot import: the overlay alone
    expect(overlay).to_contain_text("SyntaxError")
    expect(page.locator("#py")).to_have_count(0)
    # Its script (with the response's CSP nonce) wires the close button and the reload.
    overlay.get_by_role("button", name="close").click()
    expect(overlay).to_have_count(0)

    module.write_text(good.replace("python one", "python fixed"))
    expect(page.locator("#py")).to_have_text("python fixed", timeout=RESTART_MS)
    expect(overlay).to_have_count(0)
    assert page.evaluate("window.__violations") == []


def test_watchers_run_on_matching_changes_and_their_failures_show(
    dev: LivepagesProcess, project: Path, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    page.goto(dev.url + "/")
    expect(page.locator("#py")).to_have_text("python one")

    page.evaluate("window.sameDocument = true")
    (project / "styles/app.css").write_text("p { color: green }\n")
    deadline = RESTART_MS / 1000
    _wait_for(lambda: "green" in (project / "static/app.css").read_text(), deadline)
    # A static file changed: the page reloads (for its head's asset URLs), no restart.
    page.wait_for_function("window.sameDocument === undefined", timeout=RESTART_MS)
    expect(page.locator("#py")).to_have_text("python one")
    assert "restarting" not in dev.log()

    (project / "broken/x.txt").write_text("x")
    overlay = page.locator("#lp-dev-overlay")
    expect(overlay).to_contain_text("failed with status 3", timeout=RESTART_MS)
    expect(overlay).to_contain_text("watcher-said-this")
    page.reload()  # a page opened afterwards shows it too, until files change again
    expect(overlay).to_contain_text("watcher-said-this", timeout=RESTART_MS)
    expect(page.locator("#py")).to_have_text("python one")


def test_an_action_error_shows_in_the_overlay(
    dev: LivepagesProcess, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(dev.url + "/")
    expect(page.locator("#py")).to_have_text("python one")
    page.click("#fail")
    overlay = page.locator("#lp-dev-overlay")
    expect(overlay).to_contain_text("RuntimeError: the action broke", timeout=RESTART_MS)
    expect(overlay.locator(".lp-where")).to_contain_text("site_app.py:")
    overlay.get_by_role("button", name="close").click()
    expect(overlay).to_have_count(0)
    expect(page.locator("#py")).to_have_text("python one")  # the page itself lives on
    assert page.evaluate("window.__violations") == []


def _wait_for(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


def _serve(folder: Path, args: list[str], scheme: str = "http") -> LivepagesProcess:
    server = LivepagesProcess(folder, ["dev", *args], scheme=scheme)
    server.wait_until_serving()
    return server


def test_an_app_that_fails_to_start_shows_the_overlay(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.livepages]\napp = "site_app:app"\n')
    write(
        tmp_path,
        "site_app.py",
        """
        import contextlib
        from livepages import App

        @contextlib.asynccontextmanager
        async def lifespan(app):
            raise ConnectionError("no database here")
            yield

        app = App(lifespan=lifespan)
        """,
    )
    server = _serve(tmp_path, [])
    try:
        response = httpx.get(server.url + "/", timeout=10)
        assert response.status_code == 500
        assert "The app failed to start" in response.text
        assert f"{tmp_path / 'site_app.py'}:7" in response.text  # the raise
        assert "no database here" in response.text
        assert server.process.poll() is None  # the server keeps running
    finally:
        server.stop()


def test_an_app_process_that_exits_is_replaced_by_the_overlay(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.livepages]\napp = "site_app:app"\n')
    write(tmp_path, "site_app.py", "import os\nos._exit(3)\n")
    server = LivepagesProcess(tmp_path, ["dev"])
    try:
        deadline = time.monotonic() + 20
        while True:  # the first process dies before it serves; the next shows why
            try:
                response = httpx.get(server.url + "/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, server.log()
                time.sleep(0.1)
        assert response.status_code == 500
        assert "exited with status 3" in response.text
    finally:
        server.stop()


def test_dev_with_a_certificate_serves_http2(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.livepages]\napp = "site_app:app"\n')
    write(
        tmp_path,
        "site_app.py",
        """
        from livepages import App, Page
        app = App()

        @app.page("/")
        class Home(Page):
            def render(self) -> str:
                return "<p>secure</p>"
        """,
    )
    cert, key = self_signed_files(tmp_path)
    server = _serve(tmp_path, ["--tls-cert", cert, "--tls-key", key], scheme="https")
    try:
        with httpx.Client(http2=True, verify=False) as client:
            response = client.get(server.url + "/")
        assert response.http_version == "HTTP/2"
        assert "<p>secure</p>" in response.text
    finally:
        server.stop()


def test_an_app_process_that_does_not_stop_is_killed_after_the_timeout(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.livepages]\napp = "site_app:app"\n')
    module = write(
        tmp_path,
        "site_app.py",
        """
        import asyncio, contextlib
        from livepages import App, Page

        @contextlib.asynccontextmanager
        async def lifespan(app):
            yield
            await asyncio.sleep(3600)  # a shutdown that never ends

        app = App(lifespan=lifespan)

        @app.page("/")
        class Home(Page):
            def render(self) -> str:
                return "<p>version 1</p>"
        """,
    )
    server = _serve(tmp_path, [])
    try:
        started = time.monotonic()
        module.write_text(module.read_text().replace("version 1", "version 2"))
        _wait_for(lambda: "did not stop within 5 s: killing it" in server.log(), 30)
        assert time.monotonic() - started >= STOP_TIMEOUT
        _wait_for(lambda: _text(server.url) == "version 2", 30)
    finally:
        server.stop()


def _text(url: str) -> str:
    try:
        return "version 2" if "version 2" in httpx.get(url + "/", timeout=2).text else ""
    except httpx.TransportError:
        return ""
