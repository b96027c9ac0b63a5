"""Watchers: which changes they match, and what a command's failure or timeout gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from livepages.cli.project import Watcher
from livepages.dev.watchers import matches, run_watcher


def test_globs_match_paths_relative_to_the_project(tmp_path: Path) -> None:
    css = Watcher("styles/*.css", "true")
    assert matches(css, [tmp_path / "styles" / "app.css"], tmp_path)
    assert matches(Watcher("*.css", "true"), [tmp_path / "a" / "b.css"], tmp_path)
    assert not matches(css, [tmp_path / "static" / "app.css"], tmp_path)
    assert not matches(css, [Path("/elsewhere/styles/app.css")], tmp_path)


@pytest.mark.anyio
async def test_a_command_that_succeeds_is_no_problem(tmp_path: Path) -> None:
    assert await run_watcher(Watcher("*", "echo fine > out.txt"), tmp_path) is None
    assert (tmp_path / "out.txt").read_text() == "fine\n"


@pytest.mark.anyio
async def test_a_failing_command_is_a_problem_with_its_output(tmp_path: Path) -> None:
    problem = await run_watcher(Watcher("*", "echo oops; exit 2"), tmp_path)
    assert problem is not None
    assert "failed with status 2" in problem.title
    assert "oops" in problem.text


@pytest.mark.anyio
async def test_a_command_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    problem = await run_watcher(Watcher("*", "sleep 30", timeout=0.2), tmp_path)
    assert problem is not None
    assert "timed out after 0.2 s" in problem.title


def test_the_default_timeout_is_a_minute() -> None:
    assert Watcher("*", "true").timeout == 60.0
