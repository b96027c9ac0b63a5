"""A restart loses nothing a page shows: open pages reconnect, or reload when they must.

A real server process (``livepages.server.run``) serves a page to real Chromium,
then is stopped and started again on the same port, as ``uvicorn --reload`` or a
deploy would. In debug mode with no ``secret_key`` the secret persists under
``.livepages/``, so the page's stream resumes by itself and shows the new
process's render without a reload. With a changed secret the page's tab id no
longer verifies, and the page reloads itself instead of going stale.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.browser import NewContext
from tests.fixtures.script_server import ScriptServer

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from livepages import App, Page, Settings
    from livepages.server import run

    settings = Settings.from_env(debug=True, datastar_file=os.environ["DATASTAR_FILE"])
    app = App(settings=settings)

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return f'<p id="boot">boot {os.environ["BOOT"]}</p>'

    run(app, port=int(sys.argv[1]), log_level="warning")
    """
)


class Server(ScriptServer):
    """The script above as a process that can be stopped and started again."""

    def __init__(self, folder: Path, datastar_js: Path) -> None:
        super().__init__(folder, SCRIPT, datastar_js)

    def start(self, boot: int, secret: str | None = None) -> None:  # type: ignore[override]
        """Start boot number ``boot``, with ``secret`` as its key (none: the dev secret)."""
        if secret is None:
            super().start({"BOOT": str(boot)}, without=("LIVEPAGES_SECRET_KEY",))
        else:
            super().start({"BOOT": str(boot), "LIVEPAGES_SECRET_KEY": secret})


@pytest.fixture
def server(tmp_path: Path, datastar_js: Path) -> Iterator[Server]:
    server = Server(tmp_path, datastar_js)
    try:
        yield server
    finally:
        server.stop()


def test_a_restart_in_debug_keeps_the_page_and_shows_the_new_render(
    server: Server, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    server.start(boot=1)
    page = browser_context().new_page()
    page.goto(server.url + "/")
    expect(page.locator("#boot")).to_have_text("boot 1")
    page.evaluate("window.stillTheSamePage = true")

    server.stop()
    server.start(boot=2)
    # Datastar retries the stream; the new process accepts the old tab id.
    expect(page.locator("#boot")).to_have_text("boot 2", timeout=15_000)
    assert page.evaluate("window.stillTheSamePage") is True
    assert (server.folder / ".livepages" / "secret").exists()


def test_a_changed_secret_makes_the_page_reload_itself(
    server: Server, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    server.start(boot=1, secret="the first secret")
    page = browser_context().new_page()
    page.goto(server.url + "/")
    expect(page.locator("#boot")).to_have_text("boot 1")
    page.evaluate("window.stillTheSamePage = true")

    server.stop()
    server.start(boot=2, secret="a different secret")
    expect(page.locator("#boot")).to_have_text("boot 2", timeout=15_000)
    assert page.evaluate("window.stillTheSamePage") is None  # a fresh page load
