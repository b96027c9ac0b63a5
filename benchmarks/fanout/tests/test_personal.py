"""The personalised-page scenario of ``make bench``: every target of it runs and greets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_the_scenario_runs_every_target_on_the_site_page(tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    out = tmp_path / "personal.json"
    argv = ["--clients", "20", "--changes", "1", "--settle", "0", "--pause", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fanout.personal", *argv, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert [(r["target"], r["compression"], r["status"]) for r in runs] == [
        ("raw", "none", "ok"),
        ("starlette-personal", "none", "ok"),
        ("livepages", "none", "ok"),
        ("livepages-personal", "none", "ok"),
        ("livepages-per-viewer", "none", "ok"),
    ]
    assert result["settings"]["page"] == "site"
