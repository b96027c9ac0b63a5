"""App folders resolve next to the module that builds the App, or fail at once."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

APP = """
from livepages import App, Page

app = App(templates="templates", static="static")

@app.page("/")
class Home(Page):
    live = False

    def render(self) -> str:
        return app.templates.render("home.html")
"""


def write_project(folder: Path, *, templates: bool = True) -> Path:
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    if templates:
        (folder / "templates").mkdir()
        (folder / "templates" / "home.html").write_text("<p>home</p>")
    (folder / "static").mkdir()
    (folder / "static" / "site.css").write_text("p {}")
    return folder / "app.py"


def test_folders_are_found_beside_the_app_module_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    app = runpy.run_path(str(module))["app"]
    assert app.templates.render("home.html") == "<p>home</p>"
    assert app.asset("site.css").startswith("/_static/site.")


def test_a_missing_folder_fails_when_the_app_is_built_naming_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_project(tmp_path / "project", templates=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as failure:
        runpy.run_path(str(module))
    message = str(failure.value)
    assert "App(templates='templates')" in message
    assert str(tmp_path / "project" / "templates") in message
    assert str(tmp_path / "templates") in message


def test_the_working_directory_is_tried_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_project(tmp_path / "project", templates=False)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "home.html").write_text("<p>from the cwd</p>")
    monkeypatch.chdir(tmp_path)
    app = runpy.run_path(str(module))["app"]
    assert app.templates.render("home.html") == "<p>from the cwd</p>"
