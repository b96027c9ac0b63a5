"""``livepages init``: a project that runs, with a test that passes.

Most tests use this checkout's livepages (it is installed in the running environment).
One installs everything from scratch: a fresh virtualenv, livepages built into a wheel
from a clean copy of this checkout, ``livepages init`` from that wheel, then the new
project with ``pip install -e`` and its own test, ``check`` and ``routes``.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from livepages import Settings
from livepages.cli.init import package_name, requirement
from livepages.testing import LiveServer, goto_live, watch_console

if TYPE_CHECKING:
    from tests.fixtures.browser import NewContext

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FILES = [
    ".gitignore",
    "AGENTS.md",
    "README.md",
    "pyproject.toml",
    "tests/test_app.py",
    "my_board/__init__.py",
    "my_board/app.py",
    "my_board/static/app.css",
    "my_board/templates/base.html",
    "my_board/templates/home.html",
]


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the module's runs: only the first reads livepages cold."""
    return tmp_path_factory.mktemp("mypy")


def init(folder: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "livepages", "init", folder, *flags, cwd=folder.parent)


# The two forms of the app's code: without and with sessions (--nats changes only the
# README and the requirement, which test_the_options_show_in_the_files reads).
@pytest.mark.parametrize("flags", [(), ("--sessions", "--nats")])
def test_the_new_project_passes_its_tests_check_ruff_and_mypy(
    tmp_path: Path, flags: tuple[str, ...], mypy_cache: Path
) -> None:
    project = tmp_path / "board"
    result = init(project, "--name", "my-board", *flags)
    assert result.returncode == 0, result.stderr
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == (
        sorted(FILES)
    )
    env = {**os.environ, "PYTHONPATH": str(project)}  # as `pip install -e .` would
    tests = run(BIN / "pytest", "-q", "-p", "no:cacheprovider", cwd=project, env=env)
    assert tests.returncode == 0, tests.stdout
    assert "3 passed" in tests.stdout
    # [tool.livepages] names the app, so check and routes need no argument.
    checked = run(sys.executable, "-m", "livepages", "check", cwd=project, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no problems found in 1 app(s), 1 page(s), 2 template(s)" in checked.stdout
    routes = run(sys.executable, "-m", "livepages", "routes", cwd=project, env=env)
    assert re.search(r"POST +/_action/post +action +Home\.post", routes.stdout), routes.stdout
    # The generated code is as clean as this project's (ruff's defaults, mypy --strict).
    lint = run(BIN / "ruff", "check", "--select", "E,F,W,I,B,UP,SIM,RUF", ".", cwd=project)
    assert lint.returncode == 0, lint.stdout
    assert run(BIN / "ruff", "format", "--check", ".", cwd=project).returncode == 0
    typed = run(BIN / "mypy", "--strict", "--cache-dir", mypy_cache, "my_board", "tests",
                cwd=project, env=env)  # fmt: skip
    assert typed.returncode == 0, typed.stdout


def test_the_options_show_in_the_files(tmp_path: Path) -> None:
    assert init(tmp_path / "a").returncode == 0
    assert init(tmp_path / "b", "--sessions", "--nats").returncode == 0
    plain, full = tmp_path / "a", tmp_path / "b"
    assert "sessions=True" not in (plain / "a/app.py").read_text()
    assert "sessions=True" in (full / "b/app.py").read_text()
    assert "Session[Visitor]" in (full / "AGENTS.md").read_text()
    assert "NATS" not in (plain / "README.md").read_text()
    assert "LIVEPAGES_NATS_URL" in (full / "README.md").read_text()
    assert '"livepages @ ' in (plain / "pyproject.toml").read_text()
    assert '"livepages[nats] @ ' in (full / "pyproject.toml").read_text()
    for project, package in ((plain, "a"), (full, "b")):
        pyproject = (project / "pyproject.toml").read_text()
        assert f'[tool.livepages]\napp = "{package}.app:app"' in pyproject
        assert "[[" not in pyproject
        assert "[%" not in (project / package / "app.py").read_text()


def test_it_refuses_to_overwrite_and_writes_nothing_then(tmp_path: Path) -> None:
    project = tmp_path / "board"
    project.mkdir()
    (project / "notes.txt").write_text("mine")  # a folder with other files is fine
    assert init(project).returncode == 0
    (project / "README.md").write_text("my own readme")
    (project / "board" / "app.py").unlink()
    again = init(project)
    assert again.returncode == 1
    assert "refusing to overwrite" in again.stderr
    assert str(project / "README.md") in again.stderr
    assert (project / "README.md").read_text() == "my own readme"
    assert not (project / "board" / "app.py").exists()  # nothing written, not even this
    assert (project / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad name", "is not a project name"),
        ("livepages", "hides a module"),
        ("json", "hides a module"),
        ("tests", "hides a module"),
    ],
)
def test_names_that_cannot_work_are_refused(tmp_path: Path, name: str, message: str) -> None:
    result = init(tmp_path / "x", "--name", name)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "x").exists()


def test_package_names() -> None:
    assert package_name("my-board") == "my_board"
    assert package_name("My.Shop") == "my_shop"
    assert package_name("3d") == "app_3d"


def test_the_livepages_requirement(tmp_path: Path) -> None:
    # This environment has livepages installed from this checkout (PEP 610 says so).
    assert requirement(None).text == f"livepages @ {ROOT.as_uri()}"
    assert requirement(None, nats=True).text == f"livepages[nats] @ {ROOT.as_uri()}"
    assert requirement(str(tmp_path)).text == f"livepages @ {tmp_path.resolve().as_uri()}"
    url = "https://example.com/livepages-0.1.0.tar.gz"
    assert requirement(url).text == f"livepages @ {url}"


def test_help_says_what_it_writes() -> None:
    result = run(sys.executable, "-m", "livepages", "init", "--help", cwd=ROOT)
    for option in ("--name", "--sessions", "--nats", "--livepages-source"):
        assert option in result.stdout
    assert "refuses to overwrite" in result.stdout


@pytest.fixture
def board_server(tmp_path: Path, datastar_js: Path) -> Iterator[LiveServer]:
    """A new project (with sessions), imported and served with a local Datastar build."""
    package = f"board_{uuid.uuid4().hex[:8]}"
    assert init(tmp_path / "board", "--name", package, "--sessions").returncode == 0
    sys.path.insert(0, str(tmp_path / "board"))
    try:
        module = importlib.import_module(f"{package}.app")
        app = module.create_app(Settings(datastar_file=str(datastar_js)))
        with LiveServer(app) as server:
            yield server
    finally:
        sys.path.remove(str(tmp_path / "board"))
        for name in [name for name in sys.modules if name.startswith(package)]:
            del sys.modules[name]


def test_the_new_project_works_in_a_browser(
    board_server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    alice, bob = (browser_context().new_page() for _ in range(2))
    problems = [watch_console(alice), watch_console(bob)]
    for page in (alice, bob):
        goto_live(page, board_server.url + "/")
    alice.click("button[type=submit]")  # nothing typed: refused, next to each input
    expect(alice.locator(".error").nth(0)).to_have_text("is required")
    expect(alice.locator(".error").nth(1)).to_have_text("write something first")

    alice.fill("#name", "Ada")
    alice.fill("#text", "Hello from Ada")
    alice.click("button[type=submit]")
    expect(bob.locator("#messages li").first).to_have_text("AdaHello from Ada")
    expect(alice.locator("#text")).to_have_value("")  # emptied; the name stays
    expect(alice.locator("#name")).to_have_value("Ada")
    expect(alice.locator(".error").nth(1)).to_have_text("")

    goto_live(alice, board_server.url + "/")  # the session remembers the name
    expect(alice.locator("#name")).to_have_value("Ada")
    assert problems == [[], []]


@pytest.mark.timeout(600)
def test_a_new_project_installs_in_a_fresh_virtualenv_and_its_test_passes(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    timings: dict[str, float] = {}

    def step(name: str, *args: str | Path, cwd: Path = tmp_path) -> str:
        begun = time.monotonic()
        result = run(*args, cwd=cwd, timeout=540)
        timings[name] = time.monotonic() - begun
        assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    # A clean copy: pip builds in the source tree, so a stale build/ would hide a file
    # missing from the wheel.
    source = tmp_path / "livepages"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)

    venv = tmp_path / "venv"
    step("venv", sys.executable, "-m", "venv", venv)  # no system site-packages
    python, bin_ = venv / "bin" / "python", venv / "bin"
    step("install livepages", python, "-m", "pip", "install", "-q", source)
    # From the wheel just installed: its skeleton files are package data.
    step("init", bin_ / "livepages", "init", "board", "--sessions")
    project = tmp_path / "board"
    pyproject = (project / "pyproject.toml").read_text()
    assert f'"livepages @ {source.resolve().as_uri()}"' in pyproject
    step("install the project", python, "-m", "pip", "install", "-q", "-e", ".[dev]", cwd=project)
    out = step("its tests", bin_ / "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert "3 passed" in out
    out = step("check", bin_ / "livepages", "check", cwd=project)
    assert "no problems found" in out
    out = step("routes", bin_ / "livepages", "routes", cwd=project)
    assert "/_action/post" in out
    timings["total"] = time.monotonic() - started
    print("\nfresh virtualenv, seconds:", {k: round(v, 1) for k, v in timings.items()})
