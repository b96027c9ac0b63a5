"""--before: another livepages source measured beside this one in the same run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmarks.fanout.lineup import DEFAULT_LIVEPAGES_APP, build_lineup, with_source
from benchmarks.fanout.process import ROOT
from benchmarks.fanout.run import _with_before, main
from benchmarks.fanout.source import export_source, label_of


def _has_history() -> bool:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, check=False
    )
    return result.returncode == 0


@pytest.mark.skipif(not _has_history(), reason="not a git checkout")
def test_a_revision_is_exported_without_touching_the_repository(tmp_path: Path) -> None:
    src = export_source("HEAD", tmp_path)
    assert (src / "livepages" / "__init__.py").is_file()
    assert src.is_relative_to(tmp_path)


def test_a_folder_is_used_as_it_is(tmp_path: Path) -> None:
    assert export_source(str(ROOT), tmp_path) == (ROOT / "src").resolve()
    assert export_source(str(ROOT / "src"), tmp_path) == (ROOT / "src").resolve()
    assert label_of(str(ROOT / "src")) == "src"


def test_an_unknown_revision_or_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot export"):
        export_source("no-such-revision-anywhere", tmp_path)
    with pytest.raises(ValueError, match="no livepages package"):
        export_source(str(tmp_path), tmp_path)


def test_each_livepages_target_runs_first_on_the_other_source(tmp_path: Path) -> None:
    lineup = build_lineup(["raw", "livepages", "livepages-granian"], DEFAULT_LIVEPAGES_APP, None)
    names = [t.name for t in _with_before(lineup, tmp_path, "abc123")]
    assert names == [
        "raw",
        "livepages@abc123",
        "livepages",
        "livepages-granian@abc123",
        "livepages-granian",
    ]
    before = with_source(lineup[1], tmp_path, "abc123")
    assert before.pythonpath == (str(tmp_path),)
    assert before.command(1234, 10) == lineup[1].command(1234, 10)


def test_a_bad_before_stops_the_run_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--targets", "raw", "--before", "no-such-revision-anywhere"]) == 2
    assert "cannot export" in capsys.readouterr().err
