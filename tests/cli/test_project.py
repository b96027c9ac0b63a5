"""``[tool.livepages]`` in pyproject.toml, and loading the app it names."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from livepages.cli.project import ProjectError, Watcher, find_project, load_app


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_the_table_is_read_from_the_nearest_pyproject(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        """
        [project]
        name = "shop"
        [tool.livepages]
        app = "shop.main:app"
        [tool.livepages.dev]
        port = 9000
        watch = [{glob = "styles/*.css", command = "make css"}]
        [tool.livepages.run]
        workers = 2
        """,
    )
    inner = tmp_path / "shop" / "templates"
    inner.mkdir(parents=True)
    project = find_project(inner)
    assert project.root == tmp_path.resolve()
    assert project.app_spec(None) == "shop.main:app"
    assert project.app_spec("other:app") == "other:app"  # the command line wins
    assert project.dev.port == 9000
    assert project.dev.watch == (Watcher("styles/*.css", "make css"),)
    assert project.run.workers == 2
    assert project.run.port == 8000  # a default


def test_no_pyproject_means_defaults_and_naming_the_app_is_required(tmp_path: Path) -> None:
    project = find_project(tmp_path)
    assert project.root == tmp_path.resolve()
    with pytest.raises(ProjectError, match=r"\[tool.livepages\]"):
        project.app_spec(None)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[tool.livepages]\nap = 'x:y'\n", "unknown field"),
        ("[tool.livepages.dev]\nport = 'eighty'\n", "Expected `int`"),
        ("[tool.livepages\n", "pyproject.toml"),
    ],
)
def test_a_bad_table_is_an_error_that_names_the_file(
    tmp_path: Path, table: str, message: str
) -> None:
    write(tmp_path, "pyproject.toml", table)
    with pytest.raises(ProjectError, match=message):
        find_project(tmp_path)


def test_load_app_imports_an_attribute_or_calls_a_factory(tmp_path: Path) -> None:
    module = f"app_{uuid.uuid4().hex}"
    write(
        tmp_path,
        f"{module}.py",
        """
        from livepages import App
        app = App()
        def create():
            return App()
        count = 3
        """,
    )
    try:
        from livepages import App

        assert isinstance(load_app(f"{module}:app", tmp_path), App)
        assert isinstance(load_app(f"{module}:create", tmp_path), App)
        assert isinstance(load_app(f"{module}:create()", tmp_path), App)
        with pytest.raises(ProjectError, match="no attribute 'missing'"):
            load_app(f"{module}:missing", tmp_path)
        with pytest.raises(ProjectError, match="not an ASGI app"):
            load_app(f"{module}:count", tmp_path)
        with pytest.raises(ProjectError, match="module:attribute"):
            load_app(module, tmp_path)
    finally:
        sys.modules.pop(module, None)
        sys.path.remove(str(tmp_path))
