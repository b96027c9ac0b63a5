"""Builds: every page's stream names its build; another build's page reloads once."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from livepages import App, Page, Settings
from livepages.builds import Build, build_id, check_kept, code_folder, reload_event
from livepages.protocol import BUILD_HEADER
from livepages.registration import RegistrationError
from livepages.testing import Client
from tests.fixtures.browser import NewContext
from tests.fixtures.script_server import ScriptServer

# -- the id -----------------------------------------------------------------------------


def test_the_id_hashes_the_package_and_the_folders(tmp_path: Path) -> None:
    package = tmp_path / "site"
    (package / "pages").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pages" / "__init__.py").write_text("")
    module = package / "pages" / "app.py"
    module.write_text("app = 1\n")
    (package / "notes.txt").write_text("not code")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "home.html").write_text("<p>home</p>")
    assert code_folder(module) == package

    first = build_id(module, [templates])
    assert first == build_id(module, [templates])  # every process of a deploy agrees
    assert len(first) == 16

    (package / "notes.txt").write_text("changed")  # not code, not a template
    assert build_id(module, [templates]) == first
    (package / "other.py").write_text("x = 2\n")  # any module of the package
    second = build_id(module, [templates])
    assert second != first
    (templates / "home.html").write_text("<p>home!</p>")
    assert build_id(module, [templates]) != second
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "cached.py").write_text("")
    (package / ".hidden.py").write_text("")
    assert build_id(module, [templates]) == build_id(module, [templates])


def test_a_lone_module_is_its_own_code(tmp_path: Path) -> None:
    module = tmp_path / "serve.py"
    module.write_text("a = 1\n")
    (tmp_path / "neighbour.py").write_text("b = 1\n")
    assert code_folder(module) is None
    first = build_id(module, [])
    (tmp_path / "neighbour.py").write_text("b = 2\n")  # not part of it
    assert build_id(module, []) == first
    module.write_text("a = 2\n")
    assert build_id(module, []) != first


def test_a_setting_fixes_the_id() -> None:
    app = App(settings=Settings(build_id="v1.2.3"))
    assert app.documents.build.id == "v1.2.3"
    assert len(App().documents.build.id) == 16  # this test package's hash
    assert Build("x", None).id == "x"


def test_kept_signals_must_be_signal_paths() -> None:
    assert check_kept(("draft", "form.text")) == ("draft", "form.text")
    for bad in ("", "a b", "x'); alert(1); ('", "$draft", "a..b"):
        with pytest.raises(ValueError, match="signal path"):
            check_kept((bad,))
    app = App()
    with pytest.raises(RegistrationError, match="kept_signals"):

        @app.page("/")
        class Bad(Page):
            kept_signals = ("no way",)

            def render(self) -> str:
                return ""


def test_the_reload_saves_the_kept_signals_once_per_build() -> None:
    event = reload_event("b2", ("draft", "form.text")).decode()
    assert "data: selector body" in event
    assert "data: mode append" in event
    assert "!== &#x27;b2&#x27;" in event  # once per build: no loop in a rolling deploy
    assert "&#x27;draft&#x27;: $draft, &#x27;form.text&#x27;: $form.text" in event
    assert "sessionStorage" not in reload_event("b2").decode().split("livepages.build")[-1][:20]


# -- streams --------------------------------------------------------------------------


def _app() -> App:
    app = App(settings=Settings(secret_key="builds", build_id="new"))

    @app.page("/")
    class Home(Page):
        kept_signals = ("draft",)

        def render(self) -> str:
            return "<p>home</p>"

    return app


@pytest.mark.anyio
async def test_a_page_of_another_build_is_told_to_reload_and_its_own_is_not() -> None:
    async with Client(_app()) as client:
        page = await client.get("/")
        assert f"&#x27;{BUILD_HEADER}&#x27;: &#x27;new&#x27;" in page.html
        async with page.stream({BUILD_HEADER: "old"}) as stream:
            first = await stream.next_event()
            assert first.type == "datastar-patch-elements"
            (element,) = first.data["elements"]
            assert 'id="lp-reload"' in element
            assert "$draft" in element
            assert first.data["selector"] == ["body"]
            rendered = await stream.next_event()  # and the page, meanwhile
            assert "lp-root" in rendered.data["elements"][0]
        async with page.stream({BUILD_HEADER: "new"}) as stream:
            rendered = await stream.next_event()
            assert "lp-root" in rendered.data["elements"][0]  # no reload


# -- in Chromium, across a deploy --------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from livepages import App, Page, Settings
    from livepages.server import run

    settings = Settings.from_env(secret_key="deploys", datastar_file=os.environ["DATASTAR_FILE"])
    app = App(settings=settings)

    @app.page("/")
    class Editor(Page):
        kept_signals = ("draft",)

        def render(self) -> str:
            build = os.environ["LIVEPAGES_BUILD_ID"]
            return (
                f'<p id="build">{build}</p>'
                '<div data-signals="{draft: \\'\\', other: \\'\\'}"></div>'
                '<input id="draft" data-bind:draft><input id="other" data-bind:other>'
            )

    run(app, port=int(sys.argv[1]), log_level="warning")
    """
)


#: Counts the renders the page's stream delivers from now on.
RENDERS = """
window.renders = 0;
document.addEventListener('datastar-fetch', (e) => {
  if (e.detail.el.id === 'lp-live' && e.detail.type === 'datastar-patch-elements') window.renders++;
});
"""


class Deploy(ScriptServer):
    """The script above as a process, started again as another build."""

    def __init__(self, folder: Path, datastar_js: Path) -> None:
        super().__init__(folder, SCRIPT, datastar_js)

    def start(self, build: str) -> None:  # type: ignore[override]
        """Start it as build ``build``."""
        super().start({"LIVEPAGES_BUILD_ID": build})


@pytest.fixture
def deploy(tmp_path: Path, datastar_js: Path) -> Iterator[Deploy]:
    running = Deploy(tmp_path, datastar_js)
    try:
        yield running
    finally:
        running.stop()


def test_a_page_of_build_a_reloads_once_on_build_b_keeping_its_kept_signals(
    deploy: Deploy, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    deploy.start("A")
    page = browser_context().new_page()
    loads: list[str] = []
    page.on("load", lambda _: loads.append(page.url))
    page.goto(deploy.url + "/")
    expect(page.locator("#build")).to_have_text("A")
    page.locator("#draft").fill("half a sentence")
    page.locator("#other").fill("not kept")
    page.evaluate("window.sameDocument = true")

    deploy.stop()
    deploy.start("B")
    expect(page.locator("#build")).to_have_text("B", timeout=15_000)
    assert page.evaluate("window.sameDocument") is None  # a fresh document of build B
    expect(page.locator("#draft")).to_have_value("half a sentence")  # kept
    expect(page.locator("#other")).to_have_value("")  # not kept
    assert len(loads) == 2

    page.evaluate(RENDERS)
    page.evaluate("window.sameDocument = true")
    page.locator("#other").fill("would be lost by a reload")
    deploy.stop()
    deploy.start("B")  # a restart of the same build: the page only reconnects
    page.wait_for_function("window.renders > 0", timeout=15_000)
    assert page.evaluate("window.sameDocument") is True
    expect(page.locator("#other")).to_have_value("would be lost by a reload")
    assert len(loads) == 2
